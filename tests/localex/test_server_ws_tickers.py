"""Ticker streams over raw WebSockets: exact payload keys and types, update speeds, agreement with REST."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from conftest import LocalServer, free_port, start_server

from localex import clients
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig

WAIT = 5.0
SPOT_TICKER = {
    "e": str,
    "E": int,
    "s": str,
    "p": str,
    "P": str,
    "w": str,
    "x": str,
    "c": str,
    "Q": str,
    "b": str,
    "B": str,
    "a": str,
    "A": str,
    "o": str,
    "h": str,
    "l": str,
    "v": str,
    "q": str,
    "O": int,
    "C": int,
    "F": int,
    "L": int,
    "n": int,
}
FUTURES_TICKER = {k: t for k, t in SPOT_TICKER.items() if k not in ("x", "b", "B", "a", "A")}
MINI_TICKER = {"e": str, "E": int, "s": str, "c": str, "o": str, "h": str, "l": str, "v": str, "q": str}


def rest(url: str) -> object:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def assert_shape(payload: dict[str, object], shape: dict[str, type]) -> None:
    """Exactly the keys of ``shape``, each of its type (bool is not an int here)."""
    assert list(payload) == list(shape), (list(payload), list(shape))
    for key, kind in shape.items():
        assert type(payload[key]) is kind, (key, payload[key])


async def frames(ws: aiohttp.ClientWebSocketResponse, streams: set[str]) -> dict[str, object]:
    """The first ``data`` of each named stream on a combined connection."""
    seen: dict[str, object] = {}
    while set(seen) != streams:
        msg = await ws.receive_json(timeout=WAIT)
        seen.setdefault(msg["stream"], msg["data"])
    return seen


@pytest.fixture(scope="module")
def quiet() -> Iterator[LocalServer]:
    """A server without price replay: statistics move only when the test trades."""
    yield from start_server(
        ServerConfig(port=free_port(), replay=False, rate_limits=RateLimitConfig(spot_weight_per_minute=100_000))
    )


async def test_spot_ticker_payloads_have_binance_keys_and_types(server) -> None:
    names = {"btcusdt@ticker", "btcusdt@miniTicker", "!ticker@arr", "!miniTicker@arr"}
    url = server.url.replace("http", "ws") + "/stream?streams=" + "/".join(sorted(names))
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        seen = await frames(ws, names)
    assert_shape(seen["btcusdt@ticker"], SPOT_TICKER)
    assert seen["btcusdt@ticker"]["e"] == "24hrTicker" and seen["btcusdt@ticker"]["s"] == "BTCUSDT"
    assert_shape(seen["btcusdt@miniTicker"], MINI_TICKER)
    assert seen["btcusdt@miniTicker"]["e"] == "24hrMiniTicker"
    assert {t["s"] for t in seen["!ticker@arr"]} <= {"BTCUSDT", "ETHUSDT", "LTCUSDT", "ETHBTC"}
    for row in seen["!ticker@arr"]:
        assert_shape(row, SPOT_TICKER)
    for row in seen["!miniTicker@arr"]:
        assert_shape(row, MINI_TICKER)


async def test_futures_ticker_payloads_and_all_book_tickers(server) -> None:
    names = {"btcusdt@ticker", "btcusdt@miniTicker", "!ticker@arr", "!bookTicker"}
    url = server.url.replace("http", "ws") + "/fstream/market/stream?streams=" + "/".join(sorted(names))
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        seen = await frames(ws, names)
    assert_shape(seen["btcusdt@ticker"], FUTURES_TICKER)
    assert_shape(seen["btcusdt@miniTicker"], MINI_TICKER)
    for row in seen["!ticker@arr"]:
        assert_shape(row, FUTURES_TICKER)
    book = seen["!bookTicker"]
    assert book["e"] == "bookTicker" and book["s"] in ("BTCUSDT", "ETHUSDT")
    assert set(book) == {"e", "E", "T", "u", "s", "b", "B", "a", "A"}


async def test_update_speeds_spot_1000ms_futures_500ms(server) -> None:
    base = server.url.replace("http", "ws")

    async def gaps(url: str) -> list[int]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.receive_json(timeout=WAIT)  # the first push comes at once, then on the period
            times = [(await ws.receive_json(timeout=WAIT))["E"] for _ in range(4)]
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    spot, futures = await asyncio.gather(
        gaps(base + "/ws/ethusdt@miniTicker"), gaps(base + "/fstream/ws/ethusdt@miniTicker")
    )
    assert all(850 <= g <= 1150 for g in spot), spot
    assert all(350 <= g <= 650 for g in futures), futures


def _trade(srv: LocalServer, market: str, price: str) -> None:
    """Two accounts trade 0.01 BTC at ``price`` on an otherwise empty book."""
    if market == "spot":
        maker = clients.binance_sync(srv.url, *srv.new_account(spot={"BTC": "1"})[1:])
        taker = clients.binance_sync(srv.url, *srv.new_account(spot={"USDT": "100000"})[1:])
        maker.order_limit_sell(symbol="BTCUSDT", quantity="0.01", price=price)
        taker.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    else:
        maker = clients.binance_sync(srv.url, *srv.new_account(futures={"USDT": "100000"})[1:])
        taker = clients.binance_sync(srv.url, *srv.new_account(futures={"USDT": "100000"})[1:])
        maker.futures_create_order(
            symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01", price=price
        )
        taker.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")


@pytest.mark.parametrize(("market", "prefix", "path"), [("spot", "", "/api/v3"), ("usdm", "/fstream", "/fapi/v1")])
async def test_ticker_stream_agrees_with_rest_24hr(quiet, market, prefix, path) -> None:
    await asyncio.to_thread(_trade, quiet, market, "30000.00" if market == "spot" else "30000.0")
    url = quiet.url.replace("http", "ws") + prefix + "/ws/btcusdt@ticker"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        event = await ws.receive_json(timeout=WAIT)
    row = await asyncio.to_thread(rest, quiet.url + path + "/ticker/24hr?symbol=BTCUSDT")
    pairs = {
        "p": "priceChange",
        "P": "priceChangePercent",
        "w": "weightedAvgPrice",
        "c": "lastPrice",
        "o": "openPrice",
        "h": "highPrice",
        "l": "lowPrice",
        "v": "volume",
        "q": "quoteVolume",
        "F": "firstId",
        "L": "lastId",
        "n": "count",
    }
    if market == "spot":
        pairs.update({"x": "prevClosePrice", "b": "bidPrice", "B": "bidQty", "a": "askPrice", "A": "askQty"})
    assert {k: event[k] for k in pairs} == {k: row[v] for k, v in pairs.items()}
    assert float(event["c"]) == 30000 and event["n"] >= 1 and float(event["Q"]) == 0.01
    assert abs(event["C"] - row["closeTime"]) < 5000 and event["O"] <= event["C"]


async def test_all_market_array_holds_only_changed_symbols(quiet) -> None:
    url = quiet.url.replace("http", "ws") + "/ws/!miniTicker@arr"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        first = await ws.receive_json(timeout=WAIT)
        assert {t["s"] for t in first} == {"BTCUSDT", "ETHUSDT", "LTCUSDT", "ETHBTC"}  # everything is new to the stream
        with pytest.raises(asyncio.TimeoutError):  # nothing changed: nothing is pushed
            await ws.receive_json(timeout=1.5)
        await asyncio.to_thread(_trade, quiet, "spot", "31000.00")
        update = await ws.receive_json(timeout=WAIT)
    assert [t["s"] for t in update] == ["BTCUSDT"] and float(update[0]["c"]) == 31000


async def test_unknown_symbol_streams_are_accepted_and_silent(server) -> None:
    url = server.url.replace("http", "ws") + "/ws/nosuchcoin@ticker"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_json(timeout=1.5)
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["!bookTicker"], "id": 1}))
        assert await ws.receive_json(timeout=WAIT) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"},
            "id": 1,
        }  # Spot retired !bookTicker


MARK_PRICE = {"e": str, "E": int, "s": str, "p": str, "i": str, "P": str, "r": str, "T": int}


async def test_mark_price_payloads_speeds_and_spot_refusal(server) -> None:
    """``markPriceUpdate`` keys and types (prices with 8 decimals, as GET /fapi/v1/premiumIndex), the 1 s
    variant's speed, the all-market array with every symbol, and Spot refusing the futures-only stream."""
    names = {"btcusdt@markPrice@1s", "!markPrice@arr@1s"}
    url = server.url.replace("http", "ws") + "/fstream/stream?streams=" + "/".join(sorted(names))
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        seen = await frames(ws, names)
        times = [seen["btcusdt@markPrice@1s"]["E"]]  # type: ignore[index]
        while len(times) < 4:
            msg = await ws.receive_json(timeout=WAIT)
            if msg["stream"] == "btcusdt@markPrice@1s":
                times.append(msg["data"]["E"])
    assert_shape(seen["btcusdt@markPrice@1s"], MARK_PRICE)  # type: ignore[arg-type]
    steady = times[1:]  # the first push comes at once, the next on the period's boundaries
    assert all(900 <= b - a <= 1300 for a, b in zip(steady, steady[1:], strict=False)), times
    rows = seen["!markPrice@arr@1s"]
    assert [r["s"] for r in rows] == ["BTCUSDT", "ETHUSDT"]  # type: ignore[union-attr]
    premium = rest(server.url + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert len(premium["markPrice"].split(".")[1]) == len(rows[0]["p"].split(".")[1]) == 8  # type: ignore
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["!markPrice@arr"], "id": 1})
        reply = await ws.receive_json(timeout=WAIT)
    assert reply["error"]["code"] == 2 and reply["id"] == 1
