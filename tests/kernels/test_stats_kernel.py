"""Statistics, sizing and stop kernels against the plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels import stats as K
from kernels.codes import BUY, SELL
from kernels.reference import stats as ref

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
returns = st.lists(st.floats(-0.5, 0.5, allow_nan=False), max_size=300)


@SETTINGS
@given(returns, st.sampled_from((0.95, 0.99, 0.9)))
def test_var_and_volatility(rs, confidence):
    arr = np.array(rs, dtype=np.float64)
    got, want = K.historical_var(arr, confidence), ref.historical_var(rs, confidence)
    assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, abs_tol=1e-12)
    if rs:
        assert math.isclose(got, -np.quantile(arr, 1 - confidence), abs_tol=1e-12)
    got, want = K.volatility(arr, 365.0), ref.volatility(rs, 365.0)
    assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


@SETTINGS
@given(st.lists(st.floats(1.0, 1e9, allow_nan=False), max_size=300))
def test_drawdown(equity):
    dd, worst, peak, trough = K.drawdown(np.array(equity, dtype=np.float64))
    rdd, rworst, rpeak, rtrough = ref.drawdown(equity)
    assert dd.tolist() == rdd and (worst, peak, trough) == (rworst, rpeak, rtrough)


@SETTINGS
@given(
    st.integers(0, 10**16),
    st.integers(0, 10**6),
    st.integers(1, 10**8),
    st.integers(1, 10**8),
    st.sampled_from((1, 10, 10_000)),
    st.sampled_from((1, 10, 1000)),
)
def test_fixed_fraction_sizing(equity, risk, entry, stop, mult, lot):
    got = K.size_fixed_fraction(equity, risk, entry, stop, mult, lot)
    assert got == ref.size_fixed_fraction(equity, risk, entry, stop, mult, lot)
    if got:  # the loss at the stop never exceeds the budget
        assert got * abs(entry - stop) * mult <= equity * risk // 10**6


@SETTINGS
@given(
    st.integers(0, 10**16),
    st.floats(0, 1),
    st.floats(-1, 10),
    st.floats(0, 1),
    st.floats(0, 2),
    st.floats(0, 3),
    st.integers(1, 10**8),
    st.sampled_from((1, 10, 10_000)),
    st.sampled_from((1, 10)),
)
def test_kelly_and_vol_target(equity, p, b, scale, target, vol, price, mult, lot):
    assert K.kelly_fraction(p, b, scale) == ref.kelly_fraction(p, b, scale)
    assert K.size_kelly(equity, p, b, scale, price, mult, lot) == ref.size_kelly(equity, p, b, scale, price, mult, lot)
    assert K.size_vol_target(equity, target, vol, price, mult, lot) == ref.size_vol_target(
        equity, target, vol, price, mult, lot
    )


@SETTINGS
@given(
    st.lists(st.integers(1, 10**9), min_size=1, max_size=200),
    st.sampled_from((BUY, SELL)),
    st.integers(0, 500_000),
    st.sampled_from((1, 5, 100)),
)
def test_stops(prices, side, distance, tick):
    prices = [p - p % tick + tick for p in prices]
    levels, hit = K.trailing_stops(np.array(prices, dtype=np.int64), side, distance, tick)
    assert (levels.tolist(), hit) == ref.trailing_stops(prices, side, distance, tick)
    stop = K.stop_fixed(prices[0], side, distance, tick)
    assert stop == ref.stop_fixed(prices[0], side, distance, tick) and stop % tick == 0
    assert (stop <= prices[0]) if side == BUY else (stop >= prices[0])


def test_examples():
    assert K.stop_fixed(10_000, BUY, 50_000, 7) == 9_506  # 9,500 rounded up to a multiple of 7
    levels, hit = K.trailing_stops(np.array([100, 110, 105, 98], np.int64), BUY, 100_000, 1)
    assert levels.tolist() == [90, 99, 99, 99] and hit == 3
    assert K.time_stop(0, 3_600 * 10**9, 3_600 * 10**9) and not K.time_stop(0, 10, 11)
    assert K.kelly_fraction(0.6, 1.0, 1.0) == 0.19999999999999996  # 0.6 - 0.4
