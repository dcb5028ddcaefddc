"""Kernel benchmarks: latency percentiles, throughput, and speed-up over the plain-Python references.

Run with ``make bench`` (``pytest -q -s tests/bench``). Each benchmark prints one row; targets from
the issue are printed next to the figures and a miss is a warning, never a failure (a slow or busy
machine must not turn CI red). Policy:

* latency: one call from Python at a time, ``time.perf_counter_ns`` around each call, GC off,
  p50/p99 over 100,000 calls after 1,000 warm-up calls;
* throughput: the batch kernel over 1-2 million items, best of 3 runs (this machine is shared:
  the best run is the one least disturbed by neighbours);
* speed-up: the same operations through the reference in the same run (fewer of them: it is slow),
  rate against rate. The risk reference recomputes exposure and equity from positions on every
  check; the kernel reads caches, so the ratio includes that algorithmic difference.
* state: 256 accounts x 1,024 instruments allocated. "active" traffic uses 16 instruments per
  account (4,096 position slots, the realistic case); "worst" spreads every call uniformly over all
  262,144 (account, instrument) pairs, so nearly every access misses the CPU caches.
"""

from __future__ import annotations

import functools
import gc
import time
import warnings

import numpy as np
import pytest
from numba import njit

from kernels import book as B
from kernels import codes as C
from kernels.positions import apply_fill, apply_fills, new_fills, transfer, update_mark
from kernels.reference import positions as ref_positions
from kernels.reference import risk as ref_risk
from kernels.reference.book import Book
from kernels.reference.model import World
from kernels.risk import RiskGate, check_orders, new_orders
from kernels.state import A_CASH, A_COST_PERP, A_VALUE, AccountIndex, KernelState

pytestmark = pytest.mark.bench

N_ACCOUNTS, N_INSTRUMENTS, ACTIVE = 256, 1024, 16
MARK = 1_000_000  # price units
USDT = 10**8


def row(name, p50=None, p99=None, rate=None, ref_rate=None, target=""):
    cells = [f"{name:<38}"]
    cells.append(f"p50 {p50 / 1000:7.2f} us  p99 {p99 / 1000:7.2f} us" if p50 is not None else " " * 30)
    cells.append(f"{rate / 1e6:8.2f} M/s" if rate else " " * 12)
    cells.append(f"x{rate / ref_rate:9.0f} vs reference" if ref_rate else " " * 22)
    print("  ".join(cells) + (f"  target: {target}" if target else ""))


def warn_if(condition, message):
    if condition:
        warnings.warn(f"benchmark below target: {message}", stacklevel=2)


def latencies(call, args_list, warmup=1000):
    for args in args_list[:warmup]:
        call(*args)
    out = np.empty(len(args_list), dtype=np.int64)
    pc = time.perf_counter_ns
    gc.disable()
    try:
        for k, args in enumerate(args_list):
            t = pc()
            call(*args)
            out[k] = pc() - t
    finally:
        gc.enable()
    return float(np.percentile(out, 50)), float(np.percentile(out, 99))


def best_rate(run, n, repeats=3, reset=None):
    best = 0.0
    for _ in range(repeats):
        if reset:
            reset()
        t = time.perf_counter()
        run()
        best = max(best, n / (time.perf_counter() - t))
    return best


def desk_state():
    """256 accounts with cash, liberal limits and a few positions, marks on every instrument."""
    ks = KernelState(N_ACCOUNTS, N_INSTRUMENTS)
    for i in range(N_INSTRUMENTS):
        ks.set_raw_instrument(i, kind=C.PERP if i % 2 else C.SPOT, mult=100, tick=1, lot=1, max_qty=10**9)
        update_mark(*ks.blocks, i, MARK)
    for a in range(N_ACCOUNTS):
        transfer(*ks.blocks, a, 10**7 * USDT)
        ks.set_limits(
            a,
            max_order_notional=10**6 * USDT,
            max_position_notional=10**9 * USDT,
            max_gross_exposure=10**10 * USDT,
            max_leverage_ppm=50_000_000,
            max_daily_loss=10**6 * USDT,
            max_drawdown_ppm=500_000,
            price_band_ppm=100_000,
        )
        for k in range(4):
            apply_fill(*ks.blocks, a, (a + k * 7) % ACTIVE, C.BUY, C.POS_BOTH, MARK, 100, 0)
    return ks


def random_orders(n, rng, worst=False):
    accounts = rng.integers(0, N_ACCOUNTS, n)
    instruments = rng.integers(0, N_INSTRUMENTS if worst else ACTIVE, n)
    sides = rng.choice(np.array([C.BUY, C.SELL]), n)
    prices = MARK + rng.integers(-1000, 1000, n)
    qtys = rng.integers(1, 50, n)
    return accounts, instruments, sides, prices, qtys


def test_risk_check(capsys):
    ks = desk_state()
    gate = RiskGate(ks.blocks)
    rng = np.random.default_rng(1)
    a, i, s, p, q = random_orders(100_000, rng)
    args = [(int(a[k]), int(i[k]), int(s[k]), C.LIMIT, int(p[k]), int(q[k]), 0, C.POS_BOTH, k) for k in range(len(a))]
    p50, p99 = latencies(gate.check, args)
    world = World.from_state(ks)
    ref_args = args[:300]
    t = time.perf_counter()
    for x in ref_args:
        ref_risk.check_order(world, *x)
    ref_rate = len(ref_args) / (time.perf_counter() - t)
    same = [(x[0], 0, *x[2:]) for x in args[:20_000]]
    p50_same, p99_same = latencies(gate.check, same, warmup=100)

    def batch(worst):
        n = 1_000_000
        orders = new_orders(n)
        orders[0], orders[1], orders[2], orders[4], orders[5] = random_orders(n, rng, worst)
        orders[3] = C.LIMIT
        orders[8] = np.arange(n)
        out = np.empty(n, dtype=np.int64)
        fresh = desk_state()
        saved = [blk.copy() for blk in fresh.blocks]

        def reset():
            for blk, copy in zip(fresh.blocks, saved, strict=True):
                blk[...] = copy

        rate = best_rate(lambda: check_orders(*fresh.blocks, orders, out), n, reset=reset)
        assert np.count_nonzero(out == C.OK) > n // 2
        return rate

    active, worst = batch(False), batch(True)
    with capsys.disabled():
        print()
        row("risk check, one order from Python", p50, p99, 1e9 / p50, ref_rate, "p50 <= 2 us, p99 <= 10 us")
        row("risk check, batch (active set)", rate=active, ref_rate=ref_rate, target=">= 5 M/s")
        row("risk check, batch (worst: 262k slots)", rate=worst, ref_rate=ref_rate)
        row("  same account every call (for compare)", p50_same, p99_same)
    warn_if(p50 > 2000 or p99 > 10_000, f"risk check p50 {p50:.0f} ns, p99 {p99:.0f} ns")
    warn_if(active < 5e6, f"risk batch {active / 1e6:.2f} M/s")


def test_fill_application(capsys):
    rng = np.random.default_rng(2)

    def fills(n, worst):
        f = new_fills(n)
        f[0] = rng.integers(0, N_ACCOUNTS, n)
        f[1] = rng.integers(0, N_INSTRUMENTS if worst else ACTIVE, n)
        f[2] = rng.choice(np.array([C.BUY, C.SELL]), n)
        f[4] = MARK + rng.integers(-1000, 1000, n)
        f[5] = rng.integers(1, 50, n)
        f[6] = rng.integers(0, 1000, n)
        return f

    def rate(worst):
        n = 2_000_000
        f = fills(n, worst)
        ks = desk_state()
        out = np.empty(n, dtype=np.int64)
        r = best_rate(lambda: apply_fills(*ks.blocks, f, out), n)
        assert (out == C.OK).all()
        return r

    active, worst = rate(False), rate(True)
    ks = desk_state()
    world = World.from_state(ks)
    sample = fills(20_000, False)
    t = time.perf_counter()
    for k in range(sample.shape[1]):
        ref_positions.apply_fill(world, *(int(x) for x in sample[:, k]))
    ref_rate = sample.shape[1] / (time.perf_counter() - t)
    gate_args = [tuple(int(x) for x in sample[:, k]) for k in range(sample.shape[1])]
    p50, p99 = latencies(functools.partial(apply_fill, *ks.blocks), gate_args * 5)
    with capsys.disabled():
        row("fill, one from Python", p50, p99, 1e9 / p50, ref_rate)
        row("fills, batch (active set)", rate=active, ref_rate=ref_rate, target=">= 10 M/s")
        row("fills, batch (worst: 262k slots)", rate=worst, ref_rate=ref_rate)
    warn_if(active < 10e6, f"fills batch {active / 1e6:.2f} M/s")


def test_book_diffs(capsys):
    n_books, depth, n_events, per_event = 64, 1000, 200_000, 10
    rng = np.random.default_rng(3)
    lv, meta = B.new_books(n_books, depth)
    refs = [Book(depth) for _ in range(n_books)]
    mid = 100_000
    snap_b = np.arange(mid - 500, mid, dtype=np.int64)
    snap_a = np.arange(mid + 1, mid + 501, dtype=np.int64)
    ones = np.full(500, 10, dtype=np.int64)
    for b in range(n_books):
        B.apply_snapshot(lv, meta, b, snap_b, ones, snap_a, ones, 0)
        refs[b].snapshot(
            list(zip(snap_b.tolist(), ones.tolist(), strict=True)),
            list(zip(snap_a.tolist(), ones.tolist(), strict=True)),
            0,
        )
    saved = (lv.copy(), meta.copy())
    books = rng.integers(0, n_books, n_events)
    last = np.zeros(n_books, dtype=np.int64)
    first_ids = np.empty(n_events, dtype=np.int64)
    last_ids = np.empty(n_events, dtype=np.int64)
    for e in range(n_events):  # in sequence per book
        first_ids[e] = last[books[e]] + 1
        last[books[e]] += per_event
        last_ids[e] = last[books[e]]
    n = n_events * per_event
    sides = rng.integers(0, 2, n)
    # updates cluster near the top of the book, as real ones do; 20% delete a level
    offset = np.abs(rng.normal(0, 20, n)).astype(np.int64)
    prices = np.where(sides == B.BID, mid - 1 - offset, mid + 1 + offset)
    qtys = np.where(rng.random(n) < 0.2, 0, rng.integers(1, 100, n))
    offsets = np.arange(0, n + 1, per_event, dtype=np.int64)
    prev = np.full(n_events, -1, dtype=np.int64)
    out = np.empty(n_events, dtype=np.int64)

    def reset():
        lv[...], meta[...] = saved

    rate = best_rate(
        lambda: B.apply_diffs(lv, meta, books, first_ids, last_ids, prev, offsets, sides, prices, qtys, out),
        n,
        reset=reset,
    )
    assert (out == B.APPLIED).all()
    k_ref = 5_000
    t = time.perf_counter()
    for e in range(k_ref):
        ups = list(
            zip(
                sides[offsets[e] : offsets[e + 1]].tolist(),
                prices[offsets[e] : offsets[e + 1]].tolist(),
                qtys[offsets[e] : offsets[e + 1]].tolist(),
                strict=True,
            )
        )
        refs[books[e]].diff(int(first_ids[e]), int(last_ids[e]), -1, ups)
    ref_rate = k_ref * per_event / (time.perf_counter() - t)
    with capsys.disabled():
        row(f"book level updates ({depth} levels/side)", rate=rate, ref_rate=ref_rate, target=">= 5 M/s")
    warn_if(rate < 5e6, f"book diffs {rate / 1e6:.2f} M level updates/s")


@njit(cache=True)
def equity_walk(acc, accounts):
    """Switch to each account in turn and read its equity: the cost of an account switch."""
    total = 0
    for a in accounts:
        total += acc[A_CASH, a] + acc[A_VALUE, a] - acc[A_COST_PERP, a]
    return total


def test_account_switch(capsys):
    ks = desk_state()
    names = AccountIndex([("binance", f"sub_{k}") for k in range(N_ACCOUNTS)])
    accounts = np.random.default_rng(4).integers(0, N_ACCOUNTS, 10_000_000)
    equity_walk(ks.acc, accounts[:10])
    t = time.perf_counter_ns()
    equity_walk(ks.acc, accounts)
    in_kernel = (time.perf_counter_ns() - t) / len(accounts)
    keys = [names.pairs[int(a)] for a in accounts[:100_000]]
    p50, p99 = latencies(names.__getitem__, [(k,) for k in keys])
    with capsys.disabled():
        print(
            f"{'account switch inside a kernel':<38}  {in_kernel:7.2f} ns per switch (index into acc)"
            f"   target: well under 1 us"
        )
        row("account name -> number (once, at edge)", p50, p99)
    warn_if(in_kernel > 100, f"account switch {in_kernel:.1f} ns")
