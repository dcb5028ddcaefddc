"""The benchmarks' shared timing helpers: percentiles, sequential timers, per-call micro-timings, free ports.

* ``pct(samples, p)``: the p-quantile of ``samples`` (nearest rank, ``p`` in 0..1), unsorted input welcome.
* ``p50_p99(samples)``: both at once.
* ``timed(fn, n)`` / ``atimed(fn, n)``: the seconds each of ``n`` sequential calls ``fn(i)`` took (sync/async).
* ``per_call_us(fn, batch, rounds)``: (p50, p99) in microseconds of the per-call mean over ``rounds`` batches of
  ``batch`` calls, after one warm-up batch: the timer's own cost is spread over a batch, so calls of a
  microsecond or less are measured fairly.
* ``free_port()``: a free TCP port on 127.0.0.1 for a server a benchmark starts.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable, Sequence


def pct(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def p50_p99(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return ordered[n // 2], ordered[min(n - 1, int(n * 0.99))]


def timed(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
    return out


async def atimed(fn: Callable[[int], Awaitable[object]], n: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        await fn(i)
        out.append(clock() - t0)
    return out


def per_call_us(fn: Callable[[], object], batch: int = 200, rounds: int = 200) -> tuple[float, float]:
    for _ in range(batch):
        fn()
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        means.append((time.perf_counter_ns() - t0) / batch / 1000)
    return p50_p99(means)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
