"""The ccxt connector's user-data stream: events in order, and nothing lost across a dropped connection.

The fault proxy cuts the private socket while the account trades; the stream must say ``gap``, re-subscribe,
and deliver what happened meanwhile from its REST snapshot before ``resynced``.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from oms.model import (
    BalanceEvent,
    CancelOrder,
    Fill,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from oms.venues import StreamStatus
from tests.localex.conftest import LocalServer
from tests.venues.ccxt.conftest import Venue
from tests.venues.ccxt.faultproxy import FaultProxy

WAIT = 15.0
SPOT = "BTC/USDT"


def cmd(side: Side, qty: str, price: str | None = None) -> PlaceOrder:
    kind = OrderType.LIMIT if price else OrderType.MARKET
    return PlaceOrder(
        account="binance/main",
        symbol=SPOT,
        side=side,
        order_type=kind,
        qty=qty,
        price=price,
        intent=str(time.time_ns()),
    ).with_client_order_id()


async def until(stream, pred, wait: float = WAIT) -> list:
    """Events of ``stream`` up to and including the first for which ``pred`` holds."""
    out = []

    async def scan():
        async for ev in stream:
            out.append(ev)
            if pred(ev):
                return

    await asyncio.wait_for(scan(), wait)
    return out


async def test_order_events_fills_and_balances_in_order(server: LocalServer, ccxt_config) -> None:
    v = Venue(server, ccxt_config)
    try:
        v.fund("main", "spot", USDT="100000")
        clients = await v.clients("main", "spot")
        stream = clients.user_data.events()
        await stream.ready()
        resting = cmd(Side.BUY, "0.01", "1000")
        await clients.execution.place(resting)
        evs = await until(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)
        assert evs[-1].kind is OrderEventKind.ACCEPTED and evs[-1].status is OrderStatus.NEW
        market = cmd(Side.BUY, "0.01")
        await clients.execution.place(market)
        evs = await until(stream, lambda e: isinstance(e, Fill) and e.client_order_id == market.client_order_id)
        evs += await until(stream, lambda e: isinstance(e, BalanceEvent))
        kinds = [(type(e).__name__, getattr(e, "kind", None)) for e in evs if not isinstance(e, StreamStatus)]
        assert ("OrderEvent", OrderEventKind.FILL) in kinds and kinds.count(("OrderEvent", OrderEventKind.FILL)) == 1
        fill = next(e for e in evs if isinstance(e, Fill))
        assert fill.venue_order_id and fill.side is Side.BUY and Decimal(fill.qty) > 0
        await stream.close()
    finally:
        await v.close()


async def test_events_is_one_stream_so_a_second_caller_waits_on_the_same_subscription(
    server: LocalServer, ccxt_config
) -> None:
    """The daemon subscribes (``events()``) and then waits on ``events().ready()``: both are the one stream (a
    second one waited for a new subscription that the first had already made, and timed out)."""
    v = Venue(server, ccxt_config)
    try:
        v.fund("main", "spot", USDT="1000")
        clients = await v.clients("main", "spot")
        first = clients.user_data.events()
        assert clients.user_data.events() is first
        await asyncio.wait_for(clients.user_data.events().ready(), 10)
        await first.close()
        assert clients.user_data.events() is not first  # a closed stream is replaced
    finally:
        await v.close()


async def test_dropped_private_socket_is_a_gap_covered_by_the_rest_snapshot(
    server: LocalServer, ccxt_config, proxy: FaultProxy
) -> None:
    v = Venue(server, ccxt_config, url=proxy.url)
    try:
        v.fund("main", "spot", USDT="100000")
        clients = await v.clients("main", "spot")
        # orders over REST: the proxy silences the ws-api socket, which ccxt's WebSocket orders would share
        clients.execution.ws.enabled = False
        stream = clients.user_data.events()
        await stream.ready()
        resting = cmd(Side.BUY, "0.01", "1000")
        await clients.execution.place(resting)
        await until(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)
        # the private socket dies; while it is down the account trades and cancels
        proxy.drop_frames(lambda path, frame: "ws-api" in path, 10**6)  # nothing more reaches the client ...
        market = cmd(Side.BUY, "0.01")
        await clients.execution.place(market)
        await clients.execution.cancel(
            CancelOrder(account="binance/main", symbol=SPOT, client_order_id=resting.client_order_id)
        )
        proxy.drops.clear()
        assert await proxy.close_sockets("ws-api") >= 1  # ... and then the connection drops
        evs = await until(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "resynced")
        statuses = [e.kind for e in evs if isinstance(e, StreamStatus)]
        assert statuses[0] == "gap" and statuses[-1] == "resynced"
        fills = [e for e in evs if isinstance(e, Fill) and e.client_order_id == market.client_order_id]
        assert fills and sum(Decimal(f.qty) for f in fills) == Decimal("0.01")
        cancels = [e for e in evs if isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id]
        assert cancels and cancels[-1].status is OrderStatus.CANCELED
        # the stream carries on after the resync
        again = cmd(Side.BUY, "0.01", "1001")
        await clients.execution.place(again)
        await until(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == again.client_order_id)
        assert clients.user_data.reconciles >= 1
        await stream.close()
    finally:
        await v.close()


async def test_the_usdm_private_stream_holds_a_connection_slot_until_it_closes(
    server: LocalServer, ccxt_config
) -> None:
    """On USD-M the private stream is a socket of its own: one of the account's five slots while it is open
    (on Spot it shares the WebSocket API's connection)."""
    v = Venue(server, ccxt_config)
    try:
        v.fund("sub_futures_trend", "usdm", USDT="1000")
        clients = await v.clients("sub_futures_trend", "usdm")
        limiter = clients.execution.session.limiter
        before = limiter.ws_open
        stream = clients.user_data.events()
        await asyncio.wait_for(stream.ready(), 10)
        assert limiter.ws_open == before + 1
        await stream.close()
        assert limiter.ws_open == before
    finally:
        await v.close()


async def test_a_quiet_stream_with_a_resting_order_is_checked_not_reconciled(server: LocalServer, ccxt_config) -> None:
    """Silent while an order rests: the venue's open orders are compared with the stream's each ``silence_s``
    (one REST call a symbol); the same orders, nothing missed, so no gap and no full REST snapshot."""
    v = Venue(server, ccxt_config)
    try:
        v.fund("main", "spot", USDT="100000")
        clients = await v.clients("main", "spot")
        clients.user_data.silence_s = 1.0
        stream = clients.user_data.events()
        await stream.ready()
        resting = cmd(Side.BUY, "0.01", "1000")
        await clients.execution.place(resting)
        await until(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)
        deadline = time.monotonic() + 20
        while clients.user_data.quiet_checks < 3:
            assert time.monotonic() < deadline, f"{clients.user_data.quiet_checks} quiet checks"
            await asyncio.sleep(0.1)
        assert clients.user_data.gaps["user silent"] == 0 and clients.user_data.reconciles <= 1
        await stream.close()
    finally:
        await v.close()
