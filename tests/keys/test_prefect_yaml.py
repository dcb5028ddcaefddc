"""prefect.yaml has a rotate-keys deployment for every configured account, each on its own valid schedule."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from oms.config import load_config

PROJECT = Path(__file__).resolve().parents[2]


def test_every_account_has_its_own_rotate_keys_deployment(prefect_server):
    # prefect is imported inside tests that use prefect_server: its settings freeze at the first import, so
    # PREFECT_API_URL must be set by then (or every later flow in this process runs on an ephemeral server)
    from prefect.client.schemas.schedules import CronSchedule

    from flows.rotate_keys import rotate_keys

    doc = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
    rotations = [d for d in doc["deployments"] if d["entrypoint"] == "flows/rotate_keys.py:rotate_keys"]
    cfg = load_config(env={})
    accounts = {(ex, name) for ex, accts in cfg.accounts.items() for name in accts}
    assert {(d["parameters"]["exchange"], d["parameters"]["account"]) for d in rotations} == accounts
    assert len(rotations) == len(accounts)
    crons = [d["schedules"][0]["cron"] for d in rotations]
    assert len(set(crons)) == len(crons)  # no two accounts rotate at the same moment
    for d in rotations:
        assert len(d["schedules"]) == 1
        CronSchedule(cron=d["schedules"][0]["cron"], timezone=d["schedules"][0]["timezone"])
    signature = inspect.signature(rotate_keys.fn)
    for d in rotations:
        signature.bind(**d["parameters"])  # the parameters are the flow's
    assert rotate_keys.name == "rotate-keys"
