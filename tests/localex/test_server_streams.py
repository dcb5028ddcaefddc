"""Market streams over raw WebSockets: depth diffs sync with REST snapshots (U/u Spot, pu futures)."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp

from localex.server.app import server_state

WAIT = 5.0


def rest(url: str) -> dict[str, object]:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def test_spot_depth_diffs_follow_the_snapshot(server) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url.replace("http", "ws") + "/ws/btcusdt@depth@100ms") as ws:
            first = await ws.receive_json(timeout=WAIT)
            snap = rest(server.url + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
            last = snap["lastUpdateId"]
            event = first
            while event["u"] <= last:  # drop events older than the snapshot
                event = await ws.receive_json(timeout=WAIT)
            assert event["U"] <= last + 1 <= event["u"]
            for _ in range(3):
                nxt = await ws.receive_json(timeout=WAIT)
                assert nxt["e"] == "depthUpdate" and nxt["U"] == event["u"] + 1
                assert all(isinstance(p, str) and isinstance(q, str) for p, q in nxt["b"] + nxt["a"])
                event = nxt


async def test_futures_depth_diffs_chain_by_pu(server) -> None:
    url = server.url.replace("http", "ws") + "/fstream/stream?streams=btcusdt@depth/btcusdt@bookTicker"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            prev = None
            seen_ticker = False
            while prev is None or not seen_ticker:
                msg = await ws.receive_json(timeout=WAIT)
                if msg["stream"] == "btcusdt@bookTicker":
                    seen_ticker = msg["data"]["e"] == "bookTicker" and "b" in msg["data"]
                    continue
                if prev is not None:
                    assert msg["data"]["pu"] == prev["u"]
                prev = msg["data"]
            snap = rest(server.url + "/fapi/v1/depth?symbol=BTCUSDT")
            assert snap["lastUpdateId"] >= prev["u"] and {"E", "T"} <= set(snap)


async def test_kline_stream_and_unsubscribe(server) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url.replace("http", "ws") + "/stream?streams=btcusdt@kline_1m") as ws:
            msg = await ws.receive_json(timeout=WAIT)
            assert msg["stream"] == "btcusdt@kline_1m" and msg["data"]["k"]["i"] == "1m"
            await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 9}))
            while True:  # frames already queued may still arrive before the answer
                reply = await ws.receive_json(timeout=WAIT)
                if "id" in reply:
                    break
            assert reply == {"result": None, "id": 9}


async def test_engine_builds_only_subscribed_market_data(server) -> None:
    events = server_state(server.app).exchange.em
    ws_url = server.url.replace("http", "ws")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url + "/stream?streams=ltcusdt@kline_5m/ltcusdt@aggTrade") as ws:
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            while "id" not in (reply := await ws.receive_json(timeout=WAIT)):
                pass
            assert reply["result"] == ["ltcusdt@aggTrade", "ltcusdt@kline_5m"]
            assert {"kline", "trade", "aggTrade"} <= set(events.interest)
            assert "5m" in events.kline_intervals
        for _ in range(50):  # the server notices the closed socket asynchronously
            if "5m" not in (events.kline_intervals or ()):
                break
            await asyncio.sleep(0.05)
    assert "5m" not in events.kline_intervals
