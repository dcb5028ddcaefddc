"""Every deployment of prefect.yaml loads and validates: its flow from the entrypoint, its parameters against
the flow's typed signature and Prefect's parameter schema, its schedules; the reporting flows have their
default schedules; a broken deployment is refused naming it and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.keys.test_prefect_yaml import PROJECT

DOC = yaml.safe_load((PROJECT / "prefect.yaml").read_text())


@pytest.mark.parametrize(
    "spec",
    [pytest.param(d, id=d["name"]) for d in DOC["deployments"]],
)
def test_every_deployment_loads_and_validates(prefect_server, spec) -> None:
    from flows.serve import build, read_specs

    s = next(x for x in read_specs(PROJECT / "prefect.yaml") if x.name == spec["name"])
    deployment = build(s)
    assert deployment.name == spec["name"]
    assert deployment.parameters == spec.get("parameters", {})
    assert len(deployment.schedules or []) == len(spec.get("schedules") or [])
    assert deployment._parameter_openapi_schema.properties  # typed parameters, shown as a form in the UI


def test_the_default_schedules() -> None:
    crons = {d["name"]: [s["cron"] for s in d.get("schedules") or []] for d in DOC["deployments"]}
    assert crons["rebalance-binance"] == ["0 0 * * *"]  # daily at 00:00 UTC
    assert crons["snapshot"] == ["0 * * * *"]  # hourly
    assert crons["pnl-report"] == ["30 1 * * *"] and crons["archive-compact"] == ["15 1 * * *"]  # daily
    assert crons["backtest"] == [] and crons["onboard-exchange"] == []  # on demand
    assert all(s.get("timezone") == "UTC" for d in DOC["deployments"] for s in d.get("schedules") or [])
    rotations = [n for n in crons if n.startswith("rotate-keys-")]
    assert rotations and all(len(crons[n]) == 1 for n in rotations)  # one schedule per account


def test_a_broken_deployment_is_refused_naming_it(prefect_server, tmp_path: Path) -> None:
    from flows.serve import DeploymentError, build, read_specs

    def one(**d) -> Path:
        p = tmp_path / "prefect.yaml"
        p.write_text(yaml.safe_dump({"deployments": [d]}))
        return p

    bad_param = read_specs(one(name="pnl", entrypoint="flows/pnl_report.py:pnl_report", parameters={"monht": "x"}))
    with pytest.raises(DeploymentError, match="deployment pnl: parameters .* do not fit pnl-report"):
        build(bad_param[0])
    bad_type = read_specs(one(name="cmp", entrypoint="flows/archive_compact.py:archive_compact",
                              parameters={"raw_days": "seven"}))  # fmt: skip
    with pytest.raises(DeploymentError, match="deployment cmp: invalid parameters for archive-compact: raw_days"):
        build(bad_type[0])
    bad_cron = read_specs(one(name="snap", entrypoint="flows/snapshot.py:snapshot", schedules=[{"cron": "61 * * * *"}]))
    with pytest.raises(DeploymentError, match="deployment snap: schedule"):
        build(bad_cron[0])
    with pytest.raises(DeploymentError, match="flows/nothing.py does not exist"):
        build(read_specs(one(name="x", entrypoint="flows/nothing.py:f"))[0])
    with pytest.raises(DeploymentError, match="unknown key"):
        read_specs(one(name="x", entrypoint="flows/snapshot.py:snapshot", schedule="hourly"))


def test_oms_flows_list_prints_every_deployment_with_its_schedule(capsys) -> None:
    from oms.cli.main import main

    assert main(["flows", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(DOC["deployments"])
    by_name = {line.split()[0]: line for line in out}
    assert "0 * * * *" in by_name["snapshot"] and "flows/snapshot.py:snapshot" in by_name["snapshot"]
    assert "on demand" in by_name["backtest"]
