"""A rebalance killed mid-way is resumed by the next run without moving money twice: the flow runs in its own
process against the local exchange, which executes the second transfer and holds its answer; the process is
killed (SIGKILL) then, with the third transfer never sent. The rerun finds the first two in the exchange's
transfer history by their ids, sends only the third, and records each once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.flows.conftest import PROJECT, Desk
from tests.flows.test_rebalance_flow import check_rules, transfer_lines

pytestmark = pytest.mark.scenario


def test_a_flow_killed_mid_transfer_is_resumed_without_moving_money_twice(desk: Desk, prefect_server):
    v = desk.venue
    venue_before = len(v.venue_transfers())
    args = {"config_dir": str(desk.config_dir), "keys_file": str(desk.keys_file), "cycle": "crash-1"}
    code = (
        "import asyncio, json, sys\n"
        "from flows.rebalance import rebalance\n"
        "print(json.dumps(asyncio.run(rebalance(**json.loads(sys.argv[1])))))\n"
    )
    env = {**os.environ, **desk.env, "PREFECT_API_URL": prefect_server}
    v.gate.hold(2)  # the venue executes the second transfer and holds its answer: the flow never hears back
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], cwd=PROJECT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert v.gate.arrived.wait(120), proc.communicate(timeout=5)[0].decode()[-3000:]
        proc.send_signal(signal.SIGKILL)  # the flow dies with transfer 2 in flight and transfer 3 not sent
        proc.wait(30)
    finally:
        v.gate.release(v.loop)
    assert len(v.venue_transfers()) == venue_before + 2  # the first two moved, the third was never sent
    plan_file = desk.data_dir / "rebalance" / "binance" / "crash-1.json"
    assert plan_file.exists()  # the plan was saved before anything moved
    assert len(transfer_lines(desk)) == 1  # the first was recorded; the second's answer never came

    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [t["outcome"] for t in result["transfers"]] == ["found", "found", "sent"]
    assert len(v.venue_transfers()) == venue_before + 3  # three transfers in all, none twice
    assert [ln["transfer"]["transfer_id"] for ln in transfer_lines(desk)] == [
        t["transfer_id"] for t in result["transfers"]
    ]
    check_rules(desk)
