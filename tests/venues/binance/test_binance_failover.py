"""Failures between the connector and the venue, against a real local exchange and unmodified python-binance:

* the WebSocket-API socket is cut: requests carry on over REST, and return to the socket once it is back;
* the socket drops after the order frame was sent and before its answer (a loopback proxy cuts it): the
  placement is UNKNOWN, never failed and never re-sent, and is resolved by its client order id to the
  order's true state; held back before the venue saw it, it resolves to "never reached the book";
* the USD-M listenKey expires and the order fills during the gap; the Spot subscription's socket is cut
  and an order fills during the gap: the stream re-subscribes, and the REST snapshot applies the fills once.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from localex.engine.types import OrderRequest
from localex.server.app import server_state
from oms.model import CancelOrder, Fill, Market, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder
from oms.venues import StreamStatus, UnknownOutcome
from tests.venues.binance.conftest import Harness, next_event, on_server
from tests.venues.binance.proxy import CuttingProxy


def cmd(account: str, symbol: str, side: str, order_type: str, qty: str, price: str | None = None) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        price=price,
        intent=str(time.time_ns()),
    ).with_client_order_id()


async def wait_until(cond, timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(step)


def cut_ws_api_sessions(server) -> int:
    state = server_state(server.app)

    async def cut() -> int:
        sessions = list(state.ws_api_sessions)
        for s in sessions:
            await s.outbox.ws.close(code=1011, message=b"test cut")
        return len(sessions)

    return asyncio.run_coroutine_threadsafe(cut(), server.loop).result(10)


async def low_spot_price(h: Harness) -> str:
    from oms.venues.binance.market_data import BinanceMarketData

    md = BinanceMarketData(h.context("market_data", Market.SPOT), await h.instrument_provider(Market.SPOT))
    try:
        bid = (await md.book_snapshot("BTC/USDT", 5)).bids[0][0]
    finally:
        await md.close()
    return f"{Decimal(bid) * Decimal('0.95'):.2f}"


async def test_ws_api_cut_requests_carry_on_over_rest_then_return_to_the_socket(harness: Harness):
    c = await harness.account(Market.SPOT)
    acct = str(c.ctx.account)
    transport = c.execution.session
    low = await low_spot_price(harness)
    first = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", low))
    assert transport.log.records[-1].path == "ws"
    assert cut_ws_api_sessions(harness.server) >= 1
    await wait_until(lambda: not transport.transport.ws_up())
    second = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", low))
    rec = transport.log.records[-1]
    assert (rec.op, rec.path, rec.reason, rec.outcome) == ("place", "rest", "socket down", "ok")
    assert second.status is OrderStatus.NEW
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=first.client_order_id))
    assert transport.log.records[-1].path == "rest"
    await wait_until(transport.transport.ws_up, timeout=15)  # python-binance reconnects by itself
    await asyncio.sleep(c.execution.settings.ws_cooldown_s)
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=second.client_order_id))
    assert transport.log.records[-1].path == "ws"


@pytest.fixture
async def proxy(harness: Harness):
    port = int(harness.server.url.rsplit(":", 1)[1])
    p = await CuttingProxy(port).start()
    yield p
    await p.close()


async def test_socket_dropped_after_the_order_was_sent_is_unknown_then_resolved(harness: Harness, proxy: CuttingProxy):
    c = await harness.account(Market.SPOT, ws_api_url=f"{proxy.ws_url}/ws-api/v3")
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    order = cmd(acct, "BTC/USDT", "buy", "limit", "0.01", await low_spot_price(harness))
    proxy.arm("drop_answer")
    with pytest.raises(UnknownOutcome) as info:
        await c.execution.place(order)
    assert proxy.forwarded_trigger and order.client_order_id in str(info.value)
    unknown = await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.kind is OrderEventKind.OUTCOME_UNKNOWN)
    assert unknown.status is OrderStatus.UNKNOWN
    sends = [r for r in c.execution.session.log.records if r.op == "place"]
    assert [(r.path, r.outcome) for r in sends] == [("ws", "no answer")]  # sent once, never re-sent
    resolved = await c.execution.resolve("BTC/USDT", order.client_order_id)
    assert resolved is not None and resolved.status is OrderStatus.NEW
    assert c.execution.session.tracker.get(order.client_order_id).status is OrderStatus.NEW
    venue_side = await c.execution.open_orders("BTC/USDT")
    assert [o.client_order_id for o in venue_side] == [order.client_order_id]  # exactly one order exists
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=order.client_order_id))


async def test_order_frame_lost_before_the_venue_resolves_to_never_placed(harness: Harness, proxy: CuttingProxy):
    c = await harness.account(Market.SPOT, ws_api_url=f"{proxy.ws_url}/ws-api/v3")
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    order = cmd(acct, "BTC/USDT", "buy", "limit", "0.01", await low_spot_price(harness))
    proxy.arm("hold")
    with pytest.raises(UnknownOutcome):
        await c.execution.place(order)
    assert not proxy.forwarded_trigger
    started = time.monotonic()
    assert await c.execution.resolve("BTC/USDT", order.client_order_id) is None
    assert time.monotonic() - started >= 0.5  # "not found" counted only after the recvWindow passed
    ev = await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.kind is OrderEventKind.NOT_FOUND)
    assert ev.status is OrderStatus.REJECTED
    assert await c.execution.open_orders("BTC/USDT") == []


async def test_ws_api_slower_than_the_timeout_repeats_idempotent_calls_over_rest(harness: Harness, proxy: CuttingProxy):
    c = await harness.account(Market.SPOT, ws_api_url=f"{proxy.ws_url}/ws-api/v3")
    acct = str(c.ctx.account)
    placed = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", await low_spot_price(harness)))
    proxy.arm("swallow", b'"order.status"')
    order = await c.execution.query_order("BTC/USDT", placed.client_order_id)  # no WS answer within 1 s
    assert order.status is OrderStatus.NEW
    log = c.execution.session.log.records
    queries = [(r.path, r.reason.split(":")[0], r.outcome) for r in log if r.op == "query"]
    assert queries[-2:] == [("ws", "ws", "no answer"), ("rest", "ws failed", "ok")]
    assert c.execution.session.transport.ws_up()  # the socket itself is fine...
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=placed.client_order_id))
    assert (log[-1].path, log[-1].reason) == ("rest", "cooldown")  # ...but is given a rest


async def test_listen_key_expiry_with_a_fill_in_the_gap_is_recovered_once(harness: Harness):
    c = await harness.account(Market.USDM)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    price = harness.server.resting_futures_price()
    qty = f"{200 / float(price):.3f}"
    resting = await c.execution.place(cmd(acct, "BTC/USDT:USDT", "buy", "limit", qty, price))
    await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)
    state = server_state(harness.server.app)

    def expire_and_fill() -> None:
        key = state.listen_keys.by_account[c.account_id]
        state.listen_keys.close(c.account_id)
        state.hub.close_listen_key(key)  # listenKeyExpired; nothing more reaches the old stream
        book = state.exchange.book_ticker("usdm", "BTCUSDT")
        ask = state.exchange.spec("usdm", "BTCUSDT").fmt_price(book.ask_price)
        state.exchange.modify_order(
            c.account_id,
            "usdm",
            "BTCUSDT",
            client_order_id=resting.client_order_id,
            side="BUY",
            quantity=qty,
            price=ask,
        )  # the order now crosses and fills while the account has no stream

    on_server(harness.server, expire_and_fill)
    gap = await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "gap")
    assert "listenKey expired" in gap.reason
    fills: list[Fill] = []

    async def until_resynced() -> None:
        async for e in stream:
            if isinstance(e, Fill) and e.client_order_id == resting.client_order_id:
                fills.append(e)
            if isinstance(e, StreamStatus) and e.kind == "resynced":
                return

    await asyncio.wait_for(until_resynced(), 15)
    assert sum(Decimal(f.qty) for f in fills) == Decimal(qty)
    assert len({f.trade_id for f in fills}) == len(fills)  # each trade once
    assert c.execution.session.tracker.get(resting.client_order_id).status is OrderStatus.FILLED
    rest = await c.execution.fills("BTC/USDT:USDT", time.time_ns() - 60_000_000_000)
    assert sorted(f.trade_id for f in fills) == sorted(
        f.trade_id for f in rest if f.client_order_id == resting.client_order_id
    )
    assert c.user.notices["recovered fills"] == len(fills)
    await c.execution.place(cmd(acct, "BTC/USDT:USDT", "sell", "market", qty))
    await next_event(stream, lambda e: isinstance(e, Fill) and e.side == "sell")  # the new listenKey streams


async def test_a_quiet_stream_with_resting_orders_is_checked_not_resubscribed(harness: Harness):
    """Silence while orders are open may be only quiet (a resting order nobody trades): each ``silence_s`` the
    venue's open orders are compared with the tracker's (one REST call a symbol) and the subscription stays. It
    used to re-subscribe and reconcile every time, which 200 such accounts cannot afford on one IP."""
    c = await harness.account(Market.USDM, options={"silence_s": 1.0})
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    price = harness.server.resting_futures_price(below=0.04)
    await c.execution.place(cmd(acct, "BTC/USDT:USDT", "buy", "limit", f"{200 / float(price):.3f}", price))
    deadline = time.monotonic() + 20
    while c.user.quiet_checks < 3:
        assert time.monotonic() < deadline, f"{c.user.quiet_checks} quiet checks"
        await asyncio.sleep(0.1)
    assert c.user.notices["subscribed"] == 1, c.user.notices  # never re-subscribed


def _detach(state, account_id: str) -> None:
    """The venue stops pushing the account's Spot user data without telling the client: a silently dead stream."""
    for session, sub_id in list(state.user_subscriptions.get(account_id, ())):
        session.unsubscribe(sub_id)


async def test_a_silently_dead_stream_is_found_by_its_check_and_the_missed_fill_recovered(harness: Harness):
    c = await harness.account(Market.SPOT, options={"silence_s": 1.0})
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    state = server_state(harness.server.app)
    seller, _, _ = harness.server.new_account(spot={"BTC": "1000"})
    resting = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", await low_spot_price(harness)))
    await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)

    def detach_and_sweep() -> None:
        _detach(state, c.account_id)
        ex = state.exchange
        spec = ex.spec("spot", "BTCUSDT")
        ours = spec.parse_price(resting.price)
        lots = sum(q for p, q in ex.depth("spot", "BTCUSDT", 1000).bids if p >= ours)
        ex.place_order(
            seller,
            OrderRequest("spot", "BTCUSDT", "SELL", "LIMIT", spec.fmt_qty(lots), resting.price, time_in_force="IOC"),
        )  # our order fills; its stream hears nothing

    on_server(harness.server, detach_and_sweep)
    gap = await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "gap", 15)
    assert gap.reason == "silent while orders are open"
    fills: list[Fill] = []

    async def until_resynced() -> None:
        async for e in stream:
            if isinstance(e, Fill) and e.client_order_id == resting.client_order_id:
                fills.append(e)
            if isinstance(e, StreamStatus) and e.kind == "resynced":
                return

    await asyncio.wait_for(until_resynced(), 20)
    assert sum(Decimal(f.qty) for f in fills) == Decimal("0.01")
    assert c.execution.session.tracker.get(resting.client_order_id).status is OrderStatus.FILLED


async def test_a_spot_resubscription_waits_out_the_ips_ban(harness: Harness):
    """The stream dies silently and its order is cancelled at the venue while the IP is banned (a 418 to another
    request on it): the silence's check waits out the ban like every request, finds the order gone, and the new
    subscription (a request of weight 2 on the IP) is sent only after the ban's ``Retry-After``."""
    c = await harness.account(Market.SPOT, options={"silence_s": 1.0})
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    resting = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", await low_spot_price(harness)))
    state = server_state(harness.server.app)

    def detach_and_cancel() -> None:
        _detach(state, c.account_id)
        state.exchange.cancel_order(c.account_id, "spot", "BTCUSDT", client_order_id=resting.client_order_id)

    on_server(harness.server, detach_and_cancel)
    c.ctx.limiter.on_rate_limited(418, 3.0)  # what a 418 with Retry-After: 3 on any account of the IP does
    ban_end = c.ctx.limiter.ip.backoff_until_ns
    gap = await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "gap", 15)
    assert gap.reason == "silent while orders are open"
    connected = await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "connected", 15)
    assert connected.event_ns >= ban_end, (connected.event_ns - ban_end) / 1e9
    await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "resynced", 15)
    assert c.user.notices["subscribed"] == 2


async def test_spot_subscription_cut_with_a_fill_in_the_gap_is_recovered(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    state = server_state(harness.server.app)
    seller, _, _ = harness.server.new_account(spot={"BTC": "1000"})
    best = state.exchange.spec("spot", "BTCUSDT").fmt_price(state.exchange.book_ticker("spot", "BTCUSDT").bid_price)
    resting = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", best))
    await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.client_order_id == resting.client_order_id)

    async def cut_and_sweep() -> None:
        sessions = list(state.ws_api_sessions)
        for s in sessions:
            s.close()  # the subscriptions end now: nothing more is pushed to them
        ex = state.exchange
        spec = ex.spec("spot", "BTCUSDT")
        ours = spec.parse_price(resting.price)
        lots = sum(q for p, q in ex.depth("spot", "BTCUSDT", 1000).bids if p >= ours)
        ex.place_order(
            seller,
            OrderRequest("spot", "BTCUSDT", "SELL", "LIMIT", spec.fmt_qty(lots), resting.price, time_in_force="IOC"),
        )  # sweeps every bid down to ours: our order fills while its stream is gone
        for s in sessions:
            await s.outbox.ws.close(code=1011, message=b"test cut")

    asyncio.run_coroutine_threadsafe(cut_and_sweep(), harness.server.loop).result(10)
    gap = await next_event(stream, lambda e: isinstance(e, StreamStatus) and e.kind == "gap")
    assert "socket closed" in gap.reason
    fills: list[Fill] = []

    async def until_resynced() -> None:
        async for e in stream:
            if isinstance(e, Fill) and e.client_order_id == resting.client_order_id:
                fills.append(e)
            if isinstance(e, StreamStatus) and e.kind == "resynced":
                return

    await asyncio.wait_for(until_resynced(), 20)
    assert sum(Decimal(f.qty) for f in fills) == Decimal("0.01")
    assert c.execution.session.tracker.get(resting.client_order_id).status is OrderStatus.FILLED
    assert c.user.notices["recovered fills"] == len(fills)
