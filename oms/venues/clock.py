"""The venue's clock: the server-time offset, measured, refreshed, and resynced after a -1021.

``ServerClock`` implements ``oms.venues.TimeSync``. ``resync()`` asks the venue for its time a few times
(``samples``) and keeps the sample with the shortest round trip: offset = server time - the midpoint of the
request. ``server_time_ms()`` is the local clock plus that offset (what a connector signs as ``timestamp``);
``ensure_fresh()`` resyncs when the last measurement is older than ``refresh_s``, and ``refresh_forever()``
(a task) keeps it measured in the background. ``with_resync`` is the -1021
rule: on ``ClockSkew`` the clock resyncs, and only an idempotent call is retried (once); a placement is not.

One clock serves every account of an exchange market (the factory shares it). ``fetch`` is the venue's
time call (``ExecutionClient.server_time_ns``); it may be bound after construction (``bind``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from oms.venues.errors import ClockSkew

log = logging.getLogger(__name__)
T = TypeVar("T")
Fetch = Callable[[], Awaitable[int]]


class ServerClock:
    def __init__(
        self,
        fetch: Fetch | None = None,
        *,
        name: str = "",
        refresh_s: float = 300.0,
        samples: int = 3,
        now_ns: Callable[[], int] = time.time_ns,
    ):
        self.fetch = fetch
        self.name = name
        self.refresh_s = refresh_s
        self.samples = max(1, samples)
        self.now_ns = now_ns
        self.offset_ns = 0
        self.rtt_ns = 0
        self.measured_ns = 0  # local time of the last measurement (0: never)
        self.resyncs = 0
        self.failures = 0
        self._lock = asyncio.Lock()

    def bind(self, fetch: Fetch) -> None:
        self.fetch = fetch

    def server_time_ms(self) -> int:
        return (self.now_ns() + self.offset_ns) // 1_000_000

    def server_time_ns(self) -> int:
        return self.now_ns() + self.offset_ns

    @property
    def stale(self) -> bool:
        return self.measured_ns == 0 or self.now_ns() - self.measured_ns > self.refresh_s * 1e9

    async def resync(self) -> None:
        if self.fetch is None:
            raise RuntimeError(f"server clock {self.name}: no time source bound")
        async with self._lock:
            best: tuple[int, int] | None = None
            for _ in range(self.samples):
                t0 = self.now_ns()
                server = int(await self.fetch())
                t1 = self.now_ns()
                rtt, offset = t1 - t0, server - (t0 + t1) // 2
                if best is None or rtt < best[0]:
                    best = (rtt, offset)
            assert best is not None
            self.rtt_ns, self.offset_ns = best
            self.measured_ns = self.now_ns()
            self.resyncs += 1
            log.debug("server clock %s: offset %.3f ms, rtt %.3f ms", self.name, best[1] / 1e6, best[0] / 1e6)

    async def ensure_fresh(self) -> None:
        if self.stale:
            await self.resync()

    async def refresh_forever(self, *, retry_s: float = 5.0) -> None:
        """Resync every ``refresh_s`` until cancelled (run it as a task); a failed measurement is logged and
        retried after ``retry_s`` while the last offset stays in use."""
        while True:
            age_s = (self.now_ns() - self.measured_ns) / 1e9
            due = 0.0 if self.measured_ns == 0 else max(0.0, self.refresh_s - age_s)
            await asyncio.sleep(due)
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the venue is unreachable now: keep the old offset, try again soon
                self.failures += 1
                log.warning("server clock %s: resync failed (%r); keeping offset %.3f ms", self.name, exc,
                            self.offset_ns / 1e6)  # fmt: skip
                await asyncio.sleep(retry_s)

    async def with_resync(self, call: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """``await call()``; on ``ClockSkew`` resync, then retry once if ``idempotent``, else re-raise."""
        try:
            return await call()
        except ClockSkew:
            await self.resync()
            if not idempotent:
                raise
            return await call()


async def measure(fetch: Fetch, samples: int = 3) -> ServerClock:
    """A clock measured once from ``fetch`` (for scripts and tests)."""
    clock = ServerClock(fetch, samples=samples)
    await clock.resync()
    return clock
