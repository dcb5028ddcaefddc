"""The integer units configured numbers become, and the one exact conversion that both sides use.

The kernels hold every configured limit as an int64 count of a fixed unit: money in 1e-8 USDT, ratios
(leverage) in parts per million, percentages in ppm, order rates in orders per 1000 s, counts as they
are. ``oms config check`` validates each value by converting it here, and ``kernels.risk_limits`` (and
``kernels.instruments``) convert with these same functions, so a config that checks ``ok`` is a config
the kernels accept: no value is rounded, and none leaves the int64 range.

This module is plain Python (no Numba) and imports nothing of the kernels: it is the single place these
facts live, below both; the conversion itself is ``oms.model.units.to_units``.
"""

from __future__ import annotations

from decimal import Decimal

# The exact conversion itself is the model's (oms.model.units), used by instruments, configs and kernels.
from oms.model.units import INT64_MAX, MONEY_DECIMALS, MONEY_UNIT, money_to_units, to_decimal, to_units

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

__all__ = [  # the model's conversion, re-exported for config checks and kernels that read it from here
    "INT64_MAX", "MONEY_DECIMALS", "MONEY_UNIT", "RISK_FIELD_UNITS", "UNITS", "UNIT_NAMES", "check_units",
    "money_to_units", "to_decimal", "to_units", "units_of",
]  # fmt: skip


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
