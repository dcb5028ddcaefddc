"""The failure notification: what a Prefect automation runs when any flow run of the platform fails or crashes.

``flows.serve`` creates the automation ``oms-flow-run-failed`` (seen in the UI under Automations): on the
events ``prefect.flow-run.Failed`` and ``prefect.flow-run.Crashed`` it runs the ``notify-failure``
deployment with the failed run's resource id. This flow reads the run (flow, deployment, state message),
publishes a markdown artifact ``flow-failure-{flow}`` (under Artifacts, newest first) and an alert on NATS
``alerts.flows.{flow}``. It never fails itself (a notifier that fails would notify about itself): a NATS that
cannot be reached is logged and named in the artifact instead.
"""

from __future__ import annotations

import json
import re
from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from oms.bus.connect import NatsClientSettings, connect_as
from oms.config import load_config

NAME = "notify-failure"


def _token(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "flow"


def alert_subject(flow_name: str) -> str:
    return f"alerts.flows.{_token(flow_name)}"


async def _publish(bus: NatsClientSettings, subject: str, body: dict) -> str:
    try:
        nc = await connect_as(bus, connect_timeout=3, max_reconnect_attempts=1, allow_reconnect=False)
    except Exception as exc:
        return f"not published on {subject}: cannot reach NATS at {bus.url}: {exc!r}"
    try:
        await nc.publish(subject, json.dumps(body).encode())
        await nc.flush(timeout=3)
        return f"published on {subject}"
    finally:
        await nc.close()


@flow(name=NAME, log_prints=True)
async def notify_failure(failed_run: str, nats_url: str | None = None) -> dict:
    """Tell users about the failed flow run ``failed_run`` (its id, or the event's ``prefect.flow-run.ID``)."""
    log = get_run_logger()
    run_id = UUID(failed_run.rsplit(".", 1)[-1])
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        flow_ = await client.read_flow(run.flow_id)
        deployment = (await client.read_deployment(run.deployment_id)).name if run.deployment_id else None
    if flow_.name == NAME:
        return {"skipped": "a failure of the notifier itself"}
    state = run.state
    body = {
        "flow": flow_.name,
        "deployment": deployment,
        "flow_run": run.name,
        "flow_run_id": str(run.id),
        "state": state.type.value if state else None,
        "message": (state.message or "") if state else "",
        "parameters": run.parameters,
        "at": state.timestamp.isoformat() if state and state.timestamp else None,
    }
    bus = NatsClientSettings.from_config(load_config(), "flows").at(nats_url)
    published = await _publish(bus, alert_subject(flow_.name), body)
    lines = [
        f"# FAILED: {flow_.name}" + (f" ({deployment})" if deployment else ""),
        "",
        f"Flow run **{run.name}** (`{run.id}`) ended **{body['state']}** at {body['at']}.",
        "",
        "```",
        body["message"][:4000],
        "```",
        "",
        f"Parameters: `{json.dumps(run.parameters, default=str)[:1000]}`",
        "",
        f"Alert: {published}",
    ]
    await acreate_markdown_artifact("\n".join(lines), key=f"flow-failure-{_token(flow_.name)}",
                                    description=f"{flow_.name} failed: {body['message'][:120]}")  # fmt: skip
    log.error("flow %s (run %s) failed: %s", flow_.name, run.name, body["message"])
    return {**body, "alert": published}
