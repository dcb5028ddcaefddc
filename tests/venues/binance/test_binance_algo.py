"""USD-M conditional orders (stop, take-profit, trailing stop) through Binance's Algo Order API, against a real
local exchange and unmodified python-binance: placed with ``clientAlgoId`` = the model's client order id,
queried and cancelled through the algo endpoints while they wait, listed among the open orders, and once
triggered followed as the ordinary order they became (same client order id) through its fills.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from localex.engine.types import OrderRequest
from localex.server.app import server_state
from oms.model import (
    CancelAll,
    CancelOrder,
    Fill,
    Market,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from oms.venues import Unsupported
from tests.venues.binance.conftest import Harness, next_event, on_server

SYMBOL = "BTC/USDT:USDT"


def cmd(acct: str, side: str, order_type: OrderType, qty: str, **kw) -> PlaceOrder:
    return PlaceOrder(
        account=acct, symbol=SYMBOL, side=side, order_type=order_type, qty=qty, intent=str(time.time_ns()), **kw
    ).with_client_order_id()


def qty_for(h: Harness) -> str:
    """A quantity worth about 200 USDT (USD-M's minimum notional is 100)."""
    return f"{200 / float(h.server.resting_futures_price(below=0.0)):.3f}"


def far_stop(h: Harness, above: bool) -> str:
    """A trigger price 3 % above (below) the mark: it does not trigger while the replay moves prices."""
    mark = Decimal(h.server.resting_futures_price(below=0.0))
    return f"{mark * (Decimal('1.03') if above else Decimal('0.97')):.1f}"


async def test_conditional_orders_go_to_the_algo_api_rest_list_and_cancel(harness: Harness):
    c = await harness.account(Market.USDM)
    acct = str(c.ctx.account)
    above, below = far_stop(harness, True), far_stop(harness, False)
    q = qty_for(harness)
    placed = [
        cmd(acct, "buy", OrderType.STOP_MARKET, q, stop_price=above),
        cmd(acct, "sell", OrderType.STOP_LIMIT, q, stop_price=below, price=below),
        cmd(acct, "buy", OrderType.TAKE_PROFIT_LIMIT, q, stop_price=below, price=below),
        cmd(acct, "sell", OrderType.TAKE_PROFIT_MARKET, q, stop_price=above),
        cmd(acct, "sell", OrderType.TRAILING_STOP_MARKET, q, callback_rate="1.5", stop_price=above),
    ]
    for p in placed:
        ev = await c.execution.place(p)
        assert (ev.kind, ev.status, ev.client_order_id) == (OrderEventKind.ACCEPTED, OrderStatus.NEW, p.client_order_id)
        rec = c.execution.session.log.records[-1]
        assert (rec.op, rec.path) == ("algo_place", "ws")  # algoOrder.place on the WebSocket API
        order = await c.execution.query_order(SYMBOL, p.client_order_id)
        assert (order.status, order.order_type, Decimal(order.qty)) == (OrderStatus.NEW, p.order_type, Decimal(q))
        assert Decimal(order.stop_price) == Decimal(p.stop_price)
    state = server_state(harness.server.app)
    venue_side = on_server(harness.server, lambda: state.exchange.open_orders(c.account_id, "usdm", "BTCUSDT"))
    assert {o.client_order_id for o in venue_side} == {p.client_order_id for p in placed}  # clientAlgoId = ours
    listed = await c.execution.open_orders(SYMBOL)
    assert {o.client_order_id for o in listed} == {p.client_order_id for p in placed}
    done = await c.execution.cancel(CancelOrder(account=acct, symbol=SYMBOL, client_order_id=placed[0].client_order_id))
    assert (done.kind, done.status) == (OrderEventKind.CANCELED, OrderStatus.CANCELED)
    with pytest.raises(Exception, match=placed[0].client_order_id):
        await c.execution.cancel(CancelOrder(account=acct, symbol=SYMBOL, client_order_id=placed[0].client_order_id))
    events = await c.execution.cancel_all(CancelAll(account=acct, symbol=SYMBOL))
    assert {e.client_order_id for e in events} == {p.client_order_id for p in placed[1:]}
    assert await c.execution.open_orders(SYMBOL) == []
    for p in placed[1:]:
        assert (await c.execution.query_order(SYMBOL, p.client_order_id)).status is OrderStatus.CANCELED


async def test_a_triggered_stop_fills_and_streams_under_its_client_order_id(harness: Harness):
    c = await harness.account(Market.USDM)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    state = server_state(harness.server.app)
    ex = state.exchange
    spec = ex.spec("usdm", "BTCUSDT")
    seller, _, _ = harness.server.new_account(futures={"USDT": "1000000"})
    buyer, _, _ = harness.server.new_account(futures={"USDT": "1000000"})

    def trigger_level() -> int:
        return max(ex.last_price("usdm", "BTCUSDT"), ex.book_ticker("usdm", "BTCUSDT").ask_price) + 20

    stop_ticks = on_server(harness.server, trigger_level)
    stop = spec.fmt_price(stop_ticks)
    q = qty_for(harness)
    placed = await c.execution.place(cmd(acct, "buy", OrderType.STOP_MARKET, q, stop_price=stop))
    assert placed.status is OrderStatus.NEW
    coid = placed.client_order_id
    accepted = await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == coid)
    assert accepted.kind is OrderEventKind.ACCEPTED  # the answer's; the stream's ALGO_UPDATE NEW was a duplicate

    def trade_at_the_stop() -> None:
        ex.place_order(seller, OrderRequest("usdm", "BTCUSDT", "SELL", "LIMIT", q, stop, time_in_force="GTC"))
        lots = sum(q for p, q in ex.depth("usdm", "BTCUSDT", 1000).asks if p <= stop_ticks)
        ex.place_order(
            buyer, OrderRequest("usdm", "BTCUSDT", "BUY", "LIMIT", spec.fmt_qty(lots), stop, time_in_force="IOC")
        )  # the last trade is at the stop: the stop triggers and its market buy fills above it

    on_server(harness.server, trade_at_the_stop)
    fill: Fill = await next_event(stream, lambda e: isinstance(e, Fill) and e.client_order_id == placed.client_order_id)
    assert fill.side is Side.BUY and Decimal(fill.qty) > 0
    assert Decimal(fill.price) >= Decimal(stop)
    order = await c.execution.query_order(SYMBOL, placed.client_order_id)
    assert (order.status, order.order_type) == (OrderStatus.FILLED, OrderType.STOP_MARKET)
    assert c.execution.session.tracker.get(placed.client_order_id).status is OrderStatus.FILLED
    assert c.user.notices["algo triggered"] >= 1
    rest = await c.execution.fills(SYMBOL, time.time_ns() - 60_000_000_000)
    assert fill.trade_id in {f.trade_id for f in rest}


async def test_conditional_orders_are_not_batched(harness: Harness):
    """Binance's algo endpoints have no batch variant: the batch refuses them, one result per command."""
    c = await harness.account(Market.USDM)
    acct = str(c.ctx.account)
    results = await c.execution.place_batch([cmd(acct, "buy", OrderType.STOP_MARKET, qty_for(harness), stop_price="1")])
    assert len(results) == 1 and isinstance(results[0], Unsupported)
