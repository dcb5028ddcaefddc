"""Exact conversion between decimal strings (the edges) and int64 unit counts (the kernels).

A price is an int64 count of price units, a quantity an int64 count of quantity units, money an int64
count of ``MONEY_UNIT`` (1e-8 of the quote currency). Conversions raise ``ValueError`` naming what was
converted, the value and the unit whenever they would not be exact; nothing is silently rounded except by
``round_to_units``, which exists for marks and other reference prices. Binary floats are refused
(``TypeError``): money never passes through a float.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

CTX = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
MONEY_DECIMALS = 8
MONEY_SCALE = 10**MONEY_DECIMALS  # money units per 1 unit of the quote currency
MONEY_UNIT = Decimal(1).scaleb(-MONEY_DECIMALS)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Number = str | int | Decimal


def to_decimal(value: Number, what: str = "value") -> Decimal:
    """A finite Decimal from a decimal string, an int or a Decimal; ValueError/TypeError naming ``what``."""
    if isinstance(value, float):
        raise TypeError(f"{what}: pass a decimal string, not the binary float {value!r}")
    if isinstance(value, bool):
        raise TypeError(f"{what}: {value!r} is a bool, not a number")
    try:
        d = value if isinstance(value, Decimal) else Decimal(value.strip() if isinstance(value, str) else value)
    except (decimal.InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {value!r} is not a decimal number") from exc
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return d


def to_units(value: Number, unit: Decimal, what: str = "value") -> int:
    """Exact ``value / unit`` as an int64; ValueError when not a whole number of units or out of range."""
    d = to_decimal(value, what)
    q = CTX.divide(d, unit)
    if q != q.to_integral_value():
        raise ValueError(f"{what}: {d:f} is not a multiple of {unit:f}")
    n = int(q)
    if not INT64_MIN < n <= INT64_MAX:
        raise ValueError(f"{what}: {d:f} is out of the int64 range in units of {unit:f}")
    return n


def round_to_units(value: Number, unit: Decimal, what: str = "value") -> int:
    """``value / unit`` rounded half-to-even (for marks and other reference prices only)."""
    d = to_decimal(value, what)
    n = int(CTX.divide(d, unit).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    if not INT64_MIN < n <= INT64_MAX:
        raise ValueError(f"{what}: {d:f} is out of the int64 range in units of {unit:f}")
    return n


def from_units(n: int, unit: Decimal) -> str:
    """The decimal string of ``n`` units: no exponent, no trailing zeros (``"0"`` for zero)."""
    return canonical(CTX.multiply(Decimal(int(n)), unit))


def canonical(value: Number) -> str:
    """The canonical decimal string of a number: ``"1.50"`` -> ``"1.5"``, ``"1E+2"`` -> ``"100"``."""
    d = to_decimal(value)
    if d == 0:
        return "0"
    return format(d.normalize(CTX), "f")


def money_to_units(value: Number, what: str = "money") -> int:
    """Money as a decimal string -> int64 money units (1e-8), exactly."""
    return to_units(value, MONEY_UNIT, what)


def money_from_units(n: int) -> Decimal:
    """int64 money units -> the amount as a Decimal."""
    return CTX.multiply(Decimal(int(n)), MONEY_UNIT)
