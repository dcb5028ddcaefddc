"""The integer units configured numbers become, and the one exact conversion that both sides use.

The kernels hold every configured limit as an int64 count of a fixed unit: money in 1e-8 USDT, ratios
(leverage) in parts per million, percentages in ppm, order rates in orders per 1000 s, counts as they
are. ``oms config check`` validates each value by converting it here, and ``kernels.risk_limits`` (and
``kernels.instruments``) convert with these same functions, so a config that checks ``ok`` is a config
the kernels accept: no value is rounded, and none leaves the int64 range.

This module is plain Python (no Numba) and imports nothing of the kernels: it is the single place these
facts live, below both.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

INT64_MAX = 2**63 - 1
MONEY_DECIMALS = 8
MONEY_UNIT = Decimal(1).scaleb(-MONEY_DECIMALS)  # 1e-8 USDT, the value of one money unit
PPM_UNIT = Decimal("0.000001")  # one ppm of a ratio (leverage 5 -> 5,000,000)
PCT_UNIT = Decimal("0.0001")  # one ppm expressed in percent (20% -> 200,000)
MILLI_UNIT = Decimal("0.001")  # orders per second -> orders per 1000 s
COUNT_UNIT = Decimal(1)

UNITS: dict[str, Decimal] = {
    "money": MONEY_UNIT,
    "ratio": PPM_UNIT,
    "pct": PCT_UNIT,
    "milli": MILLI_UNIT,
    "count": COUNT_UNIT,
}
UNIT_NAMES: dict[str, str] = {
    "money": "money as int64 units of 0.00000001 USDT, at most 92233720368.54775807",
    "ratio": "ratios as int64 parts per million (steps of 0.000001)",
    "pct": "percentages as int64 parts per million (steps of 0.0001)",
    "milli": "order rates as int64 orders per 1000 s (steps of 0.001)",
    "count": "counts as int64",
}

# risk.yaml field -> the unit the kernels hold it in (trading_state is an enum, converted by the kernels)
RISK_FIELD_UNITS: dict[str, str] = {
    "max_order_notional_usdt": "money",
    "max_position_notional_usdt": "money",
    "max_gross_exposure_usdt": "money",
    "max_leverage": "ratio",
    "max_open_orders": "count",
    "orders_per_second": "milli",
    "order_burst": "count",
    "max_daily_loss_usdt": "money",
    "max_drawdown_pct": "pct",
    "price_band_pct": "pct",
}

_CTX = decimal.Context(
    prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact]
)


def to_decimal(value: str | int | Decimal, what: str = "value") -> Decimal:
    """A finite Decimal from a decimal string, an int or a Decimal; never from a binary float or a bool."""
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a number, not the boolean {value!r}")
    if isinstance(value, float):
        raise TypeError(f"{what}: pass a decimal string, not the binary float {value!r}")
    try:
        d = Decimal(value) if not isinstance(value, Decimal) else value
    except (decimal.InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {value!r} is not a decimal number") from exc
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return d


def _show(d: Decimal) -> str:
    """A Decimal without exponent when short, else in scientific form (1e+308 is not 309 digits)."""
    return f"{d:f}" if -30 < d.adjusted() < 30 else str(d)


def to_units(value: str | int | Decimal, unit: Decimal, what: str = "value") -> int:
    """Exact ``value / unit`` as an int64; ValueError when value is not a whole number of units or the
    count does not fit in int64."""
    d = to_decimal(value, what)
    if d and d.adjusted() - unit.adjusted() > 19:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}")
    try:
        q = _CTX.divide(d, unit)
    except decimal.Overflow:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}") from None
    except decimal.Inexact:  # more digits than the context holds: certainly not a whole number of units
        raise ValueError(f"{what}: {_show(d)} is not a multiple of {unit:f}") from None
    if q != q.to_integral_value():
        raise ValueError(f"{what}: {_show(d)} is not a multiple of {unit:f}")
    if q.adjusted() > 18 or not -(2**63) < int(q) < 2**63:
        raise ValueError(f"{what}: {_show(d)} is out of the int64 range in units of {unit:f}")
    return int(q)


def money_to_units(value: str | int | Decimal, what: str = "money") -> int:
    """USDT as a decimal string -> int64 money units (1e-8 USDT), exactly."""
    return to_units(value, MONEY_UNIT, what)


def units_of(kind: str, value: str | int | Decimal, what: str = "value") -> int:
    """``value`` in the kernels' unit for ``kind`` (a key of ``UNITS``)."""
    return to_units(value, UNITS[kind], what)


def check_units(kind: str):
    """A pydantic after-validator: the value must convert exactly into ``kind`` units within int64."""

    def validate(value):
        if value is None:
            return value
        try:
            units_of(kind, value, "value")
        except (TypeError, ValueError) as exc:
            reason = str(exc).removeprefix("value: ")
            raise ValueError(f"{reason} (the kernels hold {UNIT_NAMES[kind]})") from None
        return value

    return validate
