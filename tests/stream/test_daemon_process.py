"""`oms stream run` as its own process: it trades over NATS, writes its per-account log files without secrets,
`oms stream status` shows its accounts and positions, and SIGTERM stops it cleanly: commands refused, open
orders cancelled (``on_shutdown: cancel``), events flushed, the lease released, exit status 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal

from oms.model import OrderStatus
from tests.stream.conftest import place, request, unique, until


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


async def test_oms_stream_run_trades_shows_status_and_stops_cleanly_on_sigterm(bench, nc):
    name = unique("proc")
    cfg = bench.write([name], on_shutdown="cancel")
    acct = bench.account(name)
    env = {**os.environ, **bench.env}
    command = [sys.executable, "-m", "oms.cli.main", "stream", "run", "--config", str(cfg), "--keys", "env",
               "--accounts", acct, "--local-url", bench.exchange.url]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        doc = await until(lambda: _health(bench.health_port), timeout=120, what="the daemon's /health")
        await until(lambda: (_health(bench.health_port) or {}).get("status") == "ok", timeout=60, what="trading")
        assert list(doc["accounts"]) == [acct]
        fill_price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        [filled] = (await request(nc, acct, place(acct, "0.01", fill_price, intent="p1"))).results
        assert filled.ok, filled
        rest_price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        [resting] = (await request(nc, acct, place(acct, "0.01", rest_price, intent="p2"))).results
        assert resting.ok and resting.status is OrderStatus.NEW, resting

        async def shown() -> str | None:
            out = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "oms.cli.main", "stream", "status", "--config", str(cfg)],
                capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=60,
            )  # fmt: skip
            return out.stdout if out.returncode == 0 and "BTC/USDT 2.01" in out.stdout else None

        # Spot positions are holdings: 2 BTC funded (reconciled at start) + 0.01 bought
        table = await until(shown, timeout=30, what="oms stream status showing the position")
        assert acct in table and "active" in table

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 60)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert code == 0, output
        assert "1 open order(s) cancelled at shutdown" in output and "stopped" in output
        # the exchange no longer has the resting order; the lease is free again
        second = bench.daemon()
        await second.start()
        try:
            execution = next(iter(second.sessions[acct].links.values())).clients.execution
            assert (await execution.query_order("BTC/USDT", resting.client_order_id)).status is OrderStatus.CANCELED
            assert second.sessions[acct].trading
        finally:
            await second.stop()
        log_dir = bench.data_dir / "logs" / "stream"
        account_log = (log_dir / "binance" / f"{name}.jsonl").read_text()
        assert resting.client_order_id in account_log or "cancelled at shutdown" in account_log
        everything = "".join(p.read_text() for p in log_dir.rglob("*.jsonl*"))
        _, key, secret = bench.accounts[name]
        assert secret not in everything and secret not in output
        assert all(json.loads(line)["level"] for line in (log_dir / "daemon.jsonl").read_text().splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
