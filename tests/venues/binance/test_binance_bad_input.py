"""Bad input never ends a stream: garbage and truncated frames, unknown symbols, events of unknown orders,
out-of-order and duplicated events, over-precise decimals are counted (``dropped``, by reason), logged, and the
live stream goes on delivering; the order status machine decides what an out-of-order event means."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from oms.model import Fill, Market, OrderEvent, OrderStatus, PlaceOrder
from oms.venues.binance.market_data import BinanceMarketData
from tests.venues.binance.conftest import Harness, next_event

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"


def frame(channel: str, i: int = 0) -> dict:
    return json.loads((PAYLOADS / f"{channel}.json").read_text())[i]["frame"]


async def test_user_stream_survives_bad_frames_and_keeps_delivering(harness: Harness):
    c = await harness.account(Market.SPOT)
    stream = c.user.events()
    await stream.ready()
    acct = str(c.ctx.account)
    placed = await c.execution.place(
        PlaceOrder(
            account=acct,
            symbol="BTC/USDT",
            side="buy",
            order_type="limit",
            qty="0.01",
            price="1000.00",
            intent=str(time.time_ns()),
        ).with_client_order_id()
    )
    coid = placed.client_order_id
    good = {**frame("executionReport", 1), "c": coid, "i": int(placed.venue_order_id or 0)}
    bad = [
        "not json at all",
        '{"e":"executionReport","E":1',  # truncated
        b"\xff\xfe\x00",
        {"e": "executionReport"},  # fields missing
        {**good, "q": 5},  # a number where Binance sends a decimal string
        {**good, "s": "DOGEUSDT"},  # unknown symbol
        {**good, "L": "1000.001", "l": "0.01", "t": 99, "x": "TRADE", "X": "FILLED"},  # over-precise price
        {**good, "c": "someone-else", "C": ""},  # an order this connector neither placed nor loaded
        {"e": "nonsense", "E": 1},
    ]
    for msg in bad:
        assert c.user.handle(msg) is None
    dropped = stream.dropped
    assert dropped["bad_frame"] >= 5 and dropped["unknown_symbol"] == 1 and dropped["bad_decimal"] == 1
    assert dropped["untracked"] == 1
    # FILLED before NEW, then the late NEW and a duplicate of the fill: the machine keeps FILLED, once
    fill = {**good, "x": "TRADE", "X": "FILLED", "l": "0.01000000", "z": "0.01000000", "L": "1000.00", "t": 777}
    c.user.handle(fill)
    c.user.handle({**good, "x": "NEW", "X": "NEW"})
    c.user.handle(fill)
    got = await next_event(stream, lambda e: isinstance(e, Fill) and e.trade_id == "777")
    assert got.client_order_id == coid
    assert c.execution.session.tracker.get(coid).status is OrderStatus.FILLED
    assert stream.dropped["duplicate trade"] == 1
    # the live subscription still works: a real order's events arrive
    second = await c.execution.place(
        PlaceOrder(
            account=acct, symbol="BTC/USDT", side="buy", order_type="market", qty="0.002", intent=str(time.time_ns())
        ).with_client_order_id()
    )
    await next_event(stream, lambda e: isinstance(e, Fill) and e.client_order_id == second.client_order_id)


async def test_market_stream_survives_bad_frames(harness: Harness):
    md = BinanceMarketData(harness.context("market_data", Market.SPOT), await harness.instrument_provider(Market.SPOT))
    try:
        stream = md.trades(["BTC/USDT"])
        await asyncio.wait_for(stream.ready(), 10)
        trade = frame("spot_trade", 1)
        for bad in (
            "garbage",
            '{"stream":"btcusdt@trade","data":{"e":"trade"',
            json.dumps({"stream": "btcusdt@trade", "data": {**trade, "p": 7}}),
            json.dumps({"stream": "dogeusdt@trade", "data": {**trade, "s": "DOGEUSDT"}}),
            json.dumps({"stream": "btcusdt@trade", "data": {**trade, "p": "1.001"}}),
            json.dumps({"stream": "btcusdt@ticker", "data": {}}),
        ):
            assert stream.decode(bad, "binance") is None
        assert stream.dropped == {"bad_frame": 3, "unknown_symbol": 1, "bad_value": 1, "unread_channel": 1}
        c = await harness.account(Market.SPOT)  # a trade happens...
        acct = str(c.ctx.account)
        await c.execution.place(
            PlaceOrder(
                account=acct,
                symbol="BTC/USDT",
                side="buy",
                order_type="market",
                qty="0.002",
                intent=str(time.time_ns()),
            ).with_client_order_id()
        )
        ev = await next_event(stream, lambda e: hasattr(e, "trade_id"), 20)  # ...and the live stream delivers it
        assert ev.symbol == "BTC/USDT" and ev.taker_side == "buy"
    finally:
        await md.close()


async def test_order_events_of_the_stream_are_model_events(harness: Harness):
    c = await harness.account(Market.USDM)
    stream = c.user.events()
    await stream.ready()
    c.user.handle(json.dumps(frame("ORDER_TRADE_UPDATE", 0)))  # an untracked order: dropped, counted
    assert stream.dropped["untracked"] == 1
    c.user.handle(json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": []}}))
    ev = await next_event(stream, lambda e: type(e).__name__ == "BalanceEvent")
    assert ev.account == str(c.ctx.account) and not isinstance(ev, OrderEvent)
