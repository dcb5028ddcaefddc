"""Instruments: exchange filters to exact int64 units and back, contract size, order filter checks."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.model import Instrument, InstrumentKind, InstrumentSpec, Market
from oms.model.units import canonical, from_units, money_to_units, round_to_units, to_units

BTC = InstrumentSpec(
    "BTC/USDT:USDT", InstrumentKind.PERP, tick_size="0.10", step_size="0.001", min_qty="0.001",
    max_qty="1000", min_notional="100", venue_symbol="BTCUSDT",
)  # fmt: skip


def test_units_and_filters():
    inst = Instrument(BTC)
    assert (inst.tick, inst.lot, inst.mult, inst.market) == (1, 1, 10_000, Market.USDM)
    assert inst.id.binance_symbol == "BTCUSDT"
    assert inst.price("64250.1") == 642_501 and inst.price_str(642_501) == "64250.1"
    assert inst.notional_str("64250.1", "0.002") == "128.5002"
    inst.check_order("64250.1", "0.002")
    inst.check_order(None, "0.002")
    with pytest.raises(ValueError, match="price 64250.15: is not a multiple|not a multiple of 0.10"):
        inst.check_order("64250.15", "0.002")
    with pytest.raises(ValueError, match="notional 64.2501: outside"):
        inst.check_order("64250.1", "0.001")
    with pytest.raises(ValueError, match="quantity 2000: outside"):
        inst.check_order("64250.1", "2000")


def test_contract_size_enters_the_multiplier():
    inst = Instrument(InstrumentSpec("X/USDT:USDT", "perp", tick_size="0.1", step_size="1", contract_size="10"))
    assert inst.mult == 10**8  # 0.1 x 1 x 10 = 1 USDT
    with pytest.raises(ValueError, match="contract_size must be positive"):
        Instrument(InstrumentSpec("X", contract_size="0"))


def test_bad_input_names_what_and_why():
    with pytest.raises(ValueError, match=r"X price: '1\.2\.3' is not a decimal number"):
        Instrument(InstrumentSpec("X")).price("1.2.3")
    with pytest.raises(ValueError, match="not a finite number"):
        to_units("NaN", Decimal("0.01"), "p")
    with pytest.raises(TypeError, match="binary float"):
        to_units(0.1, Decimal("0.01"), "p")
    with pytest.raises(ValueError, match="out of the int64 range"):
        to_units("1e30", Decimal("0.01"), "p")
    with pytest.raises(ValueError, match="out of the int64 range"):
        round_to_units("1e30", Decimal("0.01"), "p")


@given(st.integers(-(10**17), 10**17), st.sampled_from(("0.01", "1", "0.00001", "100", "0.5", "0.25")))
def test_round_trip(n, unit):
    u = Decimal(unit)
    text = from_units(n, u)
    assert to_units(text, u) == n and canonical(text) == text
    assert money_to_units(from_units(n, Decimal("1e-8"))) == n


_NUMBERS = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,22}(\.[0-9]{0,14})?\Z"),
    st.sampled_from(["1e3", "1E-2", " 1.5", "+2", "1_000", ".5", "5.", "0x10", "nan", "inf", "", "٣", "1.0\n"]),
    st.text(max_size=8),
)


def _outcome(fn, value):
    try:
        return fn(value)
    except (ValueError, TypeError) as exc:
        return type(exc), str(exc)


@given(_NUMBERS, st.sampled_from(["0.01", "0.00001", "1", "0.05", "10", "0.00000001"]))
def test_the_fast_conversion_answers_as_the_decimal_one(value, unit):
    # Instrument.price/qty and money_to_units skip Decimal for plain strings (and remember what they saw):
    # the answer, or the error and its message, is the exact conversion's.
    spec = InstrumentSpec(symbol="X/USDT", tick_size=unit, step_size=unit, price_unit=unit, qty_unit=unit)
    try:
        inst = Instrument(spec)
    except ValueError:  # units too fine for whole money units
        return
    for _ in range(2):  # the second time from the cache
        assert _outcome(inst.price, value) == _outcome(lambda v: to_units(v, Decimal(unit), "X/USDT price"), value)
        assert _outcome(inst.qty, value) == _outcome(lambda v: to_units(v, Decimal(unit), "X/USDT quantity"), value)
    assert _outcome(money_to_units, value) == _outcome(lambda v: to_units(v, Decimal("1e-8"), "money"), value)


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from(["0.01", "0.00001", "1", "0.10", "0.00000001", "10"]))
def test_units_back_to_text_as_the_decimal_path(n, unit):
    by_price = Instrument(InstrumentSpec(symbol="X/USDT", tick_size=unit, step_size="1"))
    by_qty = Instrument(InstrumentSpec(symbol="X/USDT", tick_size="1", step_size=unit))
    assert by_price.price_str(n) == from_units(n, Decimal(unit)) == by_qty.qty_str(n)


TEXT_UNITS = ["0.01", "0.00001", "1", "0.10", "0.5", "0.25", "10"]
TEXT_INSTRUMENTS = {
    u: (
        Instrument(InstrumentSpec(symbol="X/USDT", tick_size=u, step_size="1")),
        Instrument(InstrumentSpec(symbol="X/USDT", tick_size="1", step_size=u)),
    )
    for u in TEXT_UNITS
}


@given(st.lists(st.integers(-(10**6), 10**6) | st.integers(-(2**63), 2**63 - 1), max_size=20),
       st.sampled_from(TEXT_UNITS))  # fmt: skip
def test_units_to_text_remembered_are_the_decimal_path(values, unit):
    # the same instruments across examples: values come back from price_str/qty_str's memory, as ints or int64
    by_price, by_qty = TEXT_INSTRUMENTS[unit]
    for n in values + values:
        want = from_units(n, Decimal(unit))
        assert by_price.price_str(n) == want == by_qty.qty_str(n)
        assert by_price.price_str(np.int64(n)) == want == by_qty.qty_str(np.int64(n))
