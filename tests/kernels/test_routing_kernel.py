"""Routing and arbitrage kernels against the reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels import book as B
from kernels import routing as K
from kernels.codes import BUY, SELL
from kernels.reference import routing as ref
from kernels.reference.book import Book

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def venue_books(draw, n_max=4):
    n = draw(st.integers(1, n_max))
    lv, meta = B.new_books(n, 8)
    refs = []
    for v in range(n):
        mid = draw(st.integers(1000, 1010))
        bids = draw(st.lists(st.tuples(st.integers(mid - 20, mid), st.integers(1, 50)), max_size=6))
        asks = draw(st.lists(st.tuples(st.integers(mid + 1, mid + 20), st.integers(1, 50)), max_size=6))
        cols = [np.array([x[k] for x in side], np.int64) for side in (bids, asks) for k in (0, 1)]
        B.apply_snapshot(lv, meta, v, *cols, 1)
        refs.append(Book(8))
        refs[-1].snapshot(bids, asks, 1)
    return lv, meta, refs


@SETTINGS
@given(venue_books(), st.data())
def test_route_matches_reference(books, data):
    lv, meta, refs = books
    n = len(refs)
    side = data.draw(st.sampled_from((BUY, SELL)))
    qty = data.draw(st.integers(1, 200))
    limit = data.draw(st.sampled_from((0,)) | st.integers(980, 1030))
    mult = data.draw(st.sampled_from((1, 10, 10_000)))
    cands = data.draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, 1000), st.integers(0, 10**10), st.integers(0, 3)),
            min_size=1,
            max_size=6,
        )
    )
    cols = [np.array([c[k] for c in cands], np.int64) for k in range(4)]
    reason = np.zeros(len(cands), np.int64)
    filled = np.zeros(len(cands), np.int64)
    money = np.zeros(len(cands), np.int64)
    chosen = K.route_order(lv, meta, side, qty, limit, mult, *cols, reason, filled, money)
    want_chosen, want_scores = ref.route_order(refs, side, qty, limit, mult, cands)
    assert chosen == want_chosen
    assert list(zip(reason.tolist(), filled.tolist(), money.tolist(), strict=True)) == want_scores


@SETTINGS
@given(venue_books(), st.data())
def test_arbitrage_matches_reference(books, data):
    lv, meta, refs = books
    fees = data.draw(st.lists(st.integers(0, 2000), min_size=len(refs), max_size=len(refs)))
    mult = data.draw(st.sampled_from((1, 10, 10_000)))
    got = K.arbitrage(lv, meta, np.arange(len(refs), dtype=np.int64), np.array(fees, np.int64), mult)
    assert [tuple(row) for row in got.tolist()] == ref.arbitrage(refs, fees, mult)


@SETTINGS
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=8, unique=True), st.integers(0, 2 * 10**9))
def test_fee_tiers(thresholds, volume):
    thresholds = sorted(thresholds)
    fees = list(range(1000, 1000 - 100 * len(thresholds), -100))
    assert K.fee_tier(np.array(thresholds, np.int64), np.array(fees, np.int64), volume) == ref.fee_tier(
        thresholds, fees, volume
    )


def test_arbitrage_example():
    lv, meta = B.new_books(2, 4)
    one = np.ones(1, np.int64)
    B.apply_snapshot(lv, meta, 0, 99 * one, 5 * one, 100 * one, 5 * one, 1)  # venue 0: ask 100
    B.apply_snapshot(lv, meta, 1, 102 * one, 3 * one, 103 * one, 3 * one, 1)  # venue 1: bid 102
    rows = K.arbitrage(lv, meta, np.arange(2, dtype=np.int64), np.array([1000, 1000], np.int64), 1)
    # buy 3 at 100 (+0.1% = 100.1), sell at 102 (-0.1% = 101.898): 1.798 x 3 = 5.394 -> 5
    assert rows.tolist() == [[0, 1, 3, 5]]
