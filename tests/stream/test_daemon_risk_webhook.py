"""The risk controls and the webhook inside the running daemon, against the real local exchange and nats-server:
a scripted loss (a round trip that pays the spread and fees) trips the breaker on its timer, the switch is a
risk event in JetStream and new entries over NATS are refused; `resume` lifts it and the breaker starts afresh;
a TradingView-style alert posted to the daemon's webhook becomes an order on the exchange."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from decimal import Decimal

import aiohttp
import msgspec
import yaml

from oms.config import load_config
from oms.keys import EnvKeys
from oms.model import OrderStatus, Side
from oms.services import free_port
from stream.daemon import Daemon, DaemonSettings
from stream.events import RiskEvent
from tests.stream.conftest import FAST, place, request, unique, until
from tests.stream.test_daemon_controls import kill
from tests.stream.test_daemon_orders import events

SECRET = b"a-webhook-secret-of-the-test-0123456789"


def daemon(bench, **kw) -> Daemon:
    cfg = load_config(bench.config_dir, env={})
    settings = DaemonSettings.from_config(
        cfg,
        nats_url=bench.nats_url,
        nats_identity=bench.nats_identity("daemon"),
        local_url=bench.exchange.url,
        venue_options={"binance": FAST},
    )
    return Daemon(cfg, EnvKeys(bench.env), settings, **kw)


def edit(path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))


async def risk_events(nc, name: str) -> list[RiskEvent]:
    raw = await events_raw(nc, f"risk.binance.{name}")
    return [msgspec.json.decode(m, type=RiskEvent) for m in raw]


async def events_raw(nc, subject: str) -> list[bytes]:
    js = nc.jetstream()
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy="all")
    out = []
    try:
        while True:
            try:
                out.append((await sub.next_msg(timeout=0.5)).data)
            except Exception:
                break
    finally:
        await sub.unsubscribe()
    return out


async def test_a_scripted_loss_trips_the_breaker_and_resume_lifts_it(bench, nc):
    name = unique("brk")
    cfg = bench.write([name])

    def breaker(doc):
        doc["circuit_breaker"] = {
            "interval_s": 0.1,
            "accounts": [
                {"window": "1h", "max_loss_usdt": "0.01", "action": "reduce_only"},
                {"window": "1h", "max_loss_usdt": "1000000", "action": "halt"},
            ],
        }

    edit(cfg / "risk.yaml", breaker)
    acct = bench.account(name)
    d = daemon(bench)
    await d.start()
    try:
        assert d.risk.breaker is not None and d.gateway.guard is not None
        n = d.wiring.accounts[("binance", name)]
        i = d.wiring.instruments.lookup("binance", "BTC/USDT")[0]
        held = d.wiring.state.position(n, i)["qty"]  # reconciled: a Spot position is the BTC the account holds
        assert held > 0  # funded with BTC: its moves with the market are not the breaker's loss (pnl: trades)
        high = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        low = str((bench.ticker() * Decimal("0.98")).quantize(Decimal("0.01")))
        [buy] = (await request(nc, acct, place(acct, "0.01", high, intent="in"))).results
        assert buy.ok and buy.status is OrderStatus.FILLED, buy
        # the scripted loss: the position pays the spread and the fee at once, and the replayed market moves
        # it both ways within seconds; a drop of 0.01 USDT from the window's high is enough
        try:
            await until(lambda: d.risk.breaker.trips, timeout=30, what="a breaker trip")
        except AssertionError:
            n = d.wiring.accounts[("binance", name)]
            raise AssertionError(
                f"no trip: ticks {d.risk.ticks} errors {d.risk.errors} pnl {d.risk.breaker.pnl()[0][n]} "
                f"highs {[(w, list(h.q)) for w, h in d.risk.breaker._highs[n].items()]}"
            ) from None
        trips = await until(lambda: _breaker_events(nc, name), timeout=30, what="the breaker's risk event")
        assert trips[0].trading_state == "reduce_only" and "within 1h (limit 0.01)" in trips[0].reason
        assert d.sessions[acct].trading_state == "reduce_only"
        [refused] = (await request(nc, acct, place(acct, "0.01", low, intent="again"))).results
        assert refused.code == "risk:ACCOUNT_REDUCE_ONLY", refused
        [sell] = (await request(nc, acct, place(acct, "0.01", low, side=Side.SELL, intent="out"))).results
        assert sell.ok and sell.status is OrderStatus.FILLED, sell  # reducing the position is allowed
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bench.metrics_port}/metrics") as resp:
                text = await resp.text()
        assert f'oms_breaker_trips_total{{account="{acct}",state="reduce_only"}} 1.0' in text
        await until(lambda: d.wiring.state.position(n, i)["qty"] == held, what="the sell's fill in the kernel")
        assert (await kill(nc, "resume", acct))["trading_state"] == "active"
        ticks = d.risk.ticks
        await until(lambda: d.risk.ticks >= ticks + 3, what="three breaker ticks after the resume")
        assert d.sessions[acct].trading_state == "active"  # the old loss no longer counts
        rest = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        [ok] = (await request(nc, acct, place(acct, "0.01", rest, intent="after-resume"))).results
        assert ok.ok and ok.status is OrderStatus.NEW, ok
    finally:
        await d.stop()


async def test_a_breaker_halt_cancels_the_accounts_open_orders(bench, nc):
    name = unique("brkhalt")
    cfg = bench.write([name])
    edit(cfg / "risk.yaml", lambda doc: doc.update(circuit_breaker={
        "interval_s": 0.1, "accounts": [{"window": "1h", "max_loss_usdt": "0.01", "action": "halt"}]}))  # fmt: skip
    acct = bench.account(name)
    d = daemon(bench)
    await d.start()
    try:
        assert d.cfg.risk.circuit_breaker.cancel_orders_on_halt  # the default
        rest = [str((bench.ticker() * Decimal(f)).quantize(Decimal("0.01"))) for f in ("0.97", "0.96")]
        resting = [(await request(nc, acct, place(acct, "0.01", p, intent=f"rest{k}"))).results[0]
                   for k, p in enumerate(rest)]  # fmt: skip
        assert all(r.ok and r.status is OrderStatus.NEW for r in resting), resting
        high = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        [buy] = (await request(nc, acct, place(acct, "0.01", high, intent="loss"))).results
        assert buy.ok and buy.status is OrderStatus.FILLED, buy  # pays the spread and the fee: a loss
        [trip] = await until(lambda: _breaker_events(nc, name), timeout=30, what="the breaker's halt")
        assert trip.trading_state == "halted" and trip.cancelled == 2, trip
        execution = d.sessions[acct].links[next(iter(d.sessions[acct].links))].clients.execution
        assert await execution.open_orders("BTC/USDT") == []  # gone from the exchange
        for r in resting:
            assert d.gateway.orders.get(r.client_order_id).status is OrderStatus.CANCELED
    finally:
        await d.stop()


async def _breaker_events(nc, name: str) -> list[RiskEvent]:
    return [e for e in await risk_events(nc, name) if e.action == "breaker"]


async def test_an_alert_posted_to_the_daemons_webhook_becomes_an_order_on_the_exchange(bench, nc):
    name = unique("hook")
    cfg = bench.write([name])
    port = free_port()
    edit(cfg / "stream.yaml", lambda doc: doc.update(webhook={"enabled": True, "port": port, "max_age_s": 30}))
    acct = bench.account(name)
    d = daemon(bench, webhook_secret=lambda: SECRET)
    await d.start()
    url = f"http://127.0.0.1:{port}/webhook"
    try:
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        alert = {"secret": SECRET.decode(), "timestamp": int(time.time()), "account": acct, "symbol": "BTC/USDT",
                 "side": "buy", "qty": "0.01", "order_type": "limit", "price": price, "id": "tv-1"}  # fmt: skip
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=alert) as resp:
                reply = await resp.json()
                assert resp.status == 200, reply
            async with http.post(url, json={**alert, "id": "tv-2", "secret": "wrong-" * 6}) as resp:
                assert resp.status == 401
            async with http.post(url, data=b"{oops") as resp:
                assert resp.status == 400 and "not JSON" in (await resp.json())["error"]
            [res] = reply["results"]
            assert res["ok"] and res["status"] == OrderStatus.NEW.value
            coid = res["client_order_id"]
            execution = d.sessions[acct].links[next(iter(d.sessions[acct].links))].clients.execution
            order = await execution.query_order("BTC/USDT", coid)
            assert order.status is OrderStatus.NEW and Decimal(order.qty) == Decimal("0.01")
            stored = await events(nc, "ORDERS", f"orders.binance.{name}.spot.BTC-USDT")
            assert any(getattr(e, "client_order_id", "") == coid for e in stored)
            async with http.get(f"http://127.0.0.1:{bench.metrics_port}/metrics") as resp:
                text = await resp.text()
        for outcome in ("accepted", "unauthorized", "malformed"):
            assert f'oms_webhook_alerts_total{{outcome="{outcome}"}} 1.0' in text
    finally:
        await d.stop()
    async with aiohttp.ClientSession() as http:  # the webhook stopped with the daemon
        try:
            async with http.post(url, json={}) as resp:
                raise AssertionError(f"webhook still answers: {resp.status}")
        except aiohttp.ClientConnectionError:
            pass


async def test_the_cli_kill_switch_speaks_as_the_trader(bench, nc):
    name = unique("cli")
    cfg = bench.write([name])
    acct = bench.account(name)
    d = daemon(bench)
    await d.start()
    env = {**os.environ, **bench.env}  # OMS_NATS_CREDENTIALS_DIR: the test server's identities

    def oms(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "oms.cli.main", "stream", *args, "--config", str(cfg)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip

    try:
        ro = await asyncio.to_thread(oms, "reduce-only", acct, "--reason", "from the CLI")
        assert ro.returncode == 0 and ro.stdout.startswith(f"reduce_only: {acct}"), ro.stdout + ro.stderr
        rest = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        [refused] = (await request(nc, acct, place(acct, "0.01", rest, intent="c1"))).results
        assert refused.code == "risk:ACCOUNT_REDUCE_ONLY", refused
        [event] = [e for e in await risk_events(nc, name) if e.action == "reduce_only"]
        assert event.reason == "from the CLI"
        resumed = await asyncio.to_thread(oms, "resume", acct)
        assert resumed.returncode == 0 and resumed.stdout.startswith(f"active: {acct}"), resumed.stdout
        [ok] = (await request(nc, acct, place(acct, "0.01", rest, intent="c2"))).results
        assert ok.ok, ok
        bad = await asyncio.to_thread(oms, "halt", "binance/nobody")
        assert bad.returncode == 1 and "no daemon answers cmd.halt.binance.nobody" in bad.stderr + bad.stdout
    finally:
        await d.stop()
