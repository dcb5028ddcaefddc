"""Instruments: an exchange's filters as decimal strings (``InstrumentSpec``) and their int64 units
(``Instrument``), the one conversion between the edges and the kernels.

Inside the kernels a price is an int64 count of *price units*, a quantity an int64 count of *quantity
units*, and money an int64 count of the quote currency's *money unit*: 1e-8 (``units.MONEY_UNIT``) unless
``units.QUOTE_MONEY_DECIMALS`` names a finer one (1e-12 BTC, so that ETHBTC's 1e-9 BTC per tick and lot is
whole) or the spec sets ``money_decimals``. The units default to
the exchange's tick size and lot step, so every exchange-valid price or quantity converts exactly; a finer
unit can be chosen (``price_unit``/``qty_unit``) when marks or market orders need more decimals, and the
tick and lot filters are then checked by the risk kernel.

``mult`` is the number of money units in one price unit times one quantity unit times the contract size:
notional = price_units * qty_units * mult. It must be a whole number, which holds for USDT-quoted Binance
markets (BTCUSDT: 0.01 * 0.00001 = 1e-7 USDT = 10 money units; SHIBUSDT: 1e-8 * 1 = 1) and, with the BTC
money unit of 1e-12, for BTC-quoted ones (ETHBTC: 0.00001 * 0.0001 = 1e-9 BTC = 1000). Conversions raise
``ValueError`` naming the symbol, the value and the unit whenever they would not be exact; nothing is
silently rounded except marks, on purpose (``mark_to_units``).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from oms.model.enums import InstrumentKind, Market
from oms.model.ids import InstrumentId
from oms.model.units import (
    CTX,
    Number,
    canonical,
    from_units,
    money_decimals_of,
    money_from_units,
    money_to_units,
    money_unit,
    plain_text,
    plain_units,
    round_to_units,
    to_decimal,
    to_units,
    unit_places,
)


class InstrumentSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """An instrument as its exchange describes it (Binance's exchangeInfo filters, ccxt's market limits).

    ``symbol`` is the unified symbol (``BTC/USDT``, ``BTC/USDT:USDT``; kernels' synthetic set-ups may use any
    name), ``venue_symbol`` the exchange's own (``BTCUSDT``). Zero for ``max_qty``, ``max_price``,
    ``min_price``, ``min_notional`` or ``max_notional`` means the exchange sets no such bound.
    """

    symbol: str
    kind: InstrumentKind = InstrumentKind.SPOT
    tick_size: str = "0.01"  # PRICE_FILTER tickSize
    step_size: str = "0.00001"  # LOT_SIZE stepSize
    min_qty: str = "0"
    max_qty: str = "0"
    min_price: str = "0"
    max_price: str = "0"
    min_notional: str = "0"  # NOTIONAL / MIN_NOTIONAL filter, in the quote currency
    max_notional: str = "0"
    contract_size: str = "1"  # base units per quantity unit of 1 (1 on Binance Spot and USD-M)
    price_unit: str | None = None  # internal price unit; defaults to tick_size
    qty_unit: str | None = None  # internal quantity unit; defaults to step_size
    trading: bool = True
    exchange: str = ""
    venue_symbol: str = ""
    base_asset: str = ""
    quote_asset: str = ""
    settle_asset: str = ""  # the margin asset of a perpetual; "" on Spot
    money_decimals: int | None = None  # money unit 1e-N of the quote; None: the quote's (units.QUOTE_MONEY_DECIMALS)


# The kernels' integer codes of the instrument kind and status (kernels.codes SPOT/PERP and
# INSTRUMENT_TRADING/INSTRUMENT_HALTED; tests/model/test_kernel_codes.py checks that they agree). ``Instrument``
# carries them as ``kind`` and ``status`` because the kernels' state columns hold exactly these ints.
KIND_CODES = {InstrumentKind.SPOT: 0, InstrumentKind.PERP: 1}
STATUS_TRADING, STATUS_HALTED = 1, 0


class Instrument:
    """A resolved instrument: its units and the int64 values the kernels hold for it.

    ``instrument_kind`` is the model's enum, ``kind`` its kernel code (``kernels.codes.SPOT``/``PERP``);
    ``trading`` is a bool, ``status`` its kernel code (``INSTRUMENT_TRADING``/``INSTRUMENT_HALTED``).
    """

    __slots__ = (
        "spec", "symbol", "instrument_kind", "kind", "trading", "status", "tick_size", "step_size",
        "contract_size", "price_unit", "qty_unit", "tick", "lot", "mult", "min_qty", "max_qty", "min_price",
        "max_price", "min_notional", "max_notional", "money_decimals", "money_unit", "_pplaces", "_qplaces",
        "_pcache", "_qcache", "_ptext", "_qtext",
    )  # fmt: skip

    def __init__(self, spec: InstrumentSpec):
        name = spec.symbol
        try:
            self.instrument_kind = InstrumentKind(spec.kind)
        except ValueError:
            kinds = sorted(k.value for k in InstrumentKind)
            raise ValueError(f"{name}: kind must be one of {kinds}, not {spec.kind!r}") from None
        self.spec = spec
        self.symbol = name
        self.kind = KIND_CODES[self.instrument_kind]
        self.trading = bool(spec.trading)
        self.status = STATUS_TRADING if self.trading else STATUS_HALTED
        self.tick_size = _positive(spec.tick_size, f"{name} tick_size")
        self.step_size = _positive(spec.step_size, f"{name} step_size")
        self.contract_size = _positive(spec.contract_size, f"{name} contract_size")
        self.price_unit = _positive(spec.price_unit or spec.tick_size, f"{name} price_unit")
        self.qty_unit = _positive(spec.qty_unit or spec.step_size, f"{name} qty_unit")
        # a power-of-ten unit converts without Decimal (units.plain_units); -1: always the Decimal path
        pp, qp = unit_places(self.price_unit), unit_places(self.qty_unit)
        self._pplaces = -1 if pp is None else pp
        self._qplaces = -1 if qp is None else qp
        # decimal string -> units of the values seen lately (orders quote the same few prices and sizes)
        self._pcache: dict[str, int] = {}
        self._qcache: dict[str, int] = {}
        self._ptext: dict[int, str] = {}  # and units -> decimal string, the other way (quotes sent)
        self._qtext: dict[int, str] = {}
        self.tick = to_units(self.tick_size, self.price_unit, f"{name} tick_size in price units")
        self.lot = to_units(self.step_size, self.qty_unit, f"{name} step_size in quantity units")
        self.money_decimals = _money_decimals(spec)
        self.money_unit = money_unit(self.money_decimals)
        per_unit = CTX.multiply(CTX.multiply(self.price_unit, self.qty_unit), self.contract_size)
        mult = CTX.divide(per_unit, self.money_unit)
        if mult != mult.to_integral_value():
            raise ValueError(
                f"{name}: price unit {self.price_unit} x quantity unit {self.qty_unit} x contract size "
                f"{self.contract_size} is not a whole number of money units ({self.money_unit:f} "
                f"{spec.quote_asset or 'of the quote'}); choose coarser units or a finer money_decimals"
            )
        self.mult = int(mult)
        self.min_qty = self.qty(spec.min_qty, "min_qty")
        self.max_qty = self.qty(spec.max_qty, "max_qty")
        self.min_price = self.price(spec.min_price, "min_price")
        self.max_price = self.price(spec.max_price, "max_price")
        self.min_notional = self.money(spec.min_notional, "min_notional")
        self.max_notional = self.money(spec.max_notional, "max_notional")

    @property
    def id(self) -> InstrumentId:
        """The unified id parsed from ``symbol`` (ValueError for a synthetic name)."""
        return InstrumentId.parse(self.symbol)

    @property
    def market(self) -> Market:
        return Market.USDM if self.instrument_kind is InstrumentKind.PERP else Market.SPOT

    # --- decimal string -> units ---------------------------------------------------------------------
    def price(self, value: Number, what: str = "price") -> int:
        """A price string -> price units, exactly (ValueError if not a multiple of the unit)."""
        n = self._pcache.get(value) if type(value) is str else None  # type: ignore[arg-type]
        if n is None:
            n = plain_units(value, self._pplaces) if self._pplaces >= 0 else None
            if n is None:
                return to_units(value, self.price_unit, f"{self.symbol} {what}")
            _remember(self._pcache, value, n)  # type: ignore[arg-type]
        return n

    def qty(self, value: Number, what: str = "quantity") -> int:
        """A quantity string -> quantity units, exactly (ValueError if not a multiple of the unit)."""
        n = self._qcache.get(value) if type(value) is str else None  # type: ignore[arg-type]
        if n is None:
            n = plain_units(value, self._qplaces) if self._qplaces >= 0 else None
            if n is None:
                return to_units(value, self.qty_unit, f"{self.symbol} {what}")
            _remember(self._qcache, value, n)  # type: ignore[arg-type]
        return n

    def money(self, value: Number, what: str = "money") -> int:
        """An amount of the quote currency -> its money units, exactly (ValueError if finer than the unit)."""
        return money_to_units(value, f"{self.symbol} {what}", self.money_decimals)

    def money_str(self, units: int) -> str:
        """Money units -> the amount of the quote currency as a canonical decimal string."""
        return plain_text(units, self.money_decimals)

    def mark_to_units(self, value: Number) -> int:
        """A mark or index price -> price units, rounded half-to-even (marks may carry more decimals)."""
        return round_to_units(value, self.price_unit, f"{self.symbol} mark")

    # --- units -> decimal string ---------------------------------------------------------------------
    def price_str(self, units: int) -> str:
        text = self._ptext.get(units)
        if text is None:
            n = int(units)
            text = plain_text(n, self._pplaces) if self._pplaces >= 0 else from_units(n, self.price_unit)
            _remember(self._ptext, n, text)
        return text

    def qty_str(self, units: int) -> str:
        text = self._qtext.get(units)
        if text is None:
            n = int(units)
            text = plain_text(n, self._qplaces) if self._qplaces >= 0 else from_units(n, self.qty_unit)
            _remember(self._qtext, n, text)
        return text

    def notional(self, price_units: int, qty_units: int) -> int:
        """Notional in money units (Python ints, exact)."""
        return price_units * qty_units * self.mult

    def notional_str(self, price: Number, qty: Number) -> str:
        """The exact notional of a price and quantity given as decimal strings."""
        return canonical(money_from_units(self.notional(self.price(price), self.qty(qty)), self.money_decimals))

    # --- filters on decimal strings ------------------------------------------------------------------
    def check_order(self, price: Number | None, qty: Number) -> None:
        """ValueError naming the filter an order's price/quantity breaks (tick, lot, min/max, notional)."""
        q = self.qty(qty)
        if q <= 0 or q % self.lot:
            raise ValueError(f"{self.symbol} quantity {qty}: must be a positive multiple of {self.step_size:f}")
        if q < self.min_qty or (self.max_qty and q > self.max_qty):
            raise ValueError(f"{self.symbol} quantity {qty}: outside [{self.spec.min_qty}, {self.spec.max_qty}]")
        if price is None:
            return
        p = self.price(price)
        if p <= 0 or p % self.tick:
            raise ValueError(f"{self.symbol} price {price}: must be a positive multiple of {self.tick_size:f}")
        if p < self.min_price or (self.max_price and p > self.max_price):
            raise ValueError(f"{self.symbol} price {price}: outside [{self.spec.min_price}, {self.spec.max_price}]")
        n = self.notional(p, q)
        if n < self.min_notional or (self.max_notional and n > self.max_notional):
            raise ValueError(
                f"{self.symbol} notional {self.notional_str(price, qty)}: outside "
                f"[{self.spec.min_notional}, {self.spec.max_notional}]"
            )

    def __repr__(self) -> str:
        return f"Instrument({self.symbol!r}, price_unit={self.price_unit}, qty_unit={self.qty_unit}, mult={self.mult})"


_CACHE_MAX = 8192


def _remember(cache: dict, key: object, value: object) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def _money_decimals(spec: InstrumentSpec) -> int:
    """The spec's money decimals, else its quote currency's (the quote is read from a unified symbol when
    ``quote_asset`` is empty)."""
    if spec.money_decimals is not None:
        d = spec.money_decimals
        if type(d) is not int or not 0 <= d <= 18:
            raise ValueError(f"{spec.symbol} money_decimals must be an int in [0, 18], not {d!r}")
        return d
    quote = spec.quote_asset
    if not quote:
        base_quote = spec.symbol.split(":", 1)[0].split("/")
        quote = base_quote[1] if len(base_quote) == 2 else ""
    return money_decimals_of(quote)


def _positive(value: str, what: str) -> Decimal:
    d = to_decimal(value, what)
    if d <= 0:
        raise ValueError(f"{what} must be positive, not {value}")
    return d
