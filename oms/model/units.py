"""Exact conversion between decimal strings (the edges) and int64 unit counts (the kernels).

A price is an int64 count of price units, a quantity an int64 count of quantity units, money an int64
count of the quote currency's money unit (``MONEY_UNIT``, 1e-8, unless ``QUOTE_MONEY_DECIMALS`` names a finer
one for that currency). Conversions raise ``ValueError`` naming what was
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
# The money unit of each quote currency, as decimals: 1e-8 by default (USDT, FDUSD, USDC: a tick times a lot of
# their markets is a whole number of 1e-8), 1e-12 for the coins that quote other coins (ETHBTC: 0.00001 x 0.0001 =
# 1e-9 BTC per tick and lot). int64 money then still holds 9.2e6 BTC, ETH or BNB. ``InstrumentSpec.money_decimals``
# overrides it for one instrument.
QUOTE_MONEY_DECIMALS: dict[str, int] = {"BTC": 12, "ETH": 12, "BNB": 12}
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


def _show(d: Decimal) -> str:
    """A Decimal without exponent when short, else in scientific form (1e+308 is not 309 digits)."""
    return f"{d:f}" if -30 < d.adjusted() < 30 else str(d)


_EXACT = decimal.Context(
    prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact]
)


def to_units(value: Number, unit: Decimal, what: str = "value") -> int:
    """Exact ``value / unit`` as an int64; ValueError when not a whole number of units or out of range.

    A value with more significant digits than the context holds is refused, never rounded.
    """
    d = to_decimal(value, what)
    if d and d.adjusted() - unit.adjusted() > 19:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}")
    try:
        q = _EXACT.divide(d, unit)
    except decimal.Overflow:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}") from None
    except decimal.Inexact:  # more digits than the context holds: certainly not a whole number of units
        raise ValueError(f"{what}: {_show(d)} is not a multiple of {unit:f}") from None
    if q != q.to_integral_value():
        raise ValueError(f"{what}: {_show(d)} is not a multiple of {unit:f}")
    n = int(q)
    if not INT64_MIN < n <= INT64_MAX:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}")
    return n


def unit_places(unit: Decimal) -> int | None:
    """``k`` when ``unit`` is exactly 10**-k (k >= 0: ``0.01`` -> 2, ``1`` -> 0), else None (``0.05``, ``10``)."""
    t = unit.normalize().as_tuple()
    if t.digits != (1,) or not isinstance(t.exponent, int) or not -len(_POW10) < t.exponent <= 0:
        return None
    return -t.exponent


def plain_units(value: object, places: int) -> int | None:
    """The int64 count of 10**-places units in ``value`` when it is a plain ``digits[.digits]`` string that
    converts exactly and in range, else None: then ``to_units`` gives the answer or the error. No Decimal is
    built: this is the edge's hot path (every price and quantity of every order)."""
    if type(value) is not str:
        return None
    whole, dot, frac = value.partition(".")
    if not (whole.isdigit() and whole.isascii()):
        return None
    if dot:
        if not (frac.isdigit() and frac.isascii()):
            return None
        if len(frac) > places:
            if frac[places:].strip("0"):
                return None  # not a whole number of units
            frac = frac[:places]
        n = int(whole + frac) * _POW10[places - len(frac)]
    else:
        n = int(whole) * _POW10[places]
    return n if n <= INT64_MAX else None


_POW10 = tuple(10**k for k in range(40))


def plain_text(n: int, places: int) -> str:
    """``from_units(n, 10**-places)`` without Decimal: no exponent, no trailing zeros (``"0"`` for zero)."""
    n = int(n)
    if not places or not n:
        return str(n)
    sign, digits = ("-", str(-n)) if n < 0 else ("", str(n))
    if len(digits) <= places:
        digits = "0" * (places - len(digits) + 1) + digits
    whole, frac = digits[:-places], digits[-places:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


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


def money_decimals_of(quote: str) -> int:
    """The decimals of the money unit of a quote currency (``QUOTE_MONEY_DECIMALS``, else ``MONEY_DECIMALS``)."""
    return QUOTE_MONEY_DECIMALS.get(quote.upper(), MONEY_DECIMALS)


def money_unit(decimals: int = MONEY_DECIMALS) -> Decimal:
    """The money unit of ``decimals`` places (``MONEY_UNIT`` for 8)."""
    return MONEY_UNIT if decimals == MONEY_DECIMALS else Decimal(1).scaleb(-decimals)


def money_to_units(value: Number, what: str = "money", decimals: int = MONEY_DECIMALS) -> int:
    """Money as a decimal string -> int64 money units (1e-``decimals``, 1e-8 unless given), exactly."""
    n = plain_units(value, decimals)
    return to_units(value, money_unit(decimals), what) if n is None else n


def money_from_units(n: int, decimals: int = MONEY_DECIMALS) -> Decimal:
    """int64 money units (1e-``decimals``) -> the amount as a Decimal."""
    return CTX.multiply(Decimal(int(n)), money_unit(decimals))
