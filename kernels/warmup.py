"""Compile (or load from Numba's disk cache) every lazily compiled kernel before the first trade.

The hot-path kernels (risk checks, fills, marks, book diffs) have explicit signatures and compile at
import. The others (book queries and snapshots, routing, splitting, statistics, reports) compile on
their first call; ``warm_up()`` makes that first call on tiny inputs of the exact types the daemon
uses, so a process that calls it at start never compiles while trading. It returns the seconds spent
per module (about 1 s in total when the cache is warm, tens of seconds the first time on a machine).
"""

from __future__ import annotations

import time

import numpy as np

from kernels import book, execution, positions, routing, stats
from kernels.codes import BUY
from kernels.state import KernelState


def warm_up() -> dict[str, float]:
    spent: dict[str, float] = {}
    i64 = np.zeros(2, dtype=np.int64)
    one = np.ones(1, dtype=np.int64)

    t = time.perf_counter()
    lv, meta = book.new_books(2, 4)
    book.apply_snapshot(lv, meta, 0, one * 99, one, one * 101, one, 1)
    book.best(lv, meta, 0, book.BID)
    book.levels(lv, meta, 0, book.ASK)
    book.depth(lv, meta, 0, book.BID, 0, 0)
    book.fill_cost(lv, meta, 0, book.ASK, 1, 0)
    book.average_fill_price(lv, meta, 0, book.ASK, 1)
    book.consolidate(
        lv, meta, np.arange(2, dtype=np.int64), book.BID, i64.copy(), i64.copy(), np.zeros((2, 2), dtype=np.int64)
    )
    spent["book"] = time.perf_counter() - t

    t = time.perf_counter()
    books = np.arange(2, dtype=np.int64)
    routing.fee_tier(one, one, 1)
    routing.route_order(lv, meta, BUY, 1, 0, 1, books, i64, i64, i64 + 1, i64.copy(), i64.copy(), i64.copy())
    routing.arbitrage(lv, meta, books, i64, 1)
    spent["routing"] = time.perf_counter() - t

    t = time.perf_counter()
    execution.split_fixed(10, 3, 1, 0)
    execution.split_percent(10, 100_000, 1, 0)
    execution.split_twap(10, 2, 0, 10, 1, 0)
    execution.split_vwap(10, one, one, 1, 0)
    execution.split_liquidity(10, lv, meta, books, book.ASK, 0, 1, 0)
    execution.split_iceberg(10, 3, 100_000, 7, 1, 0)
    spent["execution"] = time.perf_counter() - t

    t = time.perf_counter()
    ks = KernelState(1, 1)
    positions.summary(ks)
    positions.recompute_caches(*ks.blocks)
    spent["positions"] = time.perf_counter() - t

    t = time.perf_counter()
    f = np.ones(4)
    stats.historical_var(stats.simple_returns(f), 0.95)
    stats.volatility(f, 365.0)
    stats.drawdown(f)
    stats.size_fixed_fraction(10**10, 10_000, 100, 90, 1, 1)
    stats.size_kelly(10**10, 0.6, 1.5, 0.5, 100, 1, 1)
    stats.size_vol_target(10**10, 0.2, 0.6, 100, 1, 1)
    stats.trailing_stops(i64 + 100, BUY, 10_000, 1)
    stats.time_stop(0, 1, 2)
    spent["stats"] = time.perf_counter() - t
    return spent
