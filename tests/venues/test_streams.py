"""EventStream: events in order, the ready handshake, drops counted (never raised), failure and close."""

from __future__ import annotations

import asyncio

import pytest

from oms.venues import Stream
from oms.venues.streams import EventStream


async def test_events_ready_drops_and_close():
    closed = []

    async def on_close():
        closed.append(True)

    s: EventStream[int] = EventStream("t", on_close=on_close)
    assert isinstance(s, Stream)
    waiter = asyncio.create_task(s.ready())
    await asyncio.sleep(0)
    assert not waiter.done()
    s.set_ready()
    await asyncio.wait_for(waiter, 5)
    for i in range(3):
        s.put(i)
    for _ in range(1001):
        s.drop("bad_frame", b"\x00garbage")
    s.drop("unknown_symbol", "XYZ")
    assert [await s.__anext__() for _ in range(3)] == [0, 1, 2]
    assert s.dropped == {"bad_frame": 1001, "unknown_symbol": 1}
    await s.close()
    await s.close()
    assert closed == [True]
    s.put(99)  # after close: ignored
    assert [x async for x in s] == []


async def test_failure_reaches_the_consumer_after_queued_events():
    s: EventStream[str] = EventStream("t")
    s.put("a")
    s.fail(ConnectionError("gave up after 5 reconnects"))
    assert await s.__anext__() == "a"
    with pytest.raises(ConnectionError, match="gave up"):
        await s.__anext__()
    with pytest.raises(ConnectionError):
        await s.ready()
