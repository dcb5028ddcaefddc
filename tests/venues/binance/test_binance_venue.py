"""The Binance connector against a real local exchange: orders over the WebSocket API with their events on
the user stream, fills from the stream equal to fills from REST, balances, positions, futures settings, the
request records, and a live key switch that keeps orders and the stream."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from oms.keys import Credentials
from oms.model import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    Fill,
    MarginType,
    Market,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PlaceOrder,
    PositionMode,
)
from oms.venues import OrderNotFound, Rejected, StreamStatus, Unsupported
from oms.venues.binance.market_data import BinanceMarketData
from tests.venues.binance.conftest import Harness, next_event


def limit_below(book_px: str, frac: float = 0.95) -> str:
    return f"{Decimal(book_px) * Decimal(str(frac)):.2f}"


async def spot_bid(h: Harness) -> str:
    md = BinanceMarketData(h.context("market_data", Market.SPOT), await h.instrument_provider(Market.SPOT))
    try:
        return (await md.book_snapshot("BTC/USDT", 5)).bids[0][0]
    finally:
        await md.close()


def cmd(account: str, symbol: str, side: str, order_type: str, qty: str, price: str | None = None, **kw) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        price=price,
        intent=str(time.time_ns()),
        **kw,
    ).with_client_order_id()


async def test_spot_order_round_trip_over_the_ws_api_with_stream_events(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await asyncio.wait_for(stream.ready(), 10)
    acct = str(c.ctx.account)
    bid = await spot_bid(harness)
    placed = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", limit_below(bid)))
    assert placed.kind is OrderEventKind.ACCEPTED and placed.status is OrderStatus.NEW
    assert (await c.execution.query_order("BTC/USDT", placed.client_order_id)).status is OrderStatus.NEW
    assert [o.client_order_id for o in await c.execution.open_orders("BTC/USDT")] == [placed.client_order_id]
    done = await c.execution.cancel(
        CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=placed.client_order_id)
    )
    assert done.kind is OrderEventKind.CANCELED and done.status is OrderStatus.CANCELED
    seen = await next_event(stream, lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.CANCELED)
    assert seen.client_order_id == placed.client_order_id
    records = c.execution.session.log.records
    assert {(r.op, r.path) for r in records} >= {("place", "ws"), ("cancel", "ws"), ("query", "ws")}
    assert all(r.latency_ns > 0 for r in records)


async def test_market_fills_from_the_stream_equal_fills_from_rest(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    since = time.time_ns() - 5_000_000_000
    ev = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "market", "0.003"))
    assert ev.status is OrderStatus.FILLED
    streamed: list[Fill] = []

    async def collect() -> None:
        async for e in stream:
            if isinstance(e, Fill) and e.client_order_id == ev.client_order_id:
                streamed.append(e)
                if sum(Decimal(f.qty) for f in streamed) >= Decimal("0.003"):
                    return

    await asyncio.wait_for(collect(), 10)
    rest = [f for f in await c.execution.fills("BTC/USDT", since) if f.client_order_id == ev.client_order_id]
    key = lambda f: (f.trade_id, Decimal(f.price), Decimal(f.qty), f.side, Decimal(f.commission), f.commission_asset)  # noqa: E731
    assert sorted(map(key, streamed)) == sorted(map(key, rest))
    balances = {b.asset: b for b in await c.execution.balances()}
    assert Decimal(balances["BTC"].free) > Decimal("2")


async def test_futures_orders_positions_and_settings(harness: Harness):
    c = await harness.account(Market.USDM)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    assert (await c.execution.set_leverage("BTC/USDT:USDT", 5)).leverage == 5
    assert (await c.execution.set_margin_type("BTC/USDT:USDT", MarginType.ISOLATED)).margin_type is MarginType.ISOLATED
    await c.execution.set_margin_type("BTC/USDT:USDT", MarginType.ISOLATED)  # already: success, not an error
    await c.execution.set_margin_type("BTC/USDT:USDT", MarginType.CROSS)
    assert await c.execution.position_mode() is PositionMode.ONE_WAY
    price = harness.server.resting_futures_price()
    qty = f"{200 / float(price):.3f}"
    filled = await c.execution.place(cmd(acct, "BTC/USDT:USDT", "buy", "market", qty))
    assert filled.status is OrderStatus.FILLED
    positions = await c.execution.positions()
    assert [(p.symbol, Decimal(p.qty)) for p in positions] == [("BTC/USDT:USDT", Decimal(qty))]
    resting = await c.execution.place(cmd(acct, "BTC/USDT:USDT", "buy", "limit", qty, price))
    lower = f"{Decimal(price) - 1:.1f}"
    amend = AmendOrder(
        account=acct, symbol="BTC/USDT:USDT", client_order_id=resting.client_order_id, side="buy", price=lower
    )
    amended = await c.execution.amend(amend)
    assert amended.kind is OrderEventKind.AMENDED and Decimal(amended.price) == Decimal(price) - 1
    batch = await c.execution.place_batch([cmd(acct, "BTC/USDT:USDT", "buy", "limit", qty, price) for _ in range(3)])
    assert all(isinstance(b, OrderEvent) and b.status is OrderStatus.NEW for b in batch)
    cancelled = await c.execution.cancel_all(CancelAll(account=acct, symbol="BTC/USDT:USDT"))
    assert len(cancelled) == 4 and all(e.status is OrderStatus.CANCELED for e in cancelled)
    await c.execution.place(cmd(acct, "BTC/USDT:USDT", "sell", "market", qty, reduce_only=True))
    assert await c.execution.positions() == []
    await next_event(stream, lambda e: type(e).__name__ == "PositionEvent")


async def test_venue_refusals_are_typed_and_name_account_and_order(harness: Harness):
    c = await harness.account(Market.SPOT, spot={"USDT": "10"})
    acct = str(c.ctx.account)
    too_big = cmd(acct, "BTC/USDT", "buy", "limit", "1", "1000.00")
    with pytest.raises(Rejected) as info:
        await c.execution.place(too_big)
    assert info.value.code == -2010 and too_big.client_order_id in str(info.value) and acct in str(info.value)
    with pytest.raises(OrderNotFound):
        await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id="nope-1"))
    with pytest.raises(Unsupported, match="more than the 2 decimals"):
        await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", "1000.001"))
    with pytest.raises(Unsupported, match="trailing_stop_market"):
        await c.execution.place(cmd(acct, "BTC/USDT", "buy", "trailing_stop_market", "0.01", stop_price="1000"))
    with pytest.raises(Unsupported, match="unknown spot symbol .DOGE/USDT"):
        await c.execution.place(cmd(acct, "DOGE/USDT", "buy", "market", "1"))


async def test_set_credentials_switches_the_key_live_without_dropping_orders(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    bid = await spot_bid(harness)
    resting = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", limit_below(bid)))
    new = harness.server.admin("POST", f"/admin/v1/accounts/{c.account_id}/keys", {})
    creds = Credentials("binance", "spot", c.ctx.account.name, new["apiKey"], new["secret"])  # type: ignore[index]
    await c.execution.set_credentials(creds)
    await c.user.set_credentials(creds)
    harness.server.admin("DELETE", f"/admin/v1/keys/{c.api_key}")  # the old key is revoked
    assert (await c.execution.query_order("BTC/USDT", resting.client_order_id)).status is OrderStatus.NEW
    second = await c.execution.place(cmd(acct, "BTC/USDT", "buy", "limit", "0.01", limit_below(bid)))
    await c.execution.cancel(CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=resting.client_order_id))
    ev = await next_event(
        stream,
        lambda e: (
            isinstance(e, OrderEvent)
            and e.client_order_id == resting.client_order_id
            and e.status is OrderStatus.CANCELED
        ),
    )
    assert ev.kind is OrderEventKind.CANCELED
    assert second.status is OrderStatus.NEW
    kinds = [e.kind for e in list(stream.queue._queue) if isinstance(e, StreamStatus)]  # type: ignore[attr-defined]
    assert "gap" not in kinds  # the rotation left no gap
