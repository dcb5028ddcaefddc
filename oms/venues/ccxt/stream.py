"""``Stream`` over ccxt.pro watch loops: a pump task, a queue, a subscription handshake, drop counters.

The pump runs the stream's async generator (one ``watch_*`` call after another) and queues what it yields;
it starts when the stream is made (or, made outside a running loop, on the first ``ready()`` or iteration),
so events after ``ready()`` are delivered however late the consumer starts iterating. ``ready()`` returns
once the subscription is on the wire and the venue has processed it: a ccxt.pro connection is open with a
subscription for the stream's topic, and a WebSocket ping sent after it has been answered (a server handles
a connection's frames in order, so the pong comes after the SUBSCRIBE was read). Nothing here is
exchange-specific.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from oms.venues.ccxt.session import Session

log = logging.getLogger(__name__)

T = TypeVar("T")


class WatchStream(Generic[T]):
    def __init__(
        self,
        name: str,
        session: Session,
        source: Callable[[], AsyncIterator[T]],
        topics: Sequence[str],
        dropped: Counter[str] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.session = session
        self._source = source
        self._topics = [t.lower() for t in topics]
        self._dropped: Counter[str] = dropped if dropped is not None else Counter()
        self._queue: asyncio.Queue[T | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._first = asyncio.Event()
        self._before: set[tuple[str, str]] = set()
        self.timeout_s = timeout_s
        try:  # the subscription starts now (the interface's rule), when there is a loop to run it on
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start()

    # --- Stream protocol ---------------------------------------------------------------------------

    def __aiter__(self) -> WatchStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        self._start()
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._closed = True
            if isinstance(item, StopAsyncIteration):
                raise item
            raise item
        return item

    async def ready(self) -> None:
        """Until the venue has the subscription (see the module doc); ``TimeoutError`` after ``timeout_s``."""
        self._start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while loop.time() < deadline:
            if self._first.is_set():
                return
            client = self._subscribed_client()
            if client is not None and await self._round_trip(client, deadline - loop.time()):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.session.name} {self.name}: no subscription within {self.timeout_s:g}s")

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def dropped(self) -> Mapping[str, int]:
        counts = Counter(self._dropped)
        if self.session.guard.total:
            counts["bad_frame"] += self.session.guard.total
        return counts

    # --- internals ---------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._before = self._keys()
            self._task = asyncio.ensure_future(self._pump())

    def _clients(self) -> list[Any]:
        clients = (getattr(self.session.exchange, "clients", None) or {}).values()
        return [c for c in clients if hasattr(c, "connected") and hasattr(c, "subscriptions")]

    def _keys(self) -> set[tuple[str, str]]:
        return {(str(c.url), str(k)) for c in self._clients() for k in list(c.subscriptions)}

    async def _pump(self) -> None:
        try:
            async for item in self._source():
                self._first.set()
                self._queue.put_nowait(item)
            self._queue.put_nowait(StopAsyncIteration())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a stream closed for good (auth revoked, ...): the consumer gets it
            log.warning("%s %s: stream ended: %s", self.session.name, self.name, exc)
            self._queue.put_nowait(exc)

    def _subscribed_client(self) -> Any:
        """A connected client with a subscription for the topics, or (no topics: a private stream, whose keys
        are venue-specific) one with a subscription that was not there before the stream started."""
        for client in self._clients():
            if not client.connected.done() or client.closed():
                continue
            keys = [str(k) for k in list(client.subscriptions)]
            if self._topics:
                if any(t in " ".join(keys).lower() for t in self._topics):
                    return client
            elif any((str(client.url), k) not in self._before for k in keys):
                return client
        return None

    async def _round_trip(self, client: Any, timeout: float) -> bool:
        before = getattr(client, "lastPong", None)
        try:
            await asyncio.sleep(0.01)  # let ccxt's send of the SUBSCRIBE go out first
            await client.connection.ping()
        except Exception:
            return False
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, min(timeout, 2.0))
        while loop.time() < end:
            if getattr(client, "lastPong", None) != before:
                return True
            await asyncio.sleep(0.005)
        return False
