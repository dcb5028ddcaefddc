"""The connector's python-binance WebSocket API client survives what the library's own read loop does not."""

from __future__ import annotations

import asyncio

import orjson

from oms.venues.binance.client import RateLimitedWebsocketAPI


async def test_an_answer_to_a_request_that_just_gave_up_is_dropped_and_the_read_loop_lives() -> None:
    """A timeout cancels the request's future one loop step before the request removes it from the library's
    ``_responses``; an answer read in that step made ``set_result`` raise and ended the read loop. Now it is
    dropped, and the answers after it still reach their requests."""
    limits: list = []
    api = RateLimitedWebsocketAPI("ws://127.0.0.1:9/ws-api/v3", limits.extend, 10.0)
    gave_up = asyncio.get_running_loop().create_future()
    gave_up.cancel()
    api._responses["late"] = gave_up  # the state a timeout leaves for one loop step
    answer = {"id": "late", "status": 200, "result": {}, "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT"}]}
    assert api._handle_message(orjson.dumps(answer).decode()) is None
    assert api.late_answers == 1 and limits == [{"rateLimitType": "REQUEST_WEIGHT"}]
    waiting = asyncio.get_running_loop().create_future()
    api._responses["next"] = waiting
    api._handle_message(orjson.dumps({"id": "next", "status": 200, "result": {"ok": 1}}).decode())
    assert waiting.result()["result"] == {"ok": 1}
