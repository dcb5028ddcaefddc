"""Instruments at the boundary: exact conversion between decimal strings and int64 kernel units.

Inside the kernels a price is an int64 count of *price units*, a quantity an int64 count of
*quantity units*, and money an int64 count of 1e-8 USDT (``fixed.MONEY_SCALE``). The units default
to the exchange's tick size and lot step, so every exchange-valid price or quantity converts exactly;
a finer unit can be chosen (``price_unit``/``qty_unit``) when marks or market orders need more
decimals, and then the tick and lot filters are checked inside the risk kernel.

``mult`` is the number of money units in one price unit times one quantity unit:
notional = price_units * qty_units * mult. It must be a whole number, which holds for USDT-quoted
Binance markets (BTCUSDT: 0.01 * 0.00001 = 1e-7 USDT = 10 money units; SHIBUSDT: 1e-8 * 1 = 1).
Conversions raise ``ValueError`` naming the symbol, the value and the unit whenever they would not be
exact; nothing is ever silently rounded, except marks, which are rounded on purpose
(``mark_to_units``).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from kernels.codes import INSTRUMENT_HALTED, INSTRUMENT_TRADING, PERP, SPOT
from kernels.fixed import MONEY_SCALE
from oms.config.units import MONEY_UNIT, money_to_units, to_decimal, to_units

_CTX = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero])
INSTRUMENT_KINDS = {"spot": SPOT, "perp": PERP}
# One exact conversion for configs and kernels alike: oms.config.units (``oms config check`` runs it too).
_dec = to_decimal


def round_to_units(value: str | int | Decimal, unit: Decimal, what: str = "value") -> int:
    """``value / unit`` rounded half-to-even (for marks and other reference prices only)."""
    d = _dec(value, what)
    return int(_CTX.divide(d, unit).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def from_units(n: int, unit: Decimal) -> str:
    """A decimal string for ``n`` units, without exponent or trailing zeros."""
    d = _CTX.multiply(Decimal(int(n)), unit)
    text = format(d.normalize(_CTX), "f")
    return text


def money_from_units(n: int) -> Decimal:
    """int64 money units -> USDT as a Decimal."""
    return _CTX.multiply(Decimal(int(n)), MONEY_UNIT)


@dataclass(frozen=True)
class InstrumentSpec:
    """An exchange instrument as the exchange describes it (decimal strings, as in exchangeInfo).

    Zero for ``max_qty``, ``max_price``, ``min_price``, ``min_notional`` or ``max_notional`` means
    the exchange sets no such bound.
    """

    symbol: str
    kind: str = "spot"  # "spot" or "perp" (linear, USDT-margined)
    tick_size: str = "0.01"  # PRICE_FILTER tickSize
    step_size: str = "0.00001"  # LOT_SIZE stepSize
    min_qty: str = "0"
    max_qty: str = "0"
    min_price: str = "0"
    max_price: str = "0"
    min_notional: str = "0"  # NOTIONAL / MIN_NOTIONAL filter, USDT
    max_notional: str = "0"
    price_unit: str | None = None  # internal price unit; defaults to tick_size
    qty_unit: str | None = None  # internal quantity unit; defaults to step_size
    trading: bool = True


class Instrument:
    """A resolved instrument: its units and the int64 values of its column in the ``ins`` block."""

    def __init__(self, spec: InstrumentSpec):
        if spec.kind not in INSTRUMENT_KINDS:
            raise ValueError(f"{spec.symbol}: kind must be one of {sorted(INSTRUMENT_KINDS)}, not {spec.kind!r}")
        self.spec = spec
        self.symbol = spec.symbol
        self.tick_size = _positive(spec.tick_size, f"{spec.symbol} tick_size")
        self.step_size = _positive(spec.step_size, f"{spec.symbol} step_size")
        self.price_unit = _positive(spec.price_unit or spec.tick_size, f"{spec.symbol} price_unit")
        self.qty_unit = _positive(spec.qty_unit or spec.step_size, f"{spec.symbol} qty_unit")
        self.tick = to_units(self.tick_size, self.price_unit, f"{spec.symbol} tick_size in price units")
        self.lot = to_units(self.step_size, self.qty_unit, f"{spec.symbol} step_size in quantity units")
        mult = _CTX.multiply(_CTX.multiply(self.price_unit, self.qty_unit), Decimal(MONEY_SCALE))
        if mult != mult.to_integral_value():
            raise ValueError(
                f"{spec.symbol}: price unit {self.price_unit} x quantity unit {self.qty_unit} is not a "
                f"whole number of money units ({MONEY_UNIT} USDT); choose coarser units"
            )
        self.mult = int(mult)
        self.kind = INSTRUMENT_KINDS[spec.kind]
        self.min_qty = self.qty(spec.min_qty, "min_qty")
        self.max_qty = self.qty(spec.max_qty, "max_qty")
        self.min_price = self.price(spec.min_price, "min_price")
        self.max_price = self.price(spec.max_price, "max_price")
        self.min_notional = money_to_units(spec.min_notional, f"{spec.symbol} min_notional")
        self.max_notional = money_to_units(spec.max_notional, f"{spec.symbol} max_notional")
        self.status = INSTRUMENT_TRADING if spec.trading else INSTRUMENT_HALTED

    def price(self, value: str | int | Decimal, what: str = "price") -> int:
        """A price string -> price units, exactly (ValueError if not a multiple of the unit)."""
        return to_units(value, self.price_unit, f"{self.symbol} {what}")

    def qty(self, value: str | int | Decimal, what: str = "quantity") -> int:
        """A quantity string -> quantity units, exactly (ValueError if not a multiple of the unit)."""
        return to_units(value, self.qty_unit, f"{self.symbol} {what}")

    def mark_to_units(self, value: str | int | Decimal) -> int:
        """A mark or index price -> price units, rounded half-to-even (marks may carry more decimals)."""
        return round_to_units(value, self.price_unit, f"{self.symbol} mark")

    def price_str(self, units: int) -> str:
        return from_units(units, self.price_unit)

    def qty_str(self, units: int) -> str:
        return from_units(units, self.qty_unit)

    def notional(self, price_units: int, qty_units: int) -> int:
        """Notional in money units (Python ints, exact)."""
        return price_units * qty_units * self.mult

    def __repr__(self) -> str:
        return f"Instrument({self.symbol!r}, price_unit={self.price_unit}, qty_unit={self.qty_unit}, mult={self.mult})"


def _positive(value: str, what: str) -> Decimal:
    d = _dec(value, what)
    if d <= 0:
        raise ValueError(f"{what} must be positive, not {value}")
    return d
