"""``EventStream``: a ready-made ``oms.venues.Stream`` for connectors (a queue with a handshake and counters).

A connector's reader task decodes frames and calls ``put(event)``; a frame it cannot use goes to
``drop(reason, detail)``, which counts it by reason and logs it (rate-limited by count: the first few of each
reason and then every thousandth) and never raises. ``set_ready()`` marks the subscription acknowledged;
``fail(exc)`` ends the stream with an error that the consumer's next ``__anext__`` raises; ``close()`` ends it
cleanly and runs the ``on_close`` callback (the connector's unsubscribe/disconnect) once.

    stream = EventStream(name="binance/spot trades BTC/USDT", on_close=conn.close)
    ...
    async for trade in stream: ...
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
_END = object()


class EventStream(Generic[T]):
    def __init__(
        self,
        name: str = "",
        *,
        on_close: Callable[[], Awaitable[object]] | None = None,
        maxsize: int = 0,
        logger: logging.Logger = log,
    ):
        self.name = name
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._ready = asyncio.Event()
        self._on_close = on_close
        self._closed = False
        self._error: BaseException | None = None
        self._dropped: Counter[str] = Counter()
        self._log = logger

    # --- producer side -------------------------------------------------------------------------------------
    def put(self, event: T) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def drop(self, reason: str, detail: object = "") -> None:
        """Count (and log) an unusable frame; never raises."""
        self._dropped[reason] += 1
        n = self._dropped[reason]
        if n <= 5 or n % 1000 == 0:
            self._log.warning("%s: dropped frame #%d (%s): %.200s", self.name, n, reason, detail)

    def set_ready(self) -> None:
        self._ready.set()

    def fail(self, exc: BaseException) -> None:
        """End the stream with ``exc`` (raised to the consumer after the events already queued)."""
        if self._error is None:
            self._error = exc
            self._ready.set()
            self._queue.put_nowait(_END)

    # --- Stream --------------------------------------------------------------------------------------------
    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # every later call ends too
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def ready(self) -> None:
        await self._ready.wait()
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        self._queue.put_nowait(_END)
        if self._on_close is not None:
            await self._on_close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self._dropped)
