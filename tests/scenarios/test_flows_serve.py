"""`oms up`'s flow runner (the `flows` service, `python -m flows.serve`) against its own real Prefect server:
every deployment of prefect.yaml appears with its schedule, a deployment started from the API runs to
completion, and a failed run fires the automation, whose notify-failure run leaves an artifact naming the
failed flow and its error. Long (a served stack and three flow-run processes): a scenario."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from oms.services import Services
from tests.harness.servers import loopback_settings
from tests.keys.test_prefect_yaml import PROJECT

pytestmark = pytest.mark.scenario


def _wait(what: str, check, timeout: float = 240.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def test_oms_up_serves_every_deployment_and_notifies_failures(tmp_path: Path) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    services = Services(loopback_settings(tmp_path / "data", flows_enabled=True))
    api = f"http://127.0.0.1:{services.settings.prefect_port}/api"

    def call(fn):
        async def go():
            async with PrefectClient(api=api) as client:
                return await fn(client)

        return asyncio.run(go())

    try:
        results = services.up(["prefect", "flows"])
        assert [(r.name, r.outcome) for r in results] == [("prefect", "started"), ("flows", "started")]
        assert "deployments served" in services["flows"].status().detail

        doc = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
        on_disk = {d["entrypoint"].split(":")[0] for d in doc["deployments"]}
        expected = {d["name"] for d in doc["deployments"] if (PROJECT / d["entrypoint"].split(":")[0]).exists()}
        assert on_disk - {e for e in on_disk if (PROJECT / e).exists()} <= {"flows/rebalance.py", "flows/onboard.py"}
        served = {d.name: d for d in call(lambda c: c.read_deployments())}
        assert set(served) == expected | {"notify-failure"}
        for d in doc["deployments"]:
            if d["name"] in served:
                crons = [s.schedule.cron for s in served[d["name"]].schedules]
                assert crons == [s["cron"] for s in d.get("schedules") or []], d["name"]
        autos = call(lambda c: c.read_automations_by_name("oms-flow-run-failed"))
        assert len(autos) == 1 and autos[0].enabled

        # a deployment run from the API (as the UI's "Run" button does) runs in the served process
        archive = {"data_dir": str(tmp_path / "archive")}
        ok = call(lambda c: c.create_flow_run_from_deployment(served["archive-compact"].id, parameters=archive))
        # and a failing one: a month that is not YYYY-MM
        bad = call(
            lambda c: c.create_flow_run_from_deployment(served["pnl-report"].id, parameters={"month": "13/2026"})
        )

        def state_of(run_id):
            return call(lambda c: c.read_flow_run(run_id)).state

        assert _wait("archive-compact to complete", lambda: (s := state_of(ok.id)) and s.is_final() and s)
        assert state_of(ok.id).is_completed(), state_of(ok.id).message
        assert _wait("pnl-report to fail", lambda: (s := state_of(bad.id)) and s.is_final() and s)
        assert state_of(bad.id).is_failed()

        notify_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[served["notify-failure"].id]))
        runs = _wait("the automation's notify-failure run", lambda: call(lambda c: c.read_flow_runs(
            flow_run_filter=notify_filter)))  # fmt: skip
        assert _wait("notify-failure to complete", lambda: state_of(runs[0].id).is_completed())
        arts = {a.key: a for a in call(lambda c: c.read_artifacts())}
        note = arts["flow-failure-pnl-report"].data
        assert "# FAILED: pnl-report (pnl-report)" in note and "month '13/2026' is not YYYY-MM" in note
        assert "not published on alerts.flows.pnl-report" in note  # no NATS in this stack: named, not raised
    finally:
        services.down(["flows", "prefect"])
