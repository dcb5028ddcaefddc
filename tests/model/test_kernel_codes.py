"""Every model enum member has its kernels/codes.py code, and every code maps back to its member."""

from __future__ import annotations

import pytest

import kernels.codes as C
from oms.model import (
    InstrumentKind,
    MarginType,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    TimeInForce,
    TradingState,
)

ENUMS = [
    Side,
    PositionSide,
    PositionMode,
    OrderType,
    TimeInForce,
    MarginType,
    TradingState,
    InstrumentKind,
    OrderStatus,
]


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_every_member_maps_and_back(enum):
    codes = C.ENUM_CODES[enum]
    assert set(codes) == set(enum)
    assert len(set(codes.values())) == len(enum), "two members share a code"
    for member in enum:
        assert C.member_of(enum, C.code_of(member)) is member


def test_the_codes_kernels_use():
    assert C.code_of(Side.SELL) == C.SELL == -1 and C.code_of(Side.BUY) == 1
    assert C.code_of(OrderType.LIMIT_MAKER) == C.LIMIT_MAKER
    assert C.code_of(PositionMode.ONE_WAY) == C.NETTING and C.code_of(PositionSide.SHORT) == C.POS_SHORT
    assert C.code_of(TradingState.REDUCE_ONLY) == C.REDUCE_ONLY and C.code_of(InstrumentKind.PERP) == C.PERP
    assert {OrderType(n.lower()) for n in C.ORDER_TYPES} == set(OrderType)
    with pytest.raises(KeyError, match="no Side member for kernel code 0"):
        C.member_of(Side, 0)
    with pytest.raises(KeyError, match="no kernel code for str"):
        C.code_of("buy")


def test_instrument_carries_the_kernel_codes():
    from kernels.fixed import MONEY_DECIMALS, MONEY_SCALE
    from oms.model import Instrument, InstrumentSpec, units

    for kind in InstrumentKind:
        for trading in (True, False):
            inst = Instrument(InstrumentSpec("X/USDT", kind.value, trading=trading))
            assert inst.instrument_kind is kind and inst.kind == C.INSTRUMENT_KIND_CODES[kind]
            assert inst.status == (C.INSTRUMENT_TRADING if trading else C.INSTRUMENT_HALTED)
    assert (units.MONEY_DECIMALS, units.MONEY_SCALE) == (MONEY_DECIMALS, MONEY_SCALE)
