"""L2 order books: snapshots, sequenced diffs with gap detection, queries, and a consolidated book.

Many books live in two arrays (one book per venue x instrument, numbered by the caller):

* ``lv[b, side, field, k]``: side BID (0) or ASK (1), field PX (0) or QTY (1), level k. Each side is
  sorted from worst to best, so the best level is the last one (``k = n - 1``) and the frequent
  updates near the top of the book move few levels.
* ``meta[b, M_*]``: level counts, last applied update id, sync state, gap and update counters.

Sequencing follows Binance: after a snapshot with ``lastUpdateId = L``, diffs whose last id is <= L
are stale and skipped; the first applied diff must span L + 1 (``first_id <= L + 1``); each later
diff must start right after the previous one (``first_id == last + 1``, Spot) or name it
(``prev_id == last``, USD-M futures ``pu``; pass ``prev_id = -1`` to use the Spot rule). A gap marks the
book as needing a new snapshot; every diff is refused until one arrives.

A level update with quantity 0 deletes the level. Depth is bounded by the capacity of ``lv``; a new
level worse than the worst kept one on a full side is dropped, as exchanges' limited-depth books do.
An update on one side removes the levels it crosses on the other side (they are stale), so the
book is never crossed.

Prices and quantities are kernel units (int64); ``fill_cost`` returns the exact sum of price x qty.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.pointers import item_pointer

BID = 0
ASK = 1
PX = 0
QTY = 1

M_NBID, M_NASK, M_LAST_ID, M_STATE, M_GAPS, M_UPDATES = range(6)
M_FIELDS = 6

# book sync state (meta[b, M_STATE]) and diff results
EMPTY = 0  # no snapshot yet
SNAPSHOT = 1  # snapshot applied, waiting for the first diff that spans it
SYNCED = 2
NEEDS_SNAPSHOT = 3  # a gap was seen

APPLIED = 0
STALE = 1
GAP = 2
NOT_READY = 3  # no snapshot yet, or waiting for a new one after a gap
DIFF_RESULTS = {
    APPLIED: "applied",
    STALE: "stale (already in the snapshot)",
    GAP: "sequence gap: resync",
    NOT_READY: "book needs a snapshot",
}

_LV = "int64[:, :, :, ::1]"
_META = "int64[:, ::1]"


def new_books(n_books: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrays for n_books books of at most ``depth`` levels per side."""
    return (np.zeros((n_books, 2, 2, depth), dtype=np.int64), np.zeros((n_books, M_FIELDS), dtype=np.int64))


@njit(cache=True, inline="always")
def _better(side, p1, p2):
    """True when price p1 is better than p2 on this side (higher bid, lower ask)."""
    return p1 > p2 if side == BID else p1 < p2


@njit(cache=True, inline="always")
def _count_field(side):
    return M_NBID if side == BID else M_NASK


@njit(cache=True, inline="always")
def _search(px, side, n, price):
    """Index of the first level (from worst) that is not worse than price: 0..n (``px``: the side's prices)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if _better(side, price, px[mid]):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _update(px, qt, n, cap, opx, m, side, price, qty):
    """One level update on a side of ``n`` levels (pointers ``px``/``qt``, capacity ``cap``) whose other side has
    ``m`` levels (prices ``opx``): the sides' new counts. Pointers, not arrays: see ``kernels.pointers``."""
    k = _search(px, side, n, price)
    exists = k < n and px[k] == price
    if qty == 0:
        if exists:
            for j in range(k, n - 1):
                px[j] = px[j + 1]
                qt[j] = qt[j + 1]
            n -= 1
        return n, m
    if exists:
        qt[k] = qty
    elif n < cap:
        for j in range(n, k, -1):
            px[j] = px[j - 1]
            qt[j] = qt[j - 1]
        px[k] = price
        qt[k] = qty
        n += 1
    elif k > 0:  # full: drop the worst level, the new one goes just below position k
        for j in range(0, k - 1):
            px[j] = px[j + 1]
            qt[j] = qt[j + 1]
        px[k - 1] = price
        qt[k - 1] = qty
    # else: full and worse than every kept level: dropped
    # uncross: levels on the other side at or through this price are stale
    other = ASK if side == BID else BID
    while m > 0 and not _better(other, price, opx[m - 1]):
        m -= 1
    return n, m


@njit(cache=True, inline="always")
def _pointers(lv, b):
    """Book b's rows as pointers: bid prices, bid quantities, ask prices, ask quantities."""
    return (
        item_pointer(lv, (b, BID, PX, 0)), item_pointer(lv, (b, BID, QTY, 0)),
        item_pointer(lv, (b, ASK, PX, 0)), item_pointer(lv, (b, ASK, QTY, 0)),
    )  # fmt: skip


@njit(cache=True, inline="always")
def _updates(lv, meta, b, sides, prices, qtys, lo, hi):
    """Level updates ``lo:hi`` of the arrays, in order, on book b (its counts kept in registers meanwhile)."""
    cap = lv.shape[3]
    bpx, bqt, apx, aqt = _pointers(lv, b)
    nb, na = meta[b, M_NBID], meta[b, M_NASK]
    for k in range(lo, hi):
        if sides[k] == BID:
            nb, na = _update(bpx, bqt, nb, cap, apx, na, BID, prices[k], qtys[k])
        else:
            na, nb = _update(apx, aqt, na, cap, bpx, nb, ASK, prices[k], qtys[k])
    meta[b, M_NBID], meta[b, M_NASK] = nb, na


@njit(cache=True)
def _set_level(lv, meta, b, side, price, qty):
    cap = lv.shape[3]
    bpx, bqt, apx, aqt = _pointers(lv, b)
    nb, na = meta[b, M_NBID], meta[b, M_NASK]
    if side == BID:
        nb, na = _update(bpx, bqt, nb, cap, apx, na, BID, price, qty)
    else:
        na, nb = _update(apx, aqt, na, cap, bpx, nb, ASK, price, qty)
    meta[b, M_NBID], meta[b, M_NASK] = nb, na


@njit(cache=True)
def apply_snapshot(lv, meta, b, bid_px, bid_qty, ask_px, ask_qty, last_id):
    """Replace book b with a snapshot (levels in any order; zero quantities ignored)."""
    meta[b, M_NBID] = 0
    meta[b, M_NASK] = 0
    for side, px, qt in ((BID, bid_px, bid_qty), (ASK, ask_px, ask_qty)):
        for k in range(px.shape[0]):
            if qt[k] > 0:
                _set_level(lv, meta, b, side, px[k], qt[k])
    meta[b, M_LAST_ID] = last_id
    meta[b, M_STATE] = SNAPSHOT


@njit(cache=True, inline="always")
def _sequence(meta, b, first_id, last_id, prev_id):
    state = meta[b, M_STATE]
    if state == EMPTY or state == NEEDS_SNAPSHOT:
        return NOT_READY
    last = meta[b, M_LAST_ID]
    if last_id <= last:
        return STALE
    if state == SNAPSHOT:
        ok = first_id <= last + 1
    elif prev_id >= 0:
        ok = prev_id == last
    else:
        ok = first_id == last + 1
    if not ok:
        meta[b, M_STATE] = NEEDS_SNAPSHOT
        meta[b, M_GAPS] += 1
        return GAP
    return APPLIED


@njit(cache=True)
def apply_levels(lv, meta, b, first_id, last_id, prev_id, sides, prices, qtys, n):
    """``apply_diff`` of the first ``n`` level updates, for compiled callers: ``sides``/``prices``/``qtys`` may be
    arrays or pointers (``kernels.pointers``), which spares a caller the reference counting of array views."""
    r = _sequence(meta, b, first_id, last_id, prev_id)
    if r != APPLIED:
        return r
    _updates(lv, meta, b, sides, prices, qtys, 0, n)
    meta[b, M_LAST_ID] = last_id
    meta[b, M_STATE] = SYNCED
    meta[b, M_UPDATES] += n
    return APPLIED


@njit(f"int64({_LV}, {_META}, int64, int64, int64, int64, int64[::1], int64[::1], int64[::1])", cache=True)
def apply_diff(lv, meta, b, first_id, last_id, prev_id, sides, prices, qtys):
    """Apply one diff event (its level updates in order). Returns APPLIED, STALE, GAP or NOT_READY."""
    return apply_levels(lv, meta, b, first_id, last_id, prev_id, sides, prices, qtys, sides.shape[0])


@njit(
    f"int64({_LV}, {_META}, int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], "
    "int64[::1], int64[::1], int64[::1], int64[::1])",
    cache=True,
)
def apply_diffs(lv, meta, books, first_ids, last_ids, prev_ids, offsets, sides, prices, qtys, out):
    """Apply many events: event e is book books[e] with updates offsets[e]:offsets[e+1].
    Writes each result to out[e]; returns the number of level updates applied."""
    applied = 0
    for e in range(books.shape[0]):
        b = books[e]
        r = _sequence(meta, b, first_ids[e], last_ids[e], prev_ids[e])
        out[e] = r
        if r != APPLIED:
            continue
        _updates(lv, meta, b, sides, prices, qtys, offsets[e], offsets[e + 1])
        meta[b, M_LAST_ID] = last_ids[e]
        meta[b, M_STATE] = SYNCED
        n = offsets[e + 1] - offsets[e]
        meta[b, M_UPDATES] += n
        applied += n
    return applied


@njit(cache=True)
def best(lv, meta, b, side):
    """(price, qty) of the best level on a side, or (0, 0) when the side is empty."""
    n = meta[b, _count_field(side)]
    if n == 0:
        return np.int64(0), np.int64(0)
    return lv[b, side, PX, n - 1], lv[b, side, QTY, n - 1]


@njit(cache=True)
def levels(lv, meta, b, side):
    """The side's levels best first, as (prices, quantities) copies."""
    n = meta[b, _count_field(side)]
    px = np.empty(n, dtype=np.int64)
    qt = np.empty(n, dtype=np.int64)
    for j in range(n):
        px[j] = lv[b, side, PX, n - 1 - j]
        qt[j] = lv[b, side, QTY, n - 1 - j]
    return px, qt


@njit(cache=True)
def depth(lv, meta, b, side, n_levels, limit_price):
    """Quantity in the best ``n_levels`` levels (<= 0: all) at prices at least as good as
    ``limit_price`` (<= 0: any price)."""
    n = meta[b, _count_field(side)]
    total = 0
    for j in range(n):
        if n_levels > 0 and j >= n_levels:
            break
        p = lv[b, side, PX, n - 1 - j]
        if limit_price > 0 and _better(side, limit_price, p):
            break
        total += lv[b, side, QTY, n - 1 - j]
    return total


@njit(cache=True)
def fill_cost(lv, meta, b, side, qty, limit_price):
    """Walk ``side`` (ASK for a buy, BID for a sell) to fill ``qty`` at prices no worse than
    ``limit_price`` (<= 0: any). Returns (filled qty, sum of price x qty, last price touched)."""
    n = meta[b, _count_field(side)]
    filled = 0
    cost = 0
    last = 0
    for j in range(n):
        if filled >= qty:
            break
        p = lv[b, side, PX, n - 1 - j]
        if limit_price > 0 and _better(side, limit_price, p):
            break
        take = min(qty - filled, lv[b, side, QTY, n - 1 - j])
        filled += take
        cost += take * p
        last = p
    return filled, cost, last


@njit(cache=True)
def average_fill_price(lv, meta, b, side, qty):
    """(average price, slippage against the best price in basis points, filled qty) for a market
    order of ``qty`` taking ``side``; slippage is positive when the average is worse than the best."""
    filled, cost, _ = fill_cost(lv, meta, b, side, qty, 0)
    if filled == 0:
        return np.nan, np.nan, filled
    avg = cost / filled
    top, _ = best(lv, meta, b, side)
    slip = (avg - top) / top * 1e4
    if side == BID:
        slip = -slip
    return avg, slip, filled


@njit(cache=True)
def consolidate(lv, meta, books, side, out_px, out_qty, out_venue_qty):
    """Merge one side of several books (one per venue, same price units) best first.

    Writes up to out_px.shape[0] levels: price, total quantity and out_venue_qty[level, venue] the
    quantity each book contributes; returns the number of levels written."""
    nv = books.shape[0]
    pos = np.empty(nv, dtype=np.int64)  # next level (counting down from best) per book
    for v in range(nv):
        pos[v] = meta[books[v], _count_field(side)] - 1
    out_venue_qty[:, :] = 0
    cap = out_px.shape[0]
    k = 0
    while k < cap:
        found = False
        price = np.int64(0)
        for v in range(nv):
            if pos[v] >= 0:
                p = lv[books[v], side, PX, pos[v]]
                if not found or _better(side, p, price):
                    price = p
                    found = True
        if not found:
            break
        total = 0
        for v in range(nv):
            if pos[v] >= 0 and lv[books[v], side, PX, pos[v]] == price:
                q = lv[books[v], side, QTY, pos[v]]
                out_venue_qty[k, v] = q
                total += q
                pos[v] -= 1
        out_px[k] = price
        out_qty[k] = total
        k += 1
    return k


def is_crossed(lv: np.ndarray, meta: np.ndarray, b: int) -> bool:
    """True when the best bid is at or above the best ask (never after a kernel update)."""
    bid, _ = best(lv, meta, b, BID)
    ask, _ = best(lv, meta, b, ASK)
    return meta[b, M_NBID] > 0 and meta[b, M_NASK] > 0 and bid >= ask
