"""Binance Spot amend through the connector (``order.amend.keepPriority``, REST when the socket is down): the
quantity goes down in place under the same client and venue order ids, the user stream reports it once, and a
price change or a larger quantity is refused with a typed error naming the order."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import msgspec
import pytest

from localex.server.app import server_state
from oms.model import AmendOrder, CancelOrder, Market, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder, Side
from oms.venues import Rejected, StreamStatus, Unsupported
from tests.venues.binance.conftest import Harness, next_event
from tests.venues.binance.test_binance_failover import cut_ws_api_sessions, low_spot_price, wait_until


async def test_spot_amend_lowers_the_quantity_in_place(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    price = await low_spot_price(harness)
    placed = await c.execution.place(
        PlaceOrder(
            account=acct, symbol="BTC/USDT", side="buy", order_type="limit", qty="0.04", price=price,
            intent=str(time.time_ns()),
        ).with_client_order_id()
    )  # fmt: skip
    coid = placed.client_order_id
    amend = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.03", price=price)
    ev = await c.execution.amend(amend)
    assert (ev.kind, ev.status, Decimal(ev.qty), ev.venue_order_id) == (
        OrderEventKind.AMENDED, OrderStatus.NEW, Decimal("0.03"), placed.venue_order_id,
    )  # fmt: skip
    assert c.execution.session.log.records[-1].path == "ws"  # order.amend.keepPriority
    streamed = await next_event(
        stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == coid and e.kind is OrderEventKind.AMENDED
    )
    assert Decimal(streamed.qty) == Decimal("0.03")
    with pytest.raises(Unsupported, match=coid):
        await c.execution.amend(AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY,
                                           qty="0.03", price=str(Decimal(price) - 1)))  # fmt: skip
    with pytest.raises(Rejected, match=coid) as err:
        await c.execution.amend(
            AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.05")
        )
    assert err.value.code == -2038
    sessions = len(server_state(harness.server.app).ws_api_sessions)
    assert cut_ws_api_sessions(harness.server) >= 1
    await wait_until(lambda: not c.execution.session.transport.ws_up())
    ev = await c.execution.amend(
        AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.02")
    )
    assert (c.execution.session.log.records[-1].path, Decimal(ev.qty)) == ("rest", Decimal("0.02"))
    order = await c.execution.query_order("BTC/USDT", coid)
    assert (order.status, Decimal(order.qty), order.venue_order_id) == (
        OrderStatus.NEW, Decimal("0.02"), placed.venue_order_id,
    )  # fmt: skip
    # python-binance reconnects by itself and the user stream subscribes again on that one socket: a second
    # socket opened beside it (an unsubscribe or subscribe sent during the library's reconnect wait) would be
    # left unread, and an order sent on it would get no answer
    await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "resynced", timeout=20)
    await wait_until(c.execution.session.transport.ws_up, timeout=15)
    assert len(server_state(harness.server.app).ws_api_sessions) == sessions
    await asyncio.sleep(c.execution.settings.ws_cooldown_s)
    ev = await c.execution.amend(
        AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.01")
    )
    assert (c.execution.session.log.records[-1].path, Decimal(ev.qty)) == ("ws", Decimal("0.01"))


async def test_spot_cancel_replace_cancels_and_places_in_one_request(harness: Harness):
    """``order.cancelReplace`` (STOP_ON_FAILURE): the old order cancelled, the new one placed under its own
    client order id, both reported on the user stream; on an order that is gone already, -2022 and nothing
    placed (the new id ends rejected in the tracker, never open)."""
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    price = await low_spot_price(harness)
    first = PlaceOrder(account=acct, symbol="BTC/USDT", side="buy", order_type="limit", qty="0.04", price=price,
                       intent=str(time.time_ns())).with_client_order_id()  # fmt: skip
    placed = await c.execution.place(first)
    new = PlaceOrder(account=acct, symbol="BTC/USDT", side="buy", order_type="limit", qty="0.03",
                     price=str(Decimal(price) - 1), intent=f"r{time.time_ns()}").with_client_order_id()  # fmt: skip
    cancelled, accepted = await c.execution.cancel_replace(placed.client_order_id, new)
    assert (cancelled.client_order_id, cancelled.status) == (placed.client_order_id, OrderStatus.CANCELED)
    assert (accepted.client_order_id, accepted.status, Decimal(accepted.qty)) == (
        new.client_order_id, OrderStatus.NEW, Decimal("0.03"),
    )  # fmt: skip
    assert c.execution.session.log.records[-1].path == "ws"  # order.cancelReplace
    streamed = await next_event(
        stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == new.client_order_id
    )
    assert streamed.status is OrderStatus.NEW
    order = await c.execution.query_order("BTC/USDT", new.client_order_id)
    assert order.status is OrderStatus.NEW and Decimal(order.price) == Decimal(price) - 1

    again = msgspec.structs.replace(new, client_order_id=None, intent=f"again{time.time_ns()}").with_client_order_id()
    with pytest.raises(Rejected) as err:
        await c.execution.cancel_replace(placed.client_order_id, again)  # the old order is cancelled already
    assert err.value.code == -2022
    assert c.execution.session.tracker.get(again.client_order_id).status is OrderStatus.REJECTED
    with pytest.raises(Rejected):
        await c.execution.query_order("BTC/USDT", again.client_order_id)  # never placed
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=new.client_order_id))
