"""Slippage control, managed exits and the hosted strategies' on_fill/on_timer with QUOTE_QTY/CLOSE intents,
through NATS and the daemon against the local exchange; each ends with the exchange, JetStream and the daemon
agreeing."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from oms.model import Fill, OrderStatus, OrderType, Side, TimeInForce
from strategies import registry
from tests.stream import probe_strategy
from tests.stream.conftest import place, request, unique, until
from tests.stream.emulation_kit import child_fills


def _execution(d, acct):
    return next(iter(d.sessions[acct].links.values())).clients.execution


async def test_a_capped_market_order_goes_out_as_an_ioc_limit_and_its_slippage_is_recorded(bench, nc):
    name = unique("slip")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        cmd = msgspec.structs.replace(place(acct, "0.002", None, intent="capped"), max_slippage_bps=100)
        [res] = (await request(nc, acct, cmd)).results
        assert res.ok, res
        order = await _execution(d, acct).query_order("BTC/USDT", res.client_order_id)
        assert order.order_type is OrderType.LIMIT and order.time_in_force is TimeInForce.IOC
        [plain] = (await request(nc, acct, place(acct, "0.001", None, intent="plain"))).results
        assert plain.ok
        coids = {res.client_order_id, plain.client_order_id}
        fills = await until(lambda: _filled(nc, acct, coids), what="both orders' fills in TRADES")
        for f in fills:  # every fill: its reference price and slippage in bps (an event field)
            assert f.reference_price and f.slippage_bps is not None
            expect = (Decimal(f.price) - Decimal(f.reference_price)) / Decimal(f.reference_price) * 10_000
            assert abs(Decimal(f.slippage_bps) - expect) <= Decimal("0.01")
        ref = Decimal(next(f.reference_price for f in fills if f.client_order_id == res.client_order_id))
        assert ref <= Decimal(order.price) <= ref * Decimal("1.01")  # the cap: within 100 bps of the best ask
        assert Decimal(order.filled_qty) == sum(
            Decimal(f.qty) for f in fills if f.client_order_id == res.client_order_id
        )
        page = d.metrics.render().decode()
        assert f'oms_fill_slippage_bps_count{{account="{acct}"}} {float(len(fills))}' in page
        assert f'oms_slippage_capped_total{{account="{acct}"}} 1.0' in page
    finally:
        await d.stop()


async def _filled(nc, acct, coids) -> list[Fill] | None:
    fills = await child_fills(nc, acct, coids)
    return fills if {f.client_order_id for f in fills} == coids else None


async def test_managed_exits_time_stop_and_stop_loss_close_what_the_daemon_bought(bench, nc):
    held, lossy = unique("hold"), unique("loss")
    risk_exits = {"accounts": {"binance": {held: {"max_hold_s": 1}, lossy: {"stop_loss_pct": "0.0001"}}}}
    bench.write([held, lossy], risk_extra={"exits": risk_exits})
    d = bench.daemon()
    await d.start()
    try:
        for name in (held, lossy):
            acct = bench.account(name)
            [res] = (await request(nc, acct, place(acct, "0.002", None, intent="entry"))).results
            assert res.ok, res
        for name, trigger in ((held, "max_hold"), (lossy, "stop_loss")):
            acct = bench.account(name)
            m = await until(lambda a=acct: _managed(d, a), what=f"the managed position of {acct}")
            await until(lambda m=m: Decimal(m.st.qty) == 0 and m.st.exits, timeout=60, what=f"{acct} exited")
            assert m.st.stopped.startswith(trigger), m.st.stopped
            [coid] = m.st.exits
            order = await _execution(d, acct).query_order("BTC/USDT", coid)  # the exchange: sold what was bought
            assert (
                order.side is Side.SELL
                and order.status is OrderStatus.FILLED
                and Decimal(order.filled_qty) == Decimal("0.002")
            )
            fills = await until(lambda a=acct, c=coid: _filled(nc, a, {c}), what="the exit's fill in TRADES")
            assert sum(Decimal(f.qty) for f in fills) == Decimal("0.002")
            exchange, acc_name = acct.split("/")
            kv = await nc.jetstream().key_value("oms_parents")
            stored = await until(
                lambda k=f"{exchange}.{acc_name}.{m.key}", kv=kv: _kv_exit(kv, k), what="the exit state"
            )
            assert stored["qty"] == "0" and stored["exits"] == [coid]
    finally:
        await d.stop()


def _managed(d, acct):
    found = [m for m in d.emulation.exits.positions.values() if m.st.account == acct]
    return found[0] if found else None


async def _kv_exit(kv, key):
    import json

    try:
        doc = json.loads((await kv.get(key)).value)
    except Exception:
        return None
    return doc if doc.get("qty") == "0" else None


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setitem(registry.BUILTINS, "probe", probe_strategy.STRATEGY)
    return probe_strategy


async def test_hosted_strategy_gets_fills_and_timers_and_its_quote_qty_and_close_intents_trade(bench, nc, probe):
    name, taker = unique("probe"), unique("taker")
    # the strategy's account holds no BTC: its position is what it buys, and CLOSE sells exactly that
    bench.accounts[name] = acct_keys = bench.exchange.new_account(spot={"USDT": "100000"})
    stem = f"OMS_KEY_BINANCE_{name.upper()}"
    bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = acct_keys[1], acct_keys[2]
    strategies = {"probe_test": {"account": name, "kind": "probe", "exchange": "binance", "market": "spot",
                                 "symbols": ["BTC/USDT"], "params": {"budget_usdt": 200}}}  # fmt: skip
    bench.write([name, taker], strategies=strategies)
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        [hosted] = d.strategies.hosted
        [r] = await d.router.execute([place(bench.account(taker), "0.002", None, intent="take")])  # a market trade
        assert r.ok, r
        state = hosted.host.state
        await until(lambda: state[probe.S_CLOSED] == 1, timeout=60, what="the strategy's CLOSE on its timer")

        def ours():  # read again each time: the CLOSE intent's order reaches the gateway after S_CLOSED is set
            return [rec for rec in d.gateway.orders if rec.cmd.strategy == "probe_test"]

        await until(
            lambda: len(ours()) == 2 and all(not rec.is_open for rec in ours()), timeout=60, what="buy and close done"
        )
        ours = ours()
        buy, close = sorted(ours, key=lambda rec: rec.cmd.side != Side.BUY)
        ask_budget = Decimal(200)
        bought = Decimal(buy.cmd.qty)
        assert buy.cmd.order_type is OrderType.MARKET and 0 < bought * bench.ticker() <= ask_budget * Decimal("1.02")
        # the whole position, less the buy's fee paid in BTC (Spot): what the account holds, in whole lots
        fee = sum(Decimal(f.commission) for f in await child_fills(nc, acct, {buy.client_order_id}))
        assert close.cmd.side is Side.SELL and Decimal(close.cmd.qty) == (bought - fee).quantize(
            Decimal("0.00001"), "ROUND_DOWN"
        )
        await until(lambda: state[probe.S_FILLS] >= 2, what="both fills delivered to on_fill")
        assert state[probe.S_TIMERS] >= 1 and state[probe.S_REJECTS] == 0
        i, ins = d.wiring.instruments.lookup("binance", "BTC/USDT")
        assert state[probe.S_FILLED] == ins.qty(buy.cmd.qty) + ins.qty(close.cmd.qty)
        for rec in (buy, close):  # the exchange has both, filled
            order = await _execution(d, acct).query_order("BTC/USDT", rec.client_order_id)
            assert order.status is OrderStatus.FILLED and Decimal(order.filled_qty) == Decimal(rec.cmd.qty)
        fills = await until(lambda: _filled(nc, acct, {buy.client_order_id, close.client_order_id}), what="fills")
        assert sum(Decimal(f.qty) for f in fills) == bought + Decimal(close.cmd.qty)
        left = d.wiring.state.pos[0, d.sessions[acct].number, i].sum()
        assert left == ins.qty(buy.cmd.qty) - ins.qty(close.cmd.qty)  # the kernel: bought - sold (the fee's dust)
        assert not d.strategies.dropped
    finally:
        await d.stop()
