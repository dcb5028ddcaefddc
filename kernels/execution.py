"""Execution algorithms: split a parent order into child quantities (and times) that sum exactly.

Every splitter works in whole lots (``lot`` = the instrument's lot step in quantity units), never
produces a child below ``min_qty`` unless the parent itself is smaller (a too-small remainder is
merged into another child), and returns children whose sum is exactly the parent quantity; a parent
that is not a whole number of lots is refused (ValueError).

* ``split_fixed``: chunks of a fixed size, the remainder last.
* ``split_percent``: chunks of a percentage (ppm) of the parent.
* ``allocate``: proportional to integer weights by the largest-remainder method (ties go to the
  lower index) -- the core of the three below.
* ``split_liquidity``: across venues in proportion to each book's depth within a limit price.
* ``split_twap``: equal slices at evenly spaced times.
* ``split_vwap``: slices proportional to a volume profile.
* ``split_iceberg``: visible clips of a display size, optionally varied by +/- a percentage with a
  seeded xorshift generator (deterministic, so a replay or a backtest gives the same clips).

These compile on first use (``cache=True``: once per machine); they are not on the per-order path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.book import depth
from kernels.fixed import PPM, mul_div_floor, mul_div_rem

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
MAX_CHILDREN = 1_000_000  # a split into more children than this is refused (ValueError)


@njit(cache=True)
def _lots(total, lot):
    if lot <= 0:
        raise ValueError("lot step must be positive")
    if total < 0 or total % lot != 0:
        raise ValueError("parent quantity must be a non-negative whole number of lots")
    return total // lot


@njit(cache=True)
def _min_lots(min_qty, lot):
    """The smallest whole number of lots (at least one) that is >= min_qty."""
    return max(1, (min_qty + lot - 1) // lot)


@njit(cache=True)
def _merge_small(children, min_qty):
    """Move every child below min_qty into the largest child (lowest index on ties)."""
    n = children.shape[0]
    if n == 0:
        return children
    big = 0
    for k in range(1, n):
        if children[k] > children[big]:
            big = k
    for k in range(n):
        if k != big and 0 < children[k] < min_qty:
            children[big] += children[k]
            children[k] = 0
    return children


@njit(cache=True)
def allocate(total, weights, lot, min_qty):
    """Split ``total`` in proportion to int64 ``weights`` (largest remainder; all-zero weights count
    as equal). Returns one child per weight, zeros included."""
    n_lots = _lots(total, lot)
    n = weights.shape[0]
    out = np.zeros(n, dtype=np.int64)
    if n == 0 or n_lots == 0:
        if n == 0 and n_lots > 0:
            raise ValueError("no weights to allocate over")
        return out
    w = weights.copy()
    wsum = 0
    for k in range(n):
        if w[k] < 0:
            raise ValueError("weights must be non-negative")
        wsum += w[k]
    if wsum == 0:
        w[:] = 1
        wsum = n
    rem = np.zeros(n, dtype=np.int64)
    given = 0
    for k in range(n):
        q, r = mul_div_rem(n_lots, w[k], wsum)
        out[k] = q
        rem[k] = r
        given += q
    order = np.argsort(-rem, kind="mergesort")  # stable: ties keep the lower index first
    for j in range(n_lots - given):
        out[order[j]] += 1
    for k in range(n):
        out[k] *= lot
    return _merge_small(out, min_qty)


@njit(cache=True)
def split_fixed(total, chunk, lot, min_qty):
    """Children of ``chunk`` (rounded down to whole lots, raised to min_qty), the remainder last."""
    _lots(total, lot)
    size = max(_min_lots(min_qty, lot) * lot, chunk - chunk % lot)
    n_full = total // size
    if n_full >= MAX_CHILDREN:
        raise ValueError("split would make more than MAX_CHILDREN children: use a bigger chunk")
    rest = total - n_full * size
    n = n_full + (1 if rest > 0 else 0)
    out = np.full(n, size, dtype=np.int64)
    if rest > 0:
        if rest < min_qty and n_full > 0:
            out = out[:n_full].copy()
            out[n_full - 1] += rest
        else:
            out[n - 1] = rest
    return out


@njit(cache=True)
def split_percent(total, pct_ppm, lot, min_qty):
    """Children of ``pct_ppm`` parts per million of the parent each (then as ``split_fixed``)."""
    return split_fixed(total, mul_div_floor(total, pct_ppm, PPM), lot, min_qty)


@njit(cache=True)
def _nonzero(times, qtys):
    keep = qtys > 0
    return times[keep].copy(), qtys[keep].copy()


@njit(cache=True)
def split_twap(total, n_slices, start_ns, end_ns, lot, min_qty):
    """(times, quantities): equal slices at start + k * (end - start) / n; empty slices dropped."""
    if n_slices <= 0:
        raise ValueError("need at least one slice")
    times = np.empty(n_slices, dtype=np.int64)
    for k in range(n_slices):
        times[k] = start_ns + mul_div_floor(end_ns - start_ns, k, n_slices)
    return _nonzero(times, allocate(total, np.ones(n_slices, dtype=np.int64), lot, min_qty))


@njit(cache=True)
def split_vwap(total, profile, bucket_times, lot, min_qty):
    """(times, quantities): slices proportional to the volume profile; empty buckets dropped."""
    return _nonzero(bucket_times.copy(), allocate(total, profile, lot, min_qty))


@njit(cache=True)
def split_liquidity(total, lv, meta, books, side, limit_price, lot, min_qty):
    """Quantity per venue book, proportional to each book's depth on ``side`` (ASK to buy, BID to
    sell) at prices at least as good as ``limit_price`` (<= 0: all levels)."""
    weights = np.empty(books.shape[0], dtype=np.int64)
    for v in range(books.shape[0]):
        weights[v] = depth(lv, meta, books[v], side, 0, limit_price)
    return allocate(total, weights, lot, min_qty)


@njit(cache=True)
def xorshift(state):
    """One step of xorshift64* (state must be non-zero): returns (new state, output)."""
    x = state
    x ^= x >> np.uint64(12)
    x ^= (x << np.uint64(25)) & _MASK
    x ^= x >> np.uint64(27)
    return x, (x * np.uint64(2685821657736338717)) & _MASK


@njit(cache=True)
def split_iceberg(total, display, variance_ppm, seed, lot, min_qty):
    """Visible clips of ``display`` (whole lots, at least min_qty), each varied by up to
    +/- variance_ppm of it but never below min_qty; a too-small last clip joins the one before.
    ``seed`` (0 <= seed < 2**63) makes the variation reproducible."""
    n_lots = _lots(total, lot)
    low = _min_lots(min_qty, lot)
    base = max(low, display // lot)
    if n_lots // base >= MAX_CHILDREN:
        raise ValueError("split would make more than MAX_CHILDREN children: use a bigger display size")
    spread = mul_div_floor(base, min(variance_ppm, PPM - 1), PPM)
    out = np.empty(min(n_lots, MAX_CHILDREN * 2), dtype=np.int64)
    state = np.uint64(seed) | np.uint64(1)
    left = n_lots
    n = 0
    while left > 0:
        clip = base
        if spread > 0:
            state, r = xorshift(state)
            clip = base - spread + np.int64(r % np.uint64(2 * spread + 1))
        clip = min(max(clip, low), left)
        out[n] = clip * lot
        left -= clip
        n += 1
    out = out[:n].copy()
    if n > 1 and out[n - 1] < min_qty:
        out[n - 2] += out[n - 1]
        out = out[: n - 1].copy()
    return out
