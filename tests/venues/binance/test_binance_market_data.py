"""Market data streams as model events against a live local exchange: best bid/ask, klines, mark price with
funding, several channels on one connection, and the REST book snapshot."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from oms.model import Kline, Market, MarkPrice, PlaceOrder, Quote, Trade
from oms.venues import StreamStatus
from oms.venues.binance.market_data import BinanceMarketData
from tests.venues.binance.conftest import Harness, next_event


async def market_data(h: Harness, market: Market) -> BinanceMarketData:
    return BinanceMarketData(h.context("market_data", market), await h.instrument_provider(market))


async def trade(h: Harness, market: Market) -> None:
    c = await h.account(market)
    symbol = "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"
    qty = "0.002" if market is Market.SPOT else f"{200 / float(h.server.resting_futures_price()):.3f}"
    await c.execution.place(
        PlaceOrder(
            account=str(c.ctx.account),
            symbol=symbol,
            side="buy",
            order_type="market",
            qty=qty,
            intent=str(time.time_ns()),
        ).with_client_order_id()
    )


async def test_quotes_klines_and_several_channels_on_one_connection(harness: Harness):
    md = await market_data(harness, Market.SPOT)
    try:
        combined = md.combined(["BTC/USDT"], ["trade", "bookTicker", "kline_1m"])
        await asyncio.wait_for(combined.ready(), 10)
        assert isinstance(await anext(combined), StreamStatus)
        await trade(harness, Market.SPOT)
        seen: dict[type, object] = {}

        async def collect() -> None:
            async for ev in combined:
                seen.setdefault(type(ev), ev)
                if {Trade, Quote, Kline} <= set(seen):
                    return

        await asyncio.wait_for(collect(), 20)
        q = seen[Quote]
        assert Decimal(q.bid_price) < Decimal(q.ask_price) and q.symbol == "BTC/USDT"  # type: ignore[attr-defined]
        assert seen[Kline].interval == "1m"  # type: ignore[attr-defined]
        assert sum(combined.dropped.values()) == 0
        snap = await md.book_snapshot("BTC/USDT", 20)
        assert (
            snap.last_update_id > 0
            and 0 < len(snap.bids) <= 20
            and Decimal(snap.bids[0][0]) > Decimal(snap.bids[-1][0])
        )
    finally:
        await md.close()


async def test_mark_prices_with_funding(harness: Harness):
    md = await market_data(harness, Market.USDM)
    try:
        stream = md.mark_prices(["BTC/USDT:USDT"])
        mark = await next_event(stream, lambda e: isinstance(e, MarkPrice), 15)
        assert mark.symbol == "BTC/USDT:USDT" and Decimal(mark.mark_price) > 0
        assert mark.funding_rate is not None and mark.next_funding_ns > time.time_ns()
        quotes = md.quotes(["BTC/USDT:USDT"])
        q = await next_event(quotes, lambda e: isinstance(e, Quote), 15)
        assert q.symbol == "BTC/USDT:USDT" and q.update_id > 0
    finally:
        await md.close()
