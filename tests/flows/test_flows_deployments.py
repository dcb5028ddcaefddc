"""prefect.yaml deploys rebalance (daily at 00:00 UTC, typed parameters) and onboard-exchange (on demand);
their entrypoints load and their parameters validate against the flows' own signatures."""

from __future__ import annotations

import yaml

from tests.flows.conftest import PROJECT


def _deployment(doc: dict, name: str) -> dict:
    found = [d for d in doc["deployments"] if d["name"] == name]
    assert len(found) == 1, f"prefect.yaml has {len(found)} deployments named {name}"
    return found[0]


def test_rebalance_and_onboard_deployments_load_and_validate(prefect_server):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    doc = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
    reb = _deployment(doc, "rebalance-binance")
    flow = load_flow_from_entrypoint(str(PROJECT / reb["entrypoint"]))
    assert flow.name == "rebalance"
    validated = flow.validate_parameters(reb["parameters"])
    assert {k: validated[k] for k in reb["parameters"]} == reb["parameters"]
    assert [s["cron"] for s in reb["schedules"]] == ["0 0 * * *"] and reb["schedules"][0]["timezone"] == "UTC"
    CronSchedule(cron=reb["schedules"][0]["cron"], timezone="UTC")
    schema = flow.parameters.model_dump()["properties"]
    assert schema["dry_run"]["type"] == "boolean" and schema["retries"]["type"] == "integer"

    onb = _deployment(doc, "onboard-exchange")
    flow = load_flow_from_entrypoint(str(PROJECT / onb["entrypoint"]))
    assert flow.name == "onboard-exchange"
    assert "schedules" not in onb  # on demand
    assert flow.validate_parameters({**onb["parameters"], "ccxt_id": "bybit"})["ccxt_id"] == "bybit"
    assert "ccxt_id" in flow.parameters.model_dump()["required"]  # asked for at each run
