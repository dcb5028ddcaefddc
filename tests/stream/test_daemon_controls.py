"""The kill switch per account and global, two daemons for one account, and the health and metrics endpoints,
all against the real local exchange and nats-server."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import aiohttp
import msgspec

from kernels.state import I_MARK
from oms.bus import AccountLease, BusSettings, LeaseHeld
from oms.model import OrderStatus, Side
from oms.model.codec import decode
from oms.services import free_port
from tests.stream.conftest import place, request, unique, until


async def kill(nc, action: str, account: str | None = None, **body) -> dict:
    subject = f"cmd.{action}" + (f".{account.replace('/', '.')}" if account else "")
    msg = await nc.request(subject, msgspec.json.encode(body) if body else b"", timeout=20)
    return json.loads(msg.data)


def below(bench, frac: str = "0.97") -> str:
    return str((bench.ticker() * Decimal(frac)).quantize(Decimal("0.01")))


async def test_halt_reduce_only_and_resume_per_account_and_global(bench, nc):
    a_name, b_name = unique(), unique()
    bench.write([a_name, b_name])
    a, b = bench.account(a_name), bench.account(b_name)
    d = bench.daemon()
    await d.start()
    try:
        halted = await kill(nc, "halt", a, reason="test halt")
        assert halted["ok"] and halted["trading_state"] == "halted" and halted["accounts"] == [a]
        [r] = (await request(nc, a, place(a, "0.01", below(bench), intent="1"))).results
        assert not r.ok and r.code == "risk:ACCOUNT_HALTED", r
        [ok_b] = (await request(nc, b, place(b, "0.01", below(bench), intent="1"))).results
        assert ok_b.ok and ok_b.status is OrderStatus.NEW  # the other account trades on
        assert (await kill(nc, "resume", a))["trading_state"] == "active"
        [r2] = (await request(nc, a, place(a, "0.01", below(bench), intent="2"))).results
        assert r2.ok and r2.status is OrderStatus.NEW, r2

        ro = await kill(nc, "reduce_only", a)
        assert ro["trading_state"] == "reduce_only"
        [r3] = (await request(nc, a, place(a, "0.01", below(bench), intent="3"))).results
        assert not r3.ok and "REDUCE_ONLY" in r3.code, r3
        await kill(nc, "resume", a)

        # global halt, cancelling every open order of every account
        g = await kill(nc, "halt", cancel_orders=True, reason="global stop")
        assert g["ok"] and sorted(g["accounts"]) == sorted([a, b]) and g["cancelled"] >= 2
        for acct in (a, b):
            assert d.account_health(acct)["trading_state"] == "halted"
            await until(lambda acct=acct: d.account_health(acct)["open_orders"] == 0, what=f"{acct} cancelled")
        [r4] = (await request(nc, b, place(b, "0.01", below(bench), intent="4"))).results
        assert not r4.ok and r4.code == "risk:GLOBAL_HALTED"
        await kill(nc, "resume")
        [r5] = (await request(nc, b, place(b, "0.01", below(bench), intent="5"))).results
        assert r5.ok, r5
        bad = await nc.request("cmd.halt", b"{not json", timeout=10)
        assert not json.loads(bad.data)["ok"]
        body = d.metrics.render().decode()
        assert 'oms_kill_switch_total{action="halt"} 2.0' in body
    finally:
        await d.stop()


async def test_a_second_daemon_for_the_same_account_refuses_to_trade_it(bench, nc, caplog):
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    first = bench.daemon()
    await first.start()
    second = bench.daemon(health_port=free_port(), metrics_port=free_port())
    try:
        with caplog.at_level(logging.ERROR, logger="stream.daemon"):
            await second.start()
        s = second.sessions[acct]
        assert not s.trading and "is traded by" in s.refused and first.settings.holder in s.refused
        assert any("not trading it here" in r.getMessage() for r in caplog.records)
        ok, body = second.health()
        assert not ok and body["accounts"][acct]["trading"] is False
        [r] = (await request(nc, acct, place(acct, "0.01", below(bench), side=Side.BUY, intent="x"))).results
        assert r.ok  # answered by the first daemon, the only one subscribed for it
        assert len(first.gateway.orders) == 1 and len(second.gateway.orders) == 0
    finally:
        await second.stop()
        await first.stop()
    # once the first is gone, its lease is released and a new daemon takes the account
    third = bench.daemon()
    await third.start()
    try:
        assert third.sessions[acct].trading
    finally:
        await third.stop()


async def test_a_start_longer_than_the_lease_ttl_keeps_the_lease(bench, nc):
    """The lease is refreshed from the moment it is taken: a start that outlasts its TTL (200 accounts paced
    inside the IP's weight take minutes) must not let a second daemon take an account half-started."""
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon(bus=BusSettings(lease_bucket="leases_slow_start", lease_ttl_s=1.0))
    reconcile, rival = d.reconcile_hook, {}

    async def slow_reconcile(daemon, session, reason):
        kv = await daemon.nc.jetstream().key_value("leases_slow_start")  # the test client may not write it
        for _ in range(4):  # 4 s, four TTLs: a rival holder tries every second
            await asyncio.sleep(1.0)
            try:
                await AccountLease(kv, acct, "rival").acquire()
                rival["took"] = True
            except LeaseHeld as exc:
                rival["refused"] = str(exc)
        await reconcile(daemon, session, reason)

    d.reconcile_hook = slow_reconcile
    await d.start()
    try:
        assert "took" not in rival and d.settings.holder in rival["refused"]
        assert d.sessions[acct].trading and d.sessions[acct].lease is not None
    finally:
        await d.stop()


async def test_health_per_account_and_prometheus_metrics_on_loopback(bench, nc):
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        [r] = (await request(nc, acct, place(acct, "0.01", below(bench), intent="h"))).results
        assert r.ok
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bench.health_port}/health") as resp:
                assert resp.status == 200
                doc = await resp.json()
                assert doc["status"] == "ok" and doc["nats_connected"] and acct in doc["accounts"]
            async with http.get(f"http://127.0.0.1:{bench.health_port}/health/binance/{name}") as resp:
                one = await resp.json()
                assert resp.status == 200 and one["connected"] and one["trading"] and one["open_orders"] == 1
                assert one["trading_state"] == "active" and 0 < one["rate_limit_headroom"] <= 1
                assert one["last_message_age_s"] is not None and one["weight_used"] > 0
            async with http.get(f"http://127.0.0.1:{bench.health_port}/health/binance/nobody") as resp:
                assert resp.status == 404 and acct in (await resp.json())["accounts"]
            async with http.get(f"http://127.0.0.1:{bench.metrics_port}/metrics") as resp:
                assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()
        assert f'oms_orders_total{{account="{acct}"}} 1.0' in text
        assert 'oms_latency_seconds_bucket{le="0.0001",path="gateway"}' in text
        assert 'oms_latency_seconds_count{path="venue_place"} 1.0' in text
        assert 'oms_events_published_total{kind="OrderEvent"}' in text
        assert "oms_outbox_depth 0.0" in text
        assert f'oms_weight_used{{account="{acct}"}}' in text and f'oms_open_orders{{account="{acct}"}} 1.0' in text
        assert "oms_reconnects_total" in text or "oms_reconnects" in text
    finally:
        await d.stop()


async def test_market_data_goes_through_the_book_kernel_and_out_on_md_subjects(bench, nc):
    name = unique()
    bench.write([name])
    got: list = []

    async def collect(msg) -> None:
        got.append(decode(msg.data))

    sub = await nc.subscribe("md.binance.spot.BTC-USDT", cb=collect)
    d = bench.daemon()
    await d.start()
    try:
        await until(lambda: {type(e).__name__ for e in got} >= {"Quote", "DepthDiff"}, what="quotes and depth on md")
        assert all(e.symbol == "BTC/USDT" and e.exchange == "binance" for e in got)
        [feed] = d.feeds
        bid, ask = feed.best("BTC/USDT")
        mid = bench.ticker()
        i = feed.numbers["BTC/USDT"]
        ins = d.wiring.instruments.instrument(i)[1]
        assert 0 < bid < ask and abs(Decimal(ins.price_str(bid)) / mid - 1) < Decimal("0.05")
        assert int(d.wiring.state.ins[I_MARK, i]) > 0  # the risk kernel has a mark
    finally:
        await sub.unsubscribe()
        await d.stop()
