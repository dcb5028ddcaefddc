"""Binance's WebSocket limits and error frames, through raw frames against a real server.

Market streams: incoming messages per second per connection (Spot 5, futures 10; over it the connection
is closed with 1008), streams per connection, connection attempts per IP per 5 minutes (HTTP 429, -1034).
Malformed control frames get Binance's ``{"error": {"code": 0-3, "msg"}, "id"}`` answers and are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import WSMsgType
from conftest import LocalServer, free_port, start_server

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig

WAIT = 5.0


@pytest.fixture(scope="module")
def tight() -> Iterator[LocalServer]:
    """A server allowing 3 streams per connection."""
    limits = RateLimitConfig(ws_max_streams_per_connection=3)
    yield from start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits))


async def _flood(url: str, count: int) -> tuple[list[dict[str, object]], int | None]:
    """Send ``count`` LIST_SUBSCRIPTIONS at once; the answers received and the close code (None if open)."""
    answers: list[dict[str, object]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for i in range(count):
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        while len(answers) < count:
            msg = await ws.receive(timeout=WAIT)
            if msg.type != WSMsgType.TEXT:
                return answers, ws.close_code
            answers.append(json.loads(msg.data))
        return answers, None


async def test_message_rate_closes_the_connection_with_1008_and_others_go_on(server) -> None:
    base = server.url.replace("http", "ws")
    before = server.admin("GET", "/admin/v1/counters")["badInput"].get("ws_stream_message_rate", 0)
    answers, code = await _flood(base + "/ws", 6)  # Spot: 5 per second
    assert code == 1008 and [a["id"] for a in answers] == [0, 1, 2, 3, 4]
    answers, code = await _flood(base + "/ws", 5)
    assert code is None and len(answers) == 5
    answers, code = await _flood(base + "/fstream/ws", 10)  # futures: 10 per second
    assert code is None and len(answers) == 10
    _, code = await _flood(base + "/fstream/ws", 11)
    assert code == 1008
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/ws/btcusdt@depth@100ms") as ws:
        assert (await ws.receive_json(timeout=WAIT))["e"] == "depthUpdate"  # the server still serves others
    after = server.admin("GET", "/admin/v1/counters")["badInput"]["ws_stream_message_rate"]
    assert after == before + 2


async def test_streams_per_connection_limit(tight) -> None:
    url = tight.url.replace("http", "ws") + "/ws/btcusdt@trade"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "ltcusdt@trade"], "id": 1}))
        assert await ws.receive_json(timeout=WAIT) == {"result": None, "id": 1}
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@ticker"], "id": 2}))
        reply = await ws.receive_json(timeout=WAIT)
        assert reply["id"] == 2 and reply["error"]["code"] == 2 and "3" in reply["error"]["msg"]
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert (await ws.receive_json(timeout=WAIT))["result"] == ["btcusdt@trade", "ethusdt@trade", "ltcusdt@trade"]


async def test_connection_attempts_per_ip_per_5_minutes() -> None:
    limits = RateLimitConfig(ws_connections_per_5min=3)
    for tight in start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits)):
        await _connection_attempts(tight)


async def _connection_attempts(tight: LocalServer) -> None:
    base = tight.url.replace("http", "ws")
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.ws_connect(base + "/ws"):
                pass
        async with session.get(tight.url + "/ws") as resp:  # the 4th attempt is refused before the upgrade
            body = await resp.json()
            assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert body == {
            "code": -1034,
            "msg": "Too many connection attempts from IP; current limit is 3 per '5 MINUTE'.",
        }
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(base + "/stream?streams=btcusdt@trade")
        assert refused.value.status == 429
        async with session.ws_connect(base + "/fstream/ws") as fws:  # futures streams: a separate budget
            await fws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            assert await fws.receive_json(timeout=WAIT) == {"result": [], "id": 1}
        for _ in range(3):
            async with session.ws_connect(base + "/ws-api/v3"):
                pass
        async with session.get(tight.url + "/ws-api/v3") as resp:
            assert resp.status == 429 and (await resp.json())["code"] == -1034
    counters = tight.admin("GET", "/admin/v1/counters")
    assert counters["errorsByCode"]["-1034"] >= 3 and counters["internalErrors"] == 0


async def test_malformed_control_frames_get_binance_errors(server) -> None:
    url = server.url.replace("http", "ws") + "/ws"
    cases = [
        ('{"method": "SUBSCRIBE", "params": [', 3, "Invalid JSON: expected value at line 1 column"),
        (
            '{"method": "SUBSCRIBE", "params": [], "id": "not-alnum!"}',
            2,
            "Invalid request: request ID must be an unsigned integer",
        ),
        ('{"method": "SUBSCRIBE", "params": [], "id": true}', 2, "Invalid request: request ID must be an unsigned"),
        ('{"params": [], "id": 5}', 2, "Invalid request: missing field `method`"),
        ('{"method": "subscribe", "params": [], "id": 6}', 2, "Invalid request: unknown variant `subscribe`"),
        ('{"method": "SUBSCRIBE", "params": [], "id": 7, "extra": 1}', 2, "Invalid request: too many parameters"),
        ('{"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 8}', 2, "Invalid request: invalid type"),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@trades"], "id": 9}', 2, "Invalid request: invalid stream"),
        ('{"method": "GET_PROPERTY", "params": [1], "id": 10}', 2, "Invalid request: property name must be a string"),
        ('{"method": "GET_PROPERTY", "params": ["colour"], "id": 11}', 0, "Unknown property"),
        (
            '{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 12}',
            1,
            "Invalid value type: expected Boolean",
        ),
        ("[1, 2]", 2, "Invalid request: invalid type"),
    ]
    before = server.admin("GET", "/admin/v1/counters")["badInput"]
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(cases), 4):  # stay under 5 messages per second per connection
            async with session.ws_connect(url) as ws:
                for frame, code, msg in cases[start : start + 4]:
                    await ws.send_str(frame)
                    reply = await ws.receive_json(timeout=WAIT)
                    assert set(reply) == {"error", "id"} and reply["error"]["code"] == code, (frame, reply)
                    assert reply["error"]["msg"].startswith(msg), (frame, reply)
        async with session.ws_connect(url) as ws:
            await ws.send_str('{"method": "SET_PROPERTY", "params": ["combined", true], "id": "abc123"}')
            assert await ws.receive_json(timeout=WAIT) == {"result": None, "id": "abc123"}
            await ws.send_str('{"method": "GET_PROPERTY", "params": ["combined"], "id": null}')
            assert await ws.receive_json(timeout=WAIT) == {"result": True, "id": None}
            await ws.send_bytes(b"\x00\x01")
            assert (await ws.receive_json(timeout=WAIT))["error"]["code"] == 3
    after = server.admin("GET", "/admin/v1/counters")
    counted = sum(after["badInput"].values()) - sum(before.values())
    assert counted >= len(cases) + 1 and after["internalErrors"] == 0
