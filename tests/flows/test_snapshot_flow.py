"""The snapshot flow against a real local exchange, nats-server (the daemon's KV bucket) and Prefect: the
state file of each account with both views, every difference between them flagged in the file, the
artifacts and on NATS; an exchange that cannot be reached fails the run after its retries, naming it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.bus import LiveState, ensure_bucket
from oms.model import Balance, Order
from tests.flows.conftest import DAY, T0, artifacts, delete_runs_of, fill
from tests.localex.conftest import LocalServer, free_port, start_server

BUCKET = "oms_state_snapshot_test"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    limits = RateLimitConfig(spot_weight_per_minute=100_000, futures_weight_per_minute=100_000)
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, replay=False))


async def _daemon_view(nats_server) -> None:
    nc = await nats_server.connect("daemon")
    try:
        state = LiveState(await ensure_bucket(nc.jetstream(), BUCKET))
        await state.put("binance/main", "balances", (
            Balance(account="binance/main", market="spot", asset="USDT", free="1000.00"),
            Balance(account="binance/main", market="spot", asset="BTC", free="0.4"),  # the exchange has 0.5
        ))  # fmt: skip
        ghost = Order(account="binance/main", symbol="BTC/USDT", client_order_id="ghost-1", side="buy",
                      order_type="limit", qty="0.01", price="50000", status="new")  # fmt: skip
        await state.put("binance/main", "open_orders", (ghost,))  # the daemon thinks it is open; the venue has none
        await state.put("binance/main", "positions", ())
    finally:
        await nc.close()


async def _listen(nats_server, ready: asyncio.Event, got: list) -> None:
    nc = await nats_server.connect("reader")
    try:
        sub = await nc.subscribe("alerts.snapshot.binance.main")
        await nc.flush()
        ready.set()
        msg = await sub.next_msg(timeout=120)
        got.append(json.loads(msg.data))
    finally:
        await nc.close()


def test_snapshot_flags_every_difference(prefect_server, nats_server, server, tmp_path, monkeypatch) -> None:
    from flows.snapshot import snapshot

    _, key, secret = server.new_account(spot={"USDT": "1000", "BTC": "0.5"})
    monkeypatch.setenv("OMS_KEY_BINANCE_SPOT_MAIN_API_KEY", key)
    monkeypatch.setenv("OMS_KEY_BINANCE_SPOT_MAIN_SECRET", secret)
    monkeypatch.setenv("OMS_NATS_CREDENTIALS_DIR", str(nats_server.settings("flows").credentials_dir))
    asyncio.run(_daemon_view(nats_server))
    # the archive's fills of the account: buy 2 @ 100 and sell 1 @ 120 on 30 Nov (+20), sell 1 @ 90 on the
    # snapshot's day (-10), and a fill of the next day (after the hour's day: not counted)
    with LogWriter(Layout(tmp_path)) as w:
        w.extend([fill("binance/main", 1, "buy", "100", "2", T0 + DAY + 1, "0.2", "BTC/USDT"),
                  fill("binance/main", 2, "sell", "120", "1", T0 + DAY + 2, "0.12", "BTC/USDT"),
                  fill("binance/main", 3, "sell", "90", "1", T0 + 2 * DAY + 5, "0.09", "BTC/USDT"),
                  fill("binance/main", 4, "buy", "50", "1", T0 + 3 * DAY + 5, "0.05", "BTC/USDT")])  # fmt: skip

    async def run() -> tuple[dict, list]:
        ready, got = asyncio.Event(), []
        listener = asyncio.create_task(_listen(nats_server, ready, got))
        await ready.wait()
        out = await snapshot(accounts=["binance/main"], hour="2026-12-01T13:20Z", data_dir=str(tmp_path),
                             nats_url=nats_server.url, local_url=server.url, keys="env", bucket=BUCKET)  # fmt: skip
        await asyncio.wait_for(listener, 60)
        return out, got

    try:
        out, alerts = asyncio.run(run())
        path = tmp_path / "snapshots" / "2026" / "12" / "01" / "13" / "binance" / "main" / "state.json"
        assert out["files"] == {"binance/main": str(path)}
        doc = json.loads(path.read_text())
        assert doc["hour"] == "2026-12-01T13:00:00Z" and doc["in_sync"] is False
        assert doc["pnl"]["archive_realised"] == {"total": "10", "day": "-10"}
        exchange = {(b["asset"], b["free"]) for b in doc["exchange"]["balances"]}
        assert {a for a, _ in exchange} >= {"USDT", "BTC"}
        diffs = {(d["kind"], d["key"], d["daemon"], d["exchange"]) for d in doc["differences"]}
        assert ("open_order", "ghost-1", "open", "absent") in diffs
        btc = [d for d in diffs if d[1] == "spot BTC free"]
        assert len(btc) == 1 and btc[0][2] == "0.4" and float(btc[0][3]) == 0.5
        assert not [d for d in diffs if "USDT" in d[1]]  # 1000.00 and 1000 are one amount
        assert len(alerts) == 1 and alerts[0]["account"] == "binance/main"
        assert {d["key"] for d in alerts[0]["differences"]} == {d[1] for d in diffs}
        found = artifacts()
        assert "binance/main: daemon and exchange differ" in found["snapshot-summary"].data
        assert "| open_order | ghost-1 | open | absent |" in found["snapshot-summary"].data
        assert found["snapshot-accounts"].type == "table"
    finally:
        delete_runs_of("snapshot")


def test_an_unreachable_exchange_fails_the_run_naming_the_account(prefect_server, nats_server, tmp_path,
                                                                  monkeypatch) -> None:  # fmt: skip
    from flows.snapshot import SnapshotFailed, read_exchange, snapshot

    monkeypatch.setenv("OMS_KEY_BINANCE_SPOT_MAIN_API_KEY", "k")
    monkeypatch.setenv("OMS_KEY_BINANCE_SPOT_MAIN_SECRET", "s")
    monkeypatch.setenv("OMS_NATS_CREDENTIALS_DIR", str(nats_server.settings("flows").credentials_dir))
    dead = f"http://127.0.0.1:{free_port()}"
    fast = read_exchange.with_options(retries=1, retry_delay_seconds=0)
    monkeypatch.setattr("flows.snapshot.read_exchange", fast)
    try:
        with pytest.raises(SnapshotFailed, match="cannot read binance/main spot from the exchange"):
            asyncio.run(snapshot(accounts=["binance/main"], data_dir=str(tmp_path), nats_url=nats_server.url,
                                 local_url=dead, keys="env", bucket=BUCKET))  # fmt: skip
        assert not (tmp_path / "snapshots").exists()
        assert "binance/main: FAILED" in artifacts()["snapshot-summary"].data
    finally:
        delete_runs_of("snapshot")


def test_unknown_accounts_are_refused_naming_them(prefect_server, tmp_path) -> None:
    from flows.snapshot import snapshot

    try:
        with pytest.raises(ValueError, match="unknown account.* binance/nope; configured: binance/main"):
            asyncio.run(snapshot(accounts=["binance/nope"], data_dir=str(tmp_path)))
    finally:
        delete_runs_of("snapshot")
