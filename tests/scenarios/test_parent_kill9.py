"""kill -9 of the daemon process in the middle of a TWAP parent: the restarted daemon resumes it from the KV
bucket, finds each recorded child at the venue by its derived id, never places one twice, and the parent ends
with the exchange's ledger, JetStream and the daemon's state agreeing (and the account's fills adding up to
exactly the parent's quantity)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal

import msgspec

from oms.model.parents import ParentState, ParentStatus, child_order_id
from tests.stream.conftest import request, unique, until
from tests.stream.emulation_kit import finished, parent, three_views_agree
from tests.stream.test_daemon_orders import events


async def test_kill_9_mid_twap_resumes_and_never_repeats_a_child(bench, nc, tmp_path):
    name = unique("k9twap")
    bench.write([name])
    acct = bench.account(name)
    exchange, acc_name = acct.split("/")
    cmd = [sys.executable, "-m", "oms.cli.main", "stream", "run", "--config", str(bench.config_dir), "--keys", "env",
           "--nats-url", bench.nats_url, "--local-url", bench.exchange.url]  # fmt: skip
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **bench.env})
    twap = parent(acct, "twap", "0.006", slices=6, duration_s=15.0, max_slippage_bps=200, intent="k9")
    kv = None
    try:

        async def accepted():
            try:
                return (await request(nc, acct, twap, timeout=2)).results
            except Exception:  # not up yet
                return None

        [res] = await until(accepted, timeout=120, what="the daemon process taking the parent")
        assert res.ok and res.parent_status is ParentStatus.WORKING, res
        pid = res.client_order_id
        kv = await nc.jetstream().key_value("oms_parents")

        async def two_slices():
            try:
                st = msgspec.json.decode((await kv.get(f"{exchange}.{acc_name}.{pid}")).value, type=ParentState)
            except Exception:
                return None
            return st if len(st.children) >= 2 else None

        before = await until(two_slices, timeout=60, what="two slices recorded")
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-schedule: no shutdown, no flush
        proc.wait(10)
        log.close()
    leases = await nc.jetstream().key_value("oms_leases")

    async def lease_gone() -> bool:
        try:
            await leases.get(f"{exchange}.{acc_name}")
            return False
        except Exception:
            return True

    await until(lease_gone, timeout=60, what="the killed daemon's lease to expire")
    d = bench.daemon()
    await d.start()
    try:
        assert pid in d.emulation.parents.parents
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=120)
        ids = [c.client_order_id for c in st.children]
        assert ids[: len(before.children)] == [c.client_order_id for c in before.children]
        assert ids == [child_order_id(pid, n) for n in range(len(ids))]  # each number once
        await three_views_agree(nc, d, acct, pid)
        # nothing placed twice: every fill of the account is a child's, and they add up to the parent exactly
        subject = f"trades.{exchange}.{acc_name}.>"

        async def all_fills():
            fills = await events(nc, "TRADES", subject)
            return fills if sum(Decimal(f.qty) for f in fills) >= Decimal("0.006") else None

        fills = await until(all_fills, what="the account's fills")
        assert {f.client_order_id for f in fills} <= set(ids)
        assert sum(Decimal(f.qty) for f in fills) == Decimal("0.006")
    finally:
        await d.stop()
