"""Fault scenarios of the daemon's reconciliation, each ending with the three-way ledger (exchange, JetStream,
daemon): 0 fills lost, 0 fills or orders duplicated, open orders and positions equal.

* five restarts against an unchanged exchange publish no new event;
* nats-server stopped and restarted mid-run: fills made meanwhile reach JetStream once, in order;
* kill -9 of a daemon process with resting orders placed before any lookback: all adopted on restart;
* kill -9 after an order frame is written and before its answer is read: found by client order id on
  restart, never re-sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from oms.bus import BusSettings, connect_as
from oms.model import Market, OrderStatus
from oms.services.nats import NatsService
from tests.harness.servers import loopback_settings, nats_settings
from tests.scenarios.conftest import ledger, stream_counts
from tests.stream.conftest import Bench, place, request, unique, until
from tests.venues.binance.proxy import CuttingProxy

pytestmark = pytest.mark.scenario
WIDE = {"price_band_pct": 25}  # resting orders far from the replayed market, so the exchange stays unchanged


def near(bench, frac: str) -> str:
    return str((bench.ticker() * Decimal(frac)).quantize(Decimal("0.01")))


async def test_five_restarts_against_an_unchanged_exchange_publish_nothing(bench, nc):
    name = unique("five")
    bench.write([name], risk={name: WIDE})
    acct = bench.account(name)
    since = time.time_ns() - 60 * 10**9
    d = bench.daemon()
    await d.start()
    try:
        [rest] = (await request(nc, acct, place(acct, "0.01", near(bench, "0.85"), intent="rest"))).results
        [hit] = (await request(nc, acct, place(acct, "0.01", near(bench, "1.02"), intent="hit"))).results
        assert rest.ok and rest.status is OrderStatus.NEW and hit.ok, (rest, hit)
        await until(lambda: d.gateway.orders.get(hit.client_order_id).status is OrderStatus.FILLED, what="the fill")
        session = d.sessions[acct]  # and the stream's balance update after it (the view the daemon leaves behind)
        await until(lambda: Decimal(session.balances[(Market.SPOT, "BTC")].free) > 2, what="the BTC balance update")
    finally:
        await d.stop()
    before = await stream_counts(nc, name)
    assert before["TRADES"] >= 1 and before["ORDERS"] >= 2
    for k in range(5):
        d = bench.daemon()
        await d.start()
        try:
            started = time.time_ns()
            assert d.sessions[acct].trading, d.sessions[acct].refused
            assert d.gateway.orders.get(rest.client_order_id).status is OrderStatus.NEW  # adopted again
            (await ledger(bench, nc, d, name, since, started)).check()
        finally:
            await d.stop()
        assert await stream_counts(nc, name) == before, f"restart {k + 1} published new events"


async def test_nats_stopped_and_restarted_mid_run_loses_and_doubles_nothing(exchange, tmp_path):
    svc = NatsService(loopback_settings(tmp_path / "nats"))
    svc.up()
    bench = Bench(exchange, svc, tmp_path / "bench")
    name = unique("natsdown")
    bench.write([name])
    acct = bench.account(name)
    since = time.time_ns() - 60 * 10**9
    d = bench.daemon(bus=BusSettings(lease_ttl_s=60))
    try:
        await d.start()
        started = time.time_ns()
        [first] = await d.router.execute([place(acct, "0.002", near(bench, "1.02"), intent="before")])
        assert first.ok, first
        svc.down()  # NATS goes away mid-run
        await until(lambda: not d.nc.is_connected, what="the daemon to see NATS gone")
        during = await d.router.execute(
            [place(acct, "0.002", near(bench, "1.02"), intent=f"during{k}") for k in range(3)]
        )
        assert all(r.ok for r in during), during
        await until(lambda: all(d.gateway.orders.get(r.client_order_id).status is OrderStatus.FILLED for r in during),
                    what="the fills while NATS is down")  # fmt: skip
        assert d.publisher.backlog > 0  # kept in the outbox
        svc.up()
        await until(lambda: d.nc.is_connected and d.publisher.backlog == 0, timeout=60, what="the outbox drained")
        conn = await connect_as(nats_settings(svc, "reader"))
        try:
            lg = await ledger(bench, conn, d, name, since, started)
            lg.check()
            assert len(lg.venue_fills) >= 4
            filled = [e for e in lg.stream_orders if e.status is OrderStatus.FILLED]
            assert {e.client_order_id for e in filled} == {first.client_order_id, *(r.client_order_id for r in during)}
        finally:
            await conn.close()
    finally:
        await d.stop()
        svc.down()


async def test_kill_9_with_resting_orders_older_than_any_lookback_all_adopted(bench, nc, tmp_path):
    name = unique("kill")
    bench.write([name], risk={name: WIDE})
    acct = bench.account(name)
    since = time.time_ns() - 60 * 10**9
    env = {**os.environ, **bench.env, "OMS_RECONCILE_LOOKBACK_S": "1"}
    cmd = [sys.executable, "-m", "oms.cli.main", "stream", "run", "--config", str(bench.config_dir), "--keys", "env",
           "--nats-url", bench.nats_url, "--local-url", bench.exchange.url]  # fmt: skip
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        p1 = near(bench, "0.85")

        async def placed():
            try:
                return (await request(nc, acct, place(acct, "0.01", p1, intent="r1"), timeout=2)).results
            except Exception:  # not up yet: no responder, or a timeout
                return None

        [r1] = await until(placed, timeout=90, what="the daemon process taking orders")
        [r2] = (await request(nc, acct, place(acct, "0.01", near(bench, "0.84"), intent="r2"))).results
        assert r1.ok and r2.ok and r1.status is OrderStatus.NEW and r2.status is OrderStatus.NEW, (r1, r2)
        await asyncio.sleep(2.5)  # the orders' opening is now older than the restarted daemon's lookback
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()
    lease = await nc.jetstream().key_value("oms_leases")

    async def lease_gone() -> bool:
        try:
            await lease.get(f"binance.{name}")
            return False
        except Exception:
            return True

    await until(lease_gone, timeout=40, what="the killed daemon's lease to expire")
    os.environ["OMS_RECONCILE_LOOKBACK_S"] = "1"
    try:
        d = bench.daemon()
        await d.start()
    finally:
        del os.environ["OMS_RECONCILE_LOOKBACK_S"]
    try:
        started = time.time_ns()
        assert d.sessions[acct].trading, d.sessions[acct].refused
        for r in (r1, r2):
            rec = d.gateway.orders.get(r.client_order_id)
            assert rec is not None and rec.status is OrderStatus.NEW and rec.venue_order_id
        # the same command again (a client retrying after the crash) is the adopted order: never sent twice
        [same] = (await request(nc, acct, place(acct, "0.01", p1, intent="r1"))).results
        assert same.client_order_id == r1.client_order_id and same.status is OrderStatus.NEW
        (await ledger(bench, nc, d, name, since, started)).check()
    finally:
        await d.stop()


async def test_kill_9_between_an_order_frame_and_its_answer_restart_finds_it_by_coid(bench, nc, tmp_path):
    """The daemon process writes an order frame (the venue executes it) and is killed before it reads the answer:
    the restarted daemon finds the order by its client order id and does not send it again."""
    name = unique("frame")
    bench.write([name], risk={name: WIDE})
    acct = bench.account(name)
    since = time.time_ns() - 60 * 10**9
    port = int(bench.exchange.url.rsplit(":", 1)[1])
    proxy = await CuttingProxy(port).start()
    ws = "ws://" + bench.exchange.url.split("://", 1)[1]
    env = {
        **os.environ, **bench.env, "OMS_BINANCE_VENUE": "live", "OMS_BINANCE_SPOT_REST_URL": bench.exchange.url,
        "OMS_BINANCE_SPOT_WS_URL": ws, "OMS_BINANCE_SPOT_WS_API_URL": f"{proxy.ws_url}/ws-api/v3",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "oms.cli.main", "stream", "run", "--config", str(bench.config_dir), "--keys", "env",
           "--nats-url", bench.nats_url]  # fmt: skip
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    lost = place(acct, "0.01", near(bench, "0.85"), intent="lost").with_client_order_id()
    try:
        first = place(acct, "0.01", near(bench, "0.84"), intent="first")

        async def placed():
            try:
                return (await request(nc, acct, first, timeout=2)).results
            except Exception:  # not up yet: no responder, or a timeout
                return None

        [r0] = await until(placed, timeout=90, what="the daemon process taking orders")
        assert r0.ok and r0.status is OrderStatus.NEW, r0
        proxy.arm("mute")
        pending = asyncio.ensure_future(request(nc, acct, lost, timeout=30))
        await asyncio.wait_for(proxy.cut.wait(), 20)  # the frame went out; its answer is held
    finally:
        proc.send_signal(signal.SIGKILL)  # killed before it reads the answer
        proc.wait(10)
        log.close()
        await proxy.close()
    pending.cancel()
    assert proxy.forwarded_trigger
    lease = await nc.jetstream().key_value("oms_leases")

    async def lease_gone() -> bool:
        try:
            await lease.get(f"binance.{name}")
            return False
        except Exception:
            return True

    await until(lease_gone, timeout=40, what="the killed daemon's lease to expire")
    d = bench.daemon()
    await d.start()
    try:
        started = time.time_ns()
        assert d.sessions[acct].trading, d.sessions[acct].refused
        rec = d.gateway.orders.get(lost.client_order_id)
        assert rec is not None and rec.status is OrderStatus.NEW and rec.venue_order_id  # found by its coid
        [again] = (await request(nc, acct, place(acct, "0.01", lost.price, intent="lost"))).results
        assert again.client_order_id == lost.client_order_id and again.status is OrderStatus.NEW  # not re-sent
        lg = await ledger(bench, nc, d, name, since, started)
        lg.check()  # among them: one venue order per client order id
        assert lost.client_order_id in {o.client_order_id for o in lg.venue_open}
    finally:
        await d.stop()
