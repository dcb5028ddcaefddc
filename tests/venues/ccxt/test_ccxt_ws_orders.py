"""ccxt orders over the WebSocket API (``createOrderWs``/``cancelOrderWs``) against the local exchange's ws-api,
and ccxt's Spot ``editOrder`` (one cancel-replace).

REST until ccxt holds an open WebSocket-API connection (opened in the background on the first order), then the
socket; REST again while it is down, and back once it is up. The connection holds one of the account's slots,
every request is charged to the shared budget and the venue's ``rateLimits`` in each answer are adopted. An
answer lost on the socket makes the placement UNKNOWN (never re-sent), resolved by its client order id.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from oms.model import AmendOrder, CancelOrder, Market, OrderEvent, OrderEventKind, OrderStatus, Side
from oms.venues import Rejected, UnknownOutcome
from tests.localex.conftest import LocalServer
from tests.localex.rest_support import call, signed
from tests.venues.binance.test_binance_failover import cut_ws_api_sessions
from tests.venues.ccxt.conftest import Venue
from tests.venues.ccxt.faultproxy import FaultProxy
from tests.venues.ccxt.test_ccxt_execution import SPOT, bid_below, order


async def wait_until(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def last(ex, op: str):
    return [r for r in ex.ws.records if r.op == op][-1]


def day_orders(limiter) -> int:
    return next(v for k, v in limiter.used().items() if k.endswith("orders/1d"))


async def test_orders_take_the_socket_once_it_is_up_and_rest_while_it_is_down(server: LocalServer, ccxt_config) -> None:
    v = Venue(server, ccxt_config)
    try:
        _, key, secret = v.fund("main", "spot", USDT="100000", BTC="2")
        ex = (await v.clients("main", "spot")).execution
        assert ex.capabilities.ws_api_orders and ex.ws.supports("place") and ex.ws.supports("cancel")
        price = bid_below(server)
        first = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price))
        assert first.status is OrderStatus.NEW
        assert (last(ex, "place").path, last(ex, "place").reason) == ("rest", "socket down")
        await wait_until(ex.ws.up)  # opened in the background
        limiter = ex.context.limiter
        assert limiter.ws_open == 1  # the WebSocket API holds one of the account's connection slots
        # three orders the venue counts and this client does not see: the next answer's rateLimits bring them in
        for k in range(3):
            q = signed(secret, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                "quantity": "0.001", "price": price, "newClientOrderId": f"outside-{k}"})  # fmt: skip
            status, body = call(f"{server.url}/api/v3/order?{q}", "POST", {"X-MBX-APIKEY": key})
            assert status == 200, body
        before = day_orders(limiter)
        second = await ex.place(order("binance/main", SPOT, Side.BUY, "0.02", price))
        rec = last(ex, "place")
        assert (rec.path, rec.reason, rec.outcome) == ("ws", "ws", "ok")
        assert second.status is OrderStatus.NEW and second.qty == "0.02" and second.venue_order_id
        assert day_orders(limiter) == before + 1 + 3 == 5  # ours (2) and the three outside, as the venue counts
        truth = await ex.query_order(SPOT, second.client_order_id)  # REST agrees with the socket's answer
        assert (truth.status, truth.venue_order_id, Decimal(truth.qty)) == (
            OrderStatus.NEW, second.venue_order_id, Decimal("0.02"),
        )  # fmt: skip
        gone = await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=first.client_order_id))
        assert gone.status is OrderStatus.CANCELED and gone.client_order_id == first.client_order_id
        assert (last(ex, "cancel").path, last(ex, "cancel").outcome) == ("ws", "ok")
        # the socket is cut: REST carries on, and the socket is back for the next order once ccxt reconnects
        assert cut_ws_api_sessions(server) >= 1
        await wait_until(lambda: not ex.ws.up())
        third = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price))
        assert third.status is OrderStatus.NEW and last(ex, "place").path == "rest"
        await wait_until(ex.ws.up)
        for o in (second, third):
            done = await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=o.client_order_id))
            assert done.status is OrderStatus.CANCELED and last(ex, "cancel").path == "ws"
        assert limiter.ws_open == 1 and await ex.open_orders(SPOT) != []  # the three outside orders rest
    finally:
        await v.close()
    assert ex.context.limiter.ws_open == 0  # the slot is given back when the client closes


async def test_an_order_answer_lost_on_the_socket_is_unknown_then_resolved(
    server: LocalServer, ccxt_config, proxy: FaultProxy
) -> None:
    v = Venue(server, ccxt_config, url=proxy.url)
    try:
        v.fund("main", "spot", USDT="100000")
        ex = (await v.clients("main", "spot")).execution
        price = bid_below(server)
        warm = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price))
        await wait_until(ex.ws.up)
        cmd = order("binance/main", SPOT, Side.BUY, "0.01", price)
        proxy.drop_frames(lambda path, text: "ws-api" in path and str(cmd.client_order_id) in text)
        with pytest.raises(UnknownOutcome, match=f"failed to place order {cmd.client_order_id} for binance/main"):
            await ex.place(cmd)
        rec = last(ex, "place")
        assert (rec.path, rec.outcome) == ("ws", "no answer") and proxy.dropped_frames == 1
        assert len([r for r in ex.ws.records if r.op == "place"]) == 2  # sent once, never re-sent
        truth = await ex.query_order(SPOT, cmd.client_order_id)
        assert truth.status is OrderStatus.NEW  # it reached the venue
        # after a failure the socket rests for the cooldown: the cancels go over REST
        for o in (warm, truth):
            await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=o.client_order_id))
            assert (last(ex, "cancel").path, last(ex, "cancel").reason) == ("rest", "cooldown")
        assert await ex.open_orders(SPOT) == []
    finally:
        await v.close()


def test_the_capability_follows_ccxt() -> None:
    from oms.venues.ccxt.metadata import metadata_for

    assert metadata_for("binance", "binance", Market.SPOT).capabilities.ws_api_orders  # has['createOrderWs']
    assert not metadata_for("kucoin", "kucoin", Market.SPOT).capabilities.ws_api_orders  # REST only


async def test_spot_edit_order_is_one_cancel_replace_under_the_same_client_order_id(
    server: LocalServer, ccxt_config
) -> None:
    v = Venue(server, ccxt_config)
    try:
        v.fund("main", "spot", USDT="100000")
        clients = await v.clients("main", "spot")
        ex = clients.execution
        assert ex.capabilities.cancel_replace and not ex.capabilities.amend
        stream = clients.user_data.events()
        await stream.ready()
        price = bid_below(server)
        placed = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price))
        lower = str(Decimal(price) - 1)
        ev = await ex.amend(
            AmendOrder(account="binance/main", symbol=SPOT, client_order_id=placed.client_order_id, side=Side.BUY,
                       qty="0.02", price=lower)
        )  # fmt: skip
        assert (ev.kind, ev.status, ev.client_order_id) == (
            OrderEventKind.AMENDED,
            OrderStatus.NEW,
            placed.client_order_id,
        )
        assert ev.venue_order_id != placed.venue_order_id and Decimal(ev.price) == Decimal(lower)
        truth = await ex.query_order(SPOT, placed.client_order_id)
        assert (truth.venue_order_id, Decimal(truth.qty), Decimal(truth.price)) == (
            ev.venue_order_id, Decimal("0.02"), Decimal(lower),
        )  # fmt: skip
        assert [o.client_order_id for o in await ex.open_orders(SPOT)] == [placed.client_order_id]
        seen = []

        async def collect() -> None:
            async for e in stream:
                if isinstance(e, OrderEvent) and e.client_order_id == placed.client_order_id:
                    seen.append((e.kind, e.venue_order_id))
                    if e.venue_order_id == ev.venue_order_id:
                        return

        await asyncio.wait_for(collect(), 10)
        # the old order's cancel is the replace's first half, not the end of the client order id
        assert seen == [(OrderEventKind.ACCEPTED, placed.venue_order_id), (OrderEventKind.AMENDED, ev.venue_order_id)]
        assert clients.user_data.dropped["replaced"] == 1
        with pytest.raises(Rejected, match=placed.client_order_id):  # a replace of an order gone is refused
            await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=placed.client_order_id))
            await ex.amend(
                AmendOrder(account="binance/main", symbol=SPOT, client_order_id=placed.client_order_id,
                           side=Side.BUY, qty="0.01", price=lower)
            )  # fmt: skip
    finally:
        await v.close()
