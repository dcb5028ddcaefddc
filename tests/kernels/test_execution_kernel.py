"""Order splitting kernels against the reference: children always sum exactly to the parent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels import book as B
from kernels import execution as K
from kernels.reference import execution as ref
from kernels.reference.book import Book

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

lots = st.sampled_from((1, 5, 10, 1000))
sizes = st.integers(0, 10**6) | st.integers(0, 2**50)


@st.composite
def parents(draw):
    lot = draw(lots)
    total = draw(sizes) // lot * lot
    min_qty = draw(st.sampled_from((0, lot, 3 * lot, 10**4)))
    return total, lot, min_qty


def check_children(children, total, lot, min_qty):
    children = list(children)
    assert sum(children) == total
    assert all(c >= 0 and c % lot == 0 for c in children)
    nonzero = [c for c in children if c]
    if len(nonzero) > 1:
        assert min(nonzero) >= min_qty or total < min_qty


def same_result(kernel, reference, *args):
    """Kernel and reference return the same list, or both refuse with ValueError."""
    try:
        want = reference(*args)
    except ValueError:
        with pytest.raises(ValueError):
            kernel(*args)
        return None
    got = kernel(*args)
    assert got.tolist() == want
    return got


@SETTINGS
@given(parents(), st.integers(0, 10**7))
def test_fixed_and_percent(parent, chunk):
    total, lot, min_qty = parent
    for kernel, reference, size in (
        (K.split_fixed, ref.split_fixed, chunk),
        (K.split_percent, ref.split_percent, chunk % 1_000_001),
    ):
        got = same_result(kernel, reference, total, size, lot, min_qty)
        if got is not None:
            check_children(got, total, lot, min_qty)


@SETTINGS
@given(parents(), st.lists(st.integers(0, 10**6) | st.integers(0, 2**40), min_size=1, max_size=30))
def test_allocate_and_vwap(parent, weights):
    total, lot, min_qty = parent
    got = K.allocate(total, np.array(weights, dtype=np.int64), lot, min_qty)
    assert got.tolist() == ref.allocate(total, weights, lot, min_qty)
    check_children(got, total, lot, min_qty)
    times = np.arange(len(weights), dtype=np.int64) * 60_000_000_000
    t, q = K.split_vwap(total, np.array(weights, dtype=np.int64), times, lot, min_qty)
    assert (t.tolist(), q.tolist()) == ref.split_vwap(total, weights, times.tolist(), lot, min_qty)
    check_children(q, total, lot, min_qty)


@SETTINGS
@given(parents(), st.integers(1, 500), st.integers(0, 2**62), st.integers(0, 10**12))
def test_twap(parent, n, start, duration):
    total, lot, min_qty = parent
    t, q = K.split_twap(total, n, start, start + duration, lot, min_qty)
    assert (t.tolist(), q.tolist()) == ref.split_twap(total, n, start, start + duration, lot, min_qty)
    check_children(q, total, lot, min_qty)
    assert (np.diff(t) >= 0).all()
    if total >= n * max(lot, min_qty):  # enough for every slice: sizes differ by at most one lot
        assert q.max() - q.min() <= lot


@SETTINGS
@given(parents(), st.integers(1, 10**5), st.integers(0, 10**6), st.integers(0, 2**63 - 1))
def test_iceberg(parent, display, variance, seed):
    total, lot, min_qty = parent
    got = same_result(K.split_iceberg, ref.split_iceberg, total, display, variance, seed, lot, min_qty)
    if got is not None:
        check_children(got, total, lot, min_qty)


@SETTINGS
@given(parents(), st.data())
def test_liquidity_weighted_across_venues(parent, data):
    total, lot, min_qty = parent
    n_venues = data.draw(st.integers(1, 4))
    lv, meta = B.new_books(n_venues, 10)
    refs = []
    for v in range(n_venues):
        asks = data.draw(st.lists(st.tuples(st.integers(100, 120), st.integers(0, 10**6)), max_size=8))
        px = np.array([a[0] for a in asks], np.int64)
        qt = np.array([a[1] for a in asks], np.int64)
        B.apply_snapshot(lv, meta, v, np.zeros(0, np.int64), np.zeros(0, np.int64), px, qt, 1)
        refs.append(Book(10))
        refs[-1].snapshot([], asks, 1)
    limit = data.draw(st.integers(0, 125))
    got = K.split_liquidity(total, lv, meta, np.arange(n_venues, dtype=np.int64), B.ASK, limit, lot, min_qty)
    weights = [r.depth_qty(B.ASK, 0, limit) for r in refs]
    assert got.tolist() == ref.allocate(total, weights, lot, min_qty)
    check_children(got, total, lot, min_qty)


def test_examples_and_refusals():
    assert K.split_fixed(1000, 300, 10, 150).tolist() == [300, 300, 400]  # 100 < min: merged
    assert K.split_fixed(1000, 300, 10, 0).tolist() == [300, 300, 300, 100]
    assert K.split_fixed(1000, 30, 10, 200).tolist() == [200] * 5  # chunks raised to the minimum
    with pytest.raises(ValueError, match="MAX_CHILDREN"):
        K.split_fixed(10**12, 1, 1, 0)
    assert K.allocate(100, np.array([1, 1, 1], np.int64), 1, 0).tolist() == [34, 33, 33]
    assert K.allocate(100, np.array([0, 0], np.int64), 1, 0).tolist() == [50, 50]
    assert K.allocate(10, np.array([98, 1, 1], np.int64), 1, 2).tolist() == [10, 0, 0]
    t, q = K.split_twap(10, 4, 0, 60, 1, 0)
    assert t.tolist() == [0, 15, 30, 45] and q.tolist() == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="whole number of lots"):
        K.split_fixed(1005, 100, 10, 0)
    with pytest.raises(ValueError, match="whole number of lots"):
        ref.split_fixed(1005, 100, 10, 0)
