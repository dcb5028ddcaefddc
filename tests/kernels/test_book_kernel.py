"""Order book kernels against the reference book: sequencing, levels, depth, fills, consolidation."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels import book as K
from kernels.reference.book import Book, consolidate

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEPTH = 8

prices = st.integers(90, 110) | st.integers(1, 2**40)
level_updates = st.lists(
    st.tuples(st.sampled_from((K.BID, K.ASK)), prices, st.integers(0, 5) | st.integers(0, 2**40)), max_size=12
)


def arrays(updates):
    """[(side, price, qty), ...] -> (sides, prices, quantities) arrays."""
    a = np.array(updates, dtype=np.int64).reshape(-1, 3)
    return a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy()


def assert_same(lv, meta, b, ref: Book):
    for side in (K.BID, K.ASK):
        px, qt = K.levels(lv, meta, b, side)
        assert list(zip(px.tolist(), qt.tolist(), strict=True)) == ref.levels(side)
    assert (meta[b, K.M_LAST_ID], meta[b, K.M_STATE], meta[b, K.M_GAPS], meta[b, K.M_UPDATES]) == (
        ref.last_id,
        ref.state,
        ref.gaps,
        ref.updates,
    )
    assert not K.is_crossed(lv, meta, b)


@st.composite
def snapshots(draw):
    bids = draw(st.lists(st.tuples(st.integers(80, 100), st.integers(0, 9)), max_size=12))
    asks = draw(st.lists(st.tuples(st.integers(95, 120), st.integers(0, 9)), max_size=12))
    return bids, asks, draw(st.integers(0, 1000))


@st.composite
def events(draw, last_id):
    """A diff event that is usually in sequence, sometimes stale or with a gap."""
    kind = draw(st.sampled_from(("next",) * 6 + ("stale", "gap", "pu", "pu_gap")))
    first = {"next": last_id + 1, "stale": last_id - 3, "gap": last_id + 2, "pu": last_id + 1, "pu_gap": last_id + 1}[
        kind
    ]
    last = max(first, first + draw(st.integers(0, 3)))
    prev = {"pu": last_id, "pu_gap": last_id - 1}.get(kind, -1)
    return first, last, prev, draw(level_updates)


def columns(levels):
    """[(price, qty), ...] -> (prices, quantities) arrays."""
    return [np.array([lvl[k] for lvl in levels], dtype=np.int64) for k in (0, 1)]


@SETTINGS
@given(data=st.data())
def test_snapshot_then_diffs_match_reference(data):
    lv, meta = K.new_books(2, DEPTH)
    ref = Book(DEPTH)
    b = 1
    assert K.apply_diff(lv, meta, b, 1, 1, -1, *arrays([(0, 100, 1)])) == K.NOT_READY
    for _ in range(data.draw(st.integers(1, 3))):  # resync after gaps with a new snapshot
        bids, asks, last_id = data.draw(snapshots())
        K.apply_snapshot(lv, meta, b, *columns(bids), *columns(asks), last_id)
        ref.snapshot(bids, asks, last_id)
        assert_same(lv, meta, b, ref)
        for _ in range(data.draw(st.integers(0, 25))):
            first, last, prev, updates = data.draw(events(ref.last_id))
            got = K.apply_diff(lv, meta, b, first, last, prev, *arrays(updates))
            want = ref.diff(first, last, prev, updates)
            assert got == want
            assert_same(lv, meta, b, ref)
    assert meta[0].tolist() == [0] * K.M_FIELDS  # the other book is untouched


@SETTINGS
@given(data=st.data())
def test_batch_equals_one_by_one(data):
    lv, meta = K.new_books(3, DEPTH)
    twin_lv, twin_meta = lv.copy(), meta.copy()
    for b in range(3):
        for arrs in ((lv, meta), (twin_lv, twin_meta)):
            K.apply_snapshot(
                *arrs,
                b,
                np.array([99], np.int64),
                np.array([1], np.int64),
                np.array([101], np.int64),
                np.array([1], np.int64),
                10,
            )
    evs = []
    last = [10, 10, 10]
    for _ in range(data.draw(st.integers(0, 30))):
        b = data.draw(st.integers(0, 2))
        first, lst, prev, updates = data.draw(events(last[b]))
        if first == last[b] + 1:
            last[b] = lst
        evs.append((b, first, lst, prev, updates))
    offsets = np.cumsum([0] + [len(e[4]) for e in evs]).astype(np.int64)
    flat = [u for e in evs for u in e[4]]
    sides, px, qt = arrays(flat)
    out = np.zeros(len(evs), dtype=np.int64)
    col = [np.array([e[k] for e in evs], dtype=np.int64) for k in range(4)]
    n = K.apply_diffs(lv, meta, *col, offsets, sides, px, qt, out)
    singles = [K.apply_diff(twin_lv, twin_meta, b, f, lst, p, *arrays(u)) for b, f, lst, p, u in evs]
    assert out.tolist() == singles
    assert n == sum(len(e[4]) for e, r in zip(evs, singles, strict=True) if r == K.APPLIED)
    assert np.array_equal(lv, twin_lv) and np.array_equal(meta, twin_meta)


@SETTINGS
@given(data=st.data())
def test_queries_match_reference(data):
    lv, meta = K.new_books(1, DEPTH)
    ref = Book(DEPTH)
    bids, asks, last_id = data.draw(snapshots())
    K.apply_snapshot(lv, meta, 0, *columns(bids), *columns(asks), last_id)
    ref.snapshot(bids, asks, last_id)
    side = data.draw(st.sampled_from((K.BID, K.ASK)))
    n_levels = data.draw(st.integers(-1, DEPTH + 1))
    limit = data.draw(st.integers(-1, 130))
    qty = data.draw(st.integers(0, 60))
    assert K.depth(lv, meta, 0, side, n_levels, limit) == ref.depth_qty(side, n_levels, limit)
    assert tuple(K.fill_cost(lv, meta, 0, side, qty, limit)) == ref.fill_cost(side, qty, limit)
    avg, slip, filled = K.average_fill_price(lv, meta, 0, side, qty)
    f, cost, _ = ref.fill_cost(side, qty, 0)
    assert filled == f
    if f:
        top = ref.levels(side)[0][0]
        assert avg == cost / f and slip >= 0 and np.isclose(slip, abs(cost / f - top) / top * 1e4)


@SETTINGS
@given(data=st.data())
def test_consolidated_book_matches_reference(data):
    n_books = data.draw(st.integers(1, 4))
    lv, meta = K.new_books(n_books + 1, DEPTH)
    refs = []
    for b in range(n_books):
        bids, asks, last_id = data.draw(snapshots())
        K.apply_snapshot(lv, meta, b + 1, *columns(bids), *columns(asks), last_id)
        refs.append(Book(DEPTH))
        refs[-1].snapshot(bids, asks, last_id)
    side = data.draw(st.sampled_from((K.BID, K.ASK)))
    cap = data.draw(st.integers(1, 20))
    out_px = np.zeros(cap, np.int64)
    out_qty = np.zeros(cap, np.int64)
    out_v = np.zeros((cap, n_books), np.int64)
    n = K.consolidate(lv, meta, np.arange(1, n_books + 1, dtype=np.int64), side, out_px, out_qty, out_v)
    want = consolidate(refs, side, cap)
    assert n == len(want)
    assert [(int(out_px[k]), int(out_qty[k]), out_v[k].tolist()) for k in range(n)] == want


def test_binance_futures_sequence_example():
    lv, meta = K.new_books(1, 5)
    one = np.ones(1, np.int64)
    K.apply_snapshot(lv, meta, 0, 100 * one, 5 * one, 102 * one, 5 * one, 1000)
    up = lambda side, p, q: (np.array([side], np.int64), np.array([p], np.int64), np.array([q], np.int64))  # noqa: E731
    assert K.apply_diff(lv, meta, 0, 990, 1000, 989, *up(K.BID, 100, 1)) == K.STALE
    assert K.apply_diff(lv, meta, 0, 995, 1003, 994, *up(K.BID, 101, 2)) == K.APPLIED  # spans 1001
    assert K.apply_diff(lv, meta, 0, 1004, 1006, 1003, *up(K.ASK, 101, 3)) == K.APPLIED  # pu == 1003
    assert K.best(lv, meta, 0, K.ASK) == (101, 3) and K.best(lv, meta, 0, K.BID) == (100, 5)  # uncrossed
    assert K.apply_diff(lv, meta, 0, 1008, 1009, 1007, *up(K.ASK, 103, 1)) == K.GAP
    assert K.apply_diff(lv, meta, 0, 1007, 1007, 1006, *up(K.ASK, 103, 1)) == K.NOT_READY
    assert meta[0, K.M_GAPS] == 1
