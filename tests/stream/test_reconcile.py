"""Reconciliation against a real local exchange through both real connectors (python-binance and ccxt), with
events in a real JetStream: adoption of orders the daemon did not know, missing fills published once,
unknown outcomes resolved by client order id and never re-sent, the grace window, balances and positions in
the kernel and the KV live state, and restarts against an unchanged exchange publishing nothing."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from kernels.state import A_CASH, A_OPEN_ORDERS, P_QTY
from oms.model import (
    Balance,
    Market,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Position,
    Side,
)
from oms.model.units import money_to_units
from stream.reconcile import Reconciler
from stream.reconcile_state import KernelSync
from tests.localex.conftest import start_server
from tests.stream.reconcile_kit import (
    PERP,
    SPOT,
    Bus,
    below,
    connect_bus,
    harness_for,
    new_daemon,
    reconciler,
    set_mark,
    spot_bid,
    target,
    unique,
)
from tests.venues.binance.conftest import server_config

LIBRARIES = ["python-binance", "ccxt"]


@pytest.fixture(scope="module")
def server():
    yield from start_server(server_config())


@pytest.fixture
async def bus(nats_server, tmp_path):
    b = await connect_bus(nats_server, tmp_path / "outbox")
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture(params=LIBRARIES)
async def venue(request, server):
    h, options = harness_for(server, request.param)
    try:
        yield h, options
    finally:
        await h.close()


def cmd(account: str, symbol: str, side: str, order_type: str, qty: str, price: str | None = None, **kw) -> PlaceOrder:
    return PlaceOrder(
        account=account, symbol=symbol, side=Side(side), order_type=OrderType(order_type), qty=qty, price=price,
        intent=kw.pop("intent", str(time.time_ns())), **kw,
    ).with_client_order_id()  # fmt: skip


async def counts(bus: Bus, name: str) -> tuple[int, int, int]:
    return (
        await bus.count("ORDERS", f"orders.binance.{name}.>"),
        await bus.count("TRADES", f"trades.binance.{name}.>"),
        await bus.count("BALANCES", f"balances.binance.{name}.>"),
    )


async def test_restart_adopts_live_orders_publishes_missing_fills_once_then_nothing(venue, bus):
    h, options = venue
    name = unique()
    c = await h.account(Market.SPOT, name=name, options=options)
    acct = str(c.ctx.account)
    bid = spot_bid(h.server)
    resting = [await c.execution.place(cmd(acct, SPOT, "buy", "limit", "0.01", below(bid, f))) for f in (0.95, 0.9)]
    taker = await c.execution.place(cmd(acct, SPOT, "buy", "market", "0.002"))
    assert taker.status is OrderStatus.FILLED
    venue_fills = await c.execution.fills(SPOT, time.time_ns() - 60 * 10**9)
    assert venue_fills

    d = await new_daemon(h, [name])  # the daemon starts knowing nothing
    r = reconciler(d, bus)
    [rep] = await r.run([target(c)])
    assert rep.ok, rep.error
    assert sorted(rep.adopted) == sorted(e.client_order_id for e in resting)
    for e in resting:
        rec = d.gateway.orders.get(e.client_order_id)
        assert rec is not None and rec.status is OrderStatus.NEW and rec.venue_order_id == e.venue_order_id
    assert int(d.gateway.state.acc[A_OPEN_ORDERS, 0]) == 2  # adopted orders hold their reservations
    assert rep.fills_new == len(venue_fills) and rep.fills_known == 0
    n_orders, n_trades, n_bal = await counts(bus, name)
    assert (n_orders, n_trades, n_bal) == (2, len(venue_fills), 1)
    # kernel cash is the venue's USDT wallet, free + locked
    usdt = next(b for b in await c.execution.balances() if b.asset == "USDT")
    want = money_to_units(str(Decimal(usdt.free) + Decimal(usdt.locked)))
    assert int(d.gateway.state.acc[A_CASH, 0]) == want
    stored = await bus.live.get(acct, "balances", list[Balance])
    assert {b.asset for b in stored} >= {"USDT", "BTC"}
    assert {o.client_order_id for o in await bus.live.get(acct, "open_orders", list[Order])} == set(rep.adopted)
    # the same order command after the restart is known: never sent twice
    again = d.gateway.place(cmd(acct, SPOT, "buy", "limit", "0.01", below(bid, 0.95)))
    assert again.send == [] or again.result.client_order_id not in rep.adopted

    for _ in range(2):  # restarts against the unchanged exchange publish nothing new
        d2 = await new_daemon(h, [name])
        [rep2] = await reconciler(d2, bus).run([target(c)])
        assert rep2.ok and rep2.events == 0 and rep2.fills_new == 0 and rep2.fills_known == len(venue_fills)
        assert sorted(rep2.adopted) == sorted(rep.adopted)
        assert await counts(bus, name) == (n_orders, n_trades, n_bal)


async def test_unknown_outcome_is_resolved_by_client_order_id_and_never_resent(venue, bus):
    h, options = venue
    name = unique()
    c = await h.account(Market.SPOT, name=name, options=options)
    acct = str(c.ctx.account)
    d = await new_daemon(h, [name])
    gw = d.gateway
    bid = spot_bid(h.server)
    set_mark(d, SPOT, bid)
    KernelSync(gw.state, gw.instruments).apply(0, "binance", Market.SPOT, await c.execution.balances(), [])
    order = cmd(acct, SPOT, "buy", "limit", "0.01", below(bid))
    decision = gw.place(order)
    assert decision.send == [order], decision.result
    await c.execution.place(decision.send[0])  # the frame went out ...
    rec = gw.orders.get(order.client_order_id)
    gw.orders.mark(rec, OrderEventKind.OUTCOME_UNKNOWN, time.time_ns())  # ... and its answer never came
    assert rec.status is OrderStatus.UNKNOWN
    never = cmd(acct, SPOT, "buy", "limit", "0.01", below(bid, 0.9))  # sent? the venue never got it
    [rep] = await reconciler(d, bus, grace_s=0.2).run([target(c, pending=[(SPOT, never.client_order_id)])])
    assert rep.ok, rep.error
    assert rep.resolved[order.client_order_id] == "new" and rec.status is OrderStatus.NEW
    assert rep.resolved[never.client_order_id] == "rejected" and never.client_order_id in rep.deferred
    assert gw.place(order).send == []  # known: a retry is answered, not sent
    live = [o.client_order_id for o in await c.execution.open_orders(SPOT)]
    assert live == [order.client_order_id]  # placed once, and the unknown one was not placed at all


async def test_grace_window_keeps_an_order_the_venue_shows_late(venue, bus):
    """An order the daemon saw acknowledged, which the venue does not show at first: not ended, not re-placed;
    when it shows within the grace window it is simply known."""
    h, options = venue
    name = unique()
    c = await h.account(Market.SPOT, name=name, options=options)
    acct = str(c.ctx.account)
    d = await new_daemon(h, [name])
    bid = spot_bid(h.server)
    set_mark(d, SPOT, bid)
    late = cmd(acct, SPOT, "buy", "limit", "0.01", below(bid))
    d.gateway.place(late)  # the gateway has it acknowledged (NEW) ...
    rec = d.gateway.orders.get(late.client_order_id)
    d.gateway.on_order_event(OrderEvent(account=acct, symbol=SPOT, client_order_id=late.client_order_id,
                                        kind=OrderEventKind.ACCEPTED, status=OrderStatus.NEW,
                                        event_ns=time.time_ns()))  # fmt: skip
    rec.updated_ns = time.time_ns()
    paused: list[float] = []

    async def sleep(s: float) -> None:  # ... and the venue shows it only during the grace window
        paused.append(s)
        await c.execution.place(late)

    [rep] = await reconciler(d, bus, grace_s=3.0, sleep=sleep).run([target(c)])
    assert rep.ok, rep.error
    assert paused and 0 < paused[0] <= 3.0
    assert rep.resolved[late.client_order_id] == "new" and rep.deferred == []
    assert rec.status is OrderStatus.NEW
    assert [o.client_order_id for o in await c.execution.open_orders(SPOT)] == [late.client_order_id]


async def test_futures_positions_into_kernel_and_live_state_once(venue, bus):
    h, options = venue
    name = unique()
    c = await h.account(Market.USDM, name=name, options=options)
    acct = str(c.ctx.account)
    price = h.server.resting_futures_price()
    qty = f"{200 / float(price):.3f}"
    assert (await c.execution.place(cmd(acct, PERP, "sell", "market", qty))).status is OrderStatus.FILLED
    d = await new_daemon(h, [name], markets=(Market.USDM,))
    [rep] = await reconciler(d, bus).run([target(c, Market.USDM)])
    assert rep.ok, rep.error
    _, ins = d.gateway.instruments.lookup("binance", PERP)
    i = d.gateway.instruments.lookup("binance", PERP)[0]
    assert int(d.gateway.state.pos[P_QTY, 0, i, 0]) == -ins.qty(qty)
    [p] = await bus.live.get(acct, "positions", list[Position])
    assert p.symbol == PERP and Decimal(p.qty) == -Decimal(qty)
    n = await bus.count("POSITIONS", f"positions.binance.{name}.>")
    assert n == 1
    stored_bal = await bus.live.get(acct, "balances", list[Balance])
    d2 = await new_daemon(h, [name], markets=(Market.USDM,))
    [rep2] = await reconciler(d2, bus).run([target(c, Market.USDM)])
    assert rep2.ok and rep2.events == 0, [(b.free, b.locked) for b in [*stored_bal, *await c.execution.balances()]]
    assert await bus.count("POSITIONS", f"positions.binance.{name}.>") == 1


async def test_a_failing_account_is_reported_and_the_others_reconcile(venue, bus):
    h, options = venue
    good, bad = unique(), unique()
    cg = await h.account(Market.SPOT, name=good, options=options)
    cb = await h.account(Market.SPOT, name=bad, options=options)
    h.server.admin("DELETE", f"/admin/v1/keys/{cb.api_key}")  # the bad account's key is revoked
    d = await new_daemon(h, [good, bad])
    reports = await asyncio.wait_for(reconciler(d, bus).run([target(cb), target(cg)]), 60)
    assert [r.account for r in reports] == [str(cb.ctx.account), str(cg.ctx.account)]
    assert not reports[0].ok and "AuthError" in reports[0].error
    assert reports[1].ok, reports[1].error


async def test_jetstream_unreachable_reconciles_from_the_venue_and_keeps_events_in_the_outbox(
    server, nats_server, tmp_path
):
    h, _ = harness_for(server, "python-binance")
    try:
        name = unique()
        c = await h.account(Market.SPOT, name=name)
        acct = str(c.ctx.account)
        rest = await c.execution.place(cmd(acct, SPOT, "buy", "limit", "0.01", below(spot_bid(server))))
        down = await connect_bus(nats_server, tmp_path / "outbox")
        await down.nc.close()  # NATS is gone: history unreadable, publishing goes to the outbox
        d = await new_daemon(h, [name])
        r = Reconciler(d.gateway, down.js, down.publisher, None, flush_timeout_s=0.5)
        [rep] = await asyncio.wait_for(r.run([target(c)]), 60)
        assert rep.ok, rep.error
        assert rep.adopted == [rest.client_order_id] and rep.events >= 2
        assert len(down.publisher.outbox) >= rep.events  # kept, in order, for when NATS is back
    finally:
        await h.close()
