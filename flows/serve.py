"""Serve every deployment of ``prefect.yaml`` from one process: ``oms flows serve`` (``python -m flows.serve``).

Reads ``prefect.yaml``, loads each deployment's flow from its entrypoint, checks its parameters against the
flow's typed signature and Prefect's parameter schema, and registers it with its schedules on the Prefect
server (``PREFECT_API_URL``; the embedded one of ``configs/stream.yaml`` by default), so every deployment
shows in the UI with its schedule; then runs their scheduled and UI-started runs (a Prefect runner:
``prefect.serve``, no work pool needed). A deployment whose flow cannot be loaded is reported by name and
left out; the others are served.

It also registers the failure notification: the ``notify-failure`` deployment (``flows.notify``) and the
automation ``oms-flow-run-failed`` that runs it for every failed or crashed flow run.

Once registered it writes ``{data}/flows/serve.json`` (its PID and the deployments), which ``oms up``'s
health check reads.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, get_client
from prefect.automations import Automation
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.runner import Runner
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate

from flows.notify import NAME as NOTIFY
from flows.notify import notify_failure
from oms.config import load_config

PROJECT = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT / "prefect.yaml"
AUTOMATION = "oms-flow-run-failed"
FAILED_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}


class DeploymentError(ValueError):
    """A deployment of prefect.yaml that cannot be served (the message names it and why)."""


@dataclass(frozen=True)
class Spec:
    """One deployment of ``prefect.yaml``."""

    name: str
    entrypoint: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()


def read_specs(path: Path = PREFECT_YAML) -> list[Spec]:
    """The deployments of ``path``, each checked for its keys (errors name the deployment)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DeploymentError(f"cannot read {path}: {exc}") from exc
    out = []
    known = {"name", "entrypoint", "description", "parameters", "schedules", "tags", "version", "work_pool"}
    for i, d in enumerate(doc.get("deployments") or []):
        where = f"{path}: deployments[{i}]" + (f" ({d.get('name')})" if isinstance(d, dict) else "")
        if not isinstance(d, dict) or "name" not in d or "entrypoint" not in d:
            raise DeploymentError(f"{where}: needs a name and an entrypoint")
        unknown = set(d) - known
        if unknown:
            raise DeploymentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        out.append(Spec(d["name"], d["entrypoint"], d.get("description") or "", dict(d.get("parameters") or {}),
                        tuple(d.get("schedules") or ()), tuple(d.get("tags") or ())))  # fmt: skip
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DeploymentError(f"{path}: deployment name(s) used twice: {', '.join(dup)}")
    return out


def load_flow(entrypoint: str) -> Flow:
    """The flow of ``flows/module.py:function`` (imported as a module of this project)."""
    file, _, attr = entrypoint.partition(":")
    if not file.endswith(".py") or not attr:
        raise DeploymentError(f"entrypoint {entrypoint!r} is not path/to/module.py:flow_function")
    if not (PROJECT / file).exists():
        raise DeploymentError(f"entrypoint {entrypoint!r}: {file} does not exist")
    module = file[:-3].replace("/", ".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise DeploymentError(f"entrypoint {entrypoint!r} cannot be loaded: {exc}") from exc
    if not isinstance(obj, Flow):
        raise DeploymentError(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return obj


def schedules(spec: Spec) -> list[CronSchedule | IntervalSchedule]:
    out: list[CronSchedule | IntervalSchedule] = []
    for s in spec.schedules:
        try:
            if "cron" in s:
                out.append(CronSchedule(cron=s["cron"], timezone=s.get("timezone", "UTC")))
            elif "interval" in s:
                out.append(IntervalSchedule(interval=timedelta(seconds=float(s["interval"])),
                                            timezone=s.get("timezone", "UTC")))  # fmt: skip
            else:
                raise ValueError("a schedule needs cron or interval")
        except (ValueError, TypeError) as exc:
            raise DeploymentError(f"deployment {spec.name}: schedule {s}: {exc}") from exc
    return out


def check_parameters(spec: Spec, fl: Flow) -> None:
    """The deployment's parameters are the flow's (by name) and valid for its typed signature."""
    try:
        inspect.signature(fl.fn).bind_partial(**spec.parameters)
    except TypeError as exc:
        raise DeploymentError(
            f"deployment {spec.name}: parameters {spec.parameters} do not fit {fl.name}: {exc}"
        ) from None
    schema = parameter_schema(fl.fn).model_dump_for_openapi()
    errors = validate(spec.parameters, schema, raise_on_error=False, ignore_required=True)
    if errors:
        why = "; ".join(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors)
        raise DeploymentError(f"deployment {spec.name}: invalid parameters for {fl.name}: {why}")


def build(spec: Spec) -> RunnerDeployment:
    """The runner deployment of one spec, validated (DeploymentError names what is wrong)."""
    fl = load_flow(spec.entrypoint)
    check_parameters(spec, fl)
    return fl.to_deployment(name=spec.name, description=spec.description or None, parameters=spec.parameters,
                            tags=list(spec.tags), schedules=schedules(spec) or None)  # fmt: skip


def build_all(specs: list[Spec]) -> tuple[list[RunnerDeployment], dict[str, str]]:
    """Every deployment that builds, and the others by name with the reason."""
    built, failed = [], {}
    for spec in specs:
        try:
            built.append(build(spec))
        except DeploymentError as exc:
            failed[spec.name] = str(exc)
    built.append(notify_failure.to_deployment(name=NOTIFY, description="Notify about a failed flow run (automation)",
                                              tags=["oms", "alerts"]))  # fmt: skip
    return built, failed


async def ensure_failure_automation(notify_deployment_id) -> Automation:
    """(Re)create the automation that runs ``notify-failure`` for every failed or crashed flow run."""
    async with get_client() as client:
        for old in await client.read_automations_by_name(AUTOMATION):
            await client.delete_automation(old.id)
    auto = Automation(
        name=AUTOMATION,
        description="A flow run of crypto-oms failed or crashed: the notify-failure flow publishes an artifact "
        "(flow-failure-{flow}) and an alert on NATS alerts.flows.{flow}",
        trigger=EventTrigger(
            expect=FAILED_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),  # fmt: skip
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=notify_deployment_id,
                parameters={"failed_run": "{{ event.resource.id }}"},
            )
        ],  # fmt: skip
    )
    return await auto.acreate()


def _ready_file() -> Path:
    return load_config().data_dir() / "flows" / "serve.json"


async def _register(runner: Runner, deployments: list[RunnerDeployment], ready: Path | None) -> dict[str, str]:
    ids = {}
    for d in deployments:
        ids[d.name] = str(await runner.aadd_deployment(d))
    await ensure_failure_automation(ids[NOTIFY])
    if ready is not None:
        ready.parent.mkdir(parents=True, exist_ok=True)
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "deployments": ids}, indent=1))
        tmp.replace(ready)
    return ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="oms flows serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--prefect-yaml", type=Path, default=PREFECT_YAML, help="the deployments file (%(default)s)")
    p.add_argument("--limit", type=int, default=4, help="runs at once (%(default)s)")
    p.add_argument("--ready-file", type=Path, default=None, help="where to write the PID and deployments once "
                   "registered (default: {data}/flows/serve.json)")  # fmt: skip
    p.add_argument("--check", action="store_true", help="only load and validate every deployment, then exit")
    args = p.parse_args(argv)
    try:
        specs = read_specs(args.prefect_yaml)
    except DeploymentError as exc:
        print(f"oms flows serve: {exc}", file=sys.stderr)
        return 1
    os.chdir(PROJECT)  # the runner starts each flow run from its entrypoint, relative to the project
    deployments, failed = build_all(specs)
    for name, why in failed.items():
        print(f"oms flows serve: not serving {name}: {why}", file=sys.stderr)
    if args.check:
        print(f"{len(deployments) - 1} of {len(specs)} deployment(s) valid")
        return 1 if failed else 0
    runner = Runner(name="oms-flows", pause_on_shutdown=False, limit=args.limit)

    async def run() -> None:
        ids = await _register(runner, deployments, args.ready_file or _ready_file())
        print(f"serving {len(ids)} deployment(s): {', '.join(sorted(ids))}", flush=True)
        await runner.start()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
