"""Ticker streams through unmodified clients: ccxt.pro ``watch_ticker`` and python-binance's ticker sockets."""

from __future__ import annotations

import asyncio

from localex import clients

WAIT = 5.0
POLL = 0.2  # python-binance's read loop polls every TIMEOUT s; leaving a socket waits for one poll


def fast(sock):
    """Shorten a python-binance socket's poll interval so leaving it is quick."""
    sock.TIMEOUT = POLL
    return sock


async def test_ccxt_pro_watch_ticker_spot_and_futures(server) -> None:
    for default_type, symbol in (("spot", "BTC/USDT"), ("swap", "BTC/USDT:USDT")):
        ex = clients.ccxt_pro_client(server.url, default_type=default_type)
        try:
            first = await asyncio.wait_for(ex.watch_ticker(symbol), WAIT)
            second = await asyncio.wait_for(ex.watch_ticker(symbol), WAIT)
            assert first["symbol"] == symbol and first["last"] > 0 and first["high"] >= first["low"] > 0
            assert second["timestamp"] > first["timestamp"]
            assert first["baseVolume"] is not None and first["percentage"] is not None
            full = await asyncio.wait_for(ex.watch_tickers([symbol], {"name": "ticker"}), WAIT)  # 24hrTicker
            assert full[symbol]["info"]["e"] == "24hrTicker" and full[symbol]["vwap"] is not None
            if default_type == "spot":  # only Spot's full ticker carries the best bid and ask
                assert full[symbol]["bid"] > 0 and full[symbol]["ask"] >= full[symbol]["bid"]
        finally:
            await ex.close()


async def test_python_binance_spot_ticker_sockets(server) -> None:
    client = await clients.binance_async(server.url)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        async with fast(bsm.symbol_ticker_socket("BTCUSDT")) as ticker:
            event = await asyncio.wait_for(ticker.recv(), WAIT)
        assert event["e"] == "24hrTicker" and event["s"] == "BTCUSDT" and float(event["c"]) > 0
        async with fast(bsm.symbol_miniticker_socket("ETHUSDT")) as mini:
            event = await asyncio.wait_for(mini.recv(), WAIT)
        assert event["e"] == "24hrMiniTicker" and event["s"] == "ETHUSDT"
        async with fast(bsm.ticker_socket()) as every:  # !ticker@arr
            rows = await asyncio.wait_for(every.recv(), WAIT)
        assert isinstance(rows, list) and rows and {r["e"] for r in rows} == {"24hrTicker"}
        async with fast(bsm.miniticker_socket()) as minis:  # !miniTicker@arr@1000ms
            rows = await asyncio.wait_for(minis.recv(), WAIT)
        assert isinstance(rows, list) and rows and {r["e"] for r in rows} == {"24hrMiniTicker"}
    finally:
        await client.close_connection()


async def test_python_binance_futures_ticker_sockets(server) -> None:
    client = await clients.binance_async(server.url)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        async with fast(bsm.individual_symbol_ticker_futures_socket("BTCUSDT")) as ticker:
            msg = await asyncio.wait_for(ticker.recv(), WAIT)
        assert msg["stream"] == "btcusdt@ticker" and msg["data"]["e"] == "24hrTicker" and "b" not in msg["data"]
        async with fast(bsm.futures_ticker_socket()) as every:
            msg = await asyncio.wait_for(every.recv(), WAIT)
        assert msg["stream"] == "!ticker@arr" and {r["s"] for r in msg["data"]} <= {"BTCUSDT", "ETHUSDT"}
        async with fast(bsm.all_ticker_futures_socket()) as books:  # !bookTicker
            msg = await asyncio.wait_for(books.recv(), WAIT)
        assert msg["stream"] == "!bookTicker" and msg["data"]["e"] == "bookTicker"
    finally:
        await client.close_connection()


async def test_mark_price_streams_through_clients(server) -> None:
    """ccxt.pro ``watch_mark_price`` / ``watch_mark_prices`` and python-binance's mark price sockets
    (``<symbol>@markPrice@1s``, ``!markPrice@arr@1s``), all timer-driven like Binance's."""
    ex = clients.ccxt_pro_client(server.url, default_type="swap")
    try:
        one = await asyncio.wait_for(ex.watch_mark_price("BTC/USDT:USDT"), WAIT)
        assert one["symbol"] == "BTC/USDT:USDT" and one["markPrice"] > 0 and one["info"]["e"] == "markPriceUpdate"
        every = await asyncio.wait_for(ex.watch_mark_prices(["BTC/USDT:USDT", "ETH/USDT:USDT"]), WAIT)
        assert set(every) <= {"BTC/USDT:USDT", "ETH/USDT:USDT"} and all(t["markPrice"] > 0 for t in every.values())
    finally:
        await ex.close()
    client = await clients.binance_async(server.url)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        async with fast(bsm.symbol_mark_price_socket("BTCUSDT", fast=True)) as mark:
            msg = await asyncio.wait_for(mark.recv(), WAIT)
        assert msg["stream"] == "btcusdt@markPrice@1s" and msg["data"]["e"] == "markPriceUpdate"
        async with fast(bsm.all_mark_price_socket(fast=True)) as marks:
            msg = await asyncio.wait_for(marks.recv(), WAIT)
        assert msg["stream"] == "!markPrice@arr@1s" and {r["s"] for r in msg["data"]} == {"BTCUSDT", "ETHUSDT"}
    finally:
        await client.close_connection()
