"""Exact int64 arithmetic against Python integers, and decimal-string conversion at the boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.fixed import mul3_sat, mul_div_ceil, mul_div_floor, mul_div_rem, mul_div_trunc, mul_ppm_sat
from kernels.instruments import Instrument, InstrumentSpec, from_units, money_from_units, money_to_units

INT64_MAX = 2**63 - 1
NO_DEADLINE = settings(deadline=None)  # the first example includes Numba's compile (or cache load)
int64s = st.integers(-(2**63) + 1, INT64_MAX) | st.integers(-(2**31), 2**31)


@NO_DEADLINE
@given(int64s, int64s, st.integers(1, INT64_MAX) | st.integers(1, 10**6))
def test_mul_div_is_exact(a, b, d):
    exact = a * b
    if not -(2**63) < exact // d < 2**63 - 1:
        return  # the result itself does not fit in int64
    assert mul_div_floor(a, b, d) == exact // d
    assert mul_div_ceil(a, b, d) == -((-exact) // d)
    assert mul_div_trunc(a, b, d) == (abs(exact) // d) * (1 if exact >= 0 else -1)


@NO_DEADLINE
@given(st.integers(0, INT64_MAX), st.integers(0, INT64_MAX), st.integers(1, INT64_MAX))
def test_mul_div_rem(a, b, d):
    if a * b // d > INT64_MAX:
        return
    assert tuple(mul_div_rem(a, b, d)) == divmod(a * b, d)


@NO_DEADLINE
@given(st.integers(0, INT64_MAX), st.integers(0, INT64_MAX), st.integers(0, INT64_MAX))
def test_saturating(a, b, c):
    assert mul3_sat(a, b, c) == min(a * b * c, INT64_MAX)
    assert mul_ppm_sat(a, b) == min(a * b // 10**6, INT64_MAX)


def test_binance_btcusdt_units():
    btc = Instrument(
        InstrumentSpec(
            "BTCUSDT",
            "spot",
            tick_size="0.01",
            step_size="0.00001",
            min_qty="0.00001",
            max_qty="9000",
            min_notional="5",
        )
    )
    assert btc.mult == 10  # 0.01 x 0.00001 USDT = 1e-7 = 10 money units
    assert btc.price("64250.17") == 6_425_017 and btc.qty("0.015") == 1500
    assert btc.notional(btc.price("64250.17"), btc.qty("0.015")) == money_to_units("963.75255")
    assert btc.price_str(6_425_017) == "64250.17" and btc.qty_str(1500) == "0.015"
    assert btc.mark_to_units("64250.1749") == 6_425_017
    assert btc.min_notional == 5 * 10**8 and btc.max_qty == 900_000_000
    with pytest.raises(ValueError, match="BTCUSDT price: 64250.171 is not a multiple of 0.01"):
        btc.price("64250.171")
    with pytest.raises(TypeError, match="binary float"):
        btc.qty(0.1)


def test_finer_internal_units_and_bad_units():
    perp = Instrument(
        InstrumentSpec("BTCUSDT", "perp", tick_size="0.10", step_size="0.001", price_unit="0.01", qty_unit="0.001")
    )
    assert (perp.tick, perp.lot, perp.mult) == (10, 1, 1000)
    with pytest.raises(ValueError, match="not a whole number of money units"):
        Instrument(InstrumentSpec("X", tick_size="0.00000001", step_size="0.1"))
    with pytest.raises(ValueError, match="kind must be one of"):
        Instrument(InstrumentSpec("X", kind="option"))
    with pytest.raises(ValueError, match="tick_size must be positive"):
        Instrument(InstrumentSpec("X", tick_size="0"))


@NO_DEADLINE
@given(st.integers(-(10**18), 10**18), st.sampled_from(("0.01", "1", "0.00001", "100", "0.5")))
def test_units_round_trip(n, unit):
    assert Instrument(InstrumentSpec("X", tick_size=unit, step_size="1")).price(from_units(n, Decimal(unit))) == n
    assert money_to_units(str(money_from_units(n))) == n
