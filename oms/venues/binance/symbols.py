"""exchangeInfo -> model Instruments, and the symbol map both ways (``BTCUSDT`` + market <-> ``BTC/USDT``).

``SymbolTable`` is what the parsers consult per event: the unified symbol of a Binance symbol (an unknown one
raises ``UnknownSymbol``), and the number of decimals its prices and quantities may carry, so an event with
more digits than the instrument allows is refused (``BadDecimal``) instead of being rounded somewhere later.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any

from oms.model import Instrument, InstrumentId, InstrumentKind, InstrumentSpec, Market
from oms.venues.binance.wire_rest import ExchangeInfo, SymbolInfo


class UnknownSymbol(KeyError):
    """A Binance symbol (or unified symbol) the account's markets do not have."""

    def __init__(self, symbol: str, market: str) -> None:
        self.symbol = symbol
        self.market = market
        super().__init__(symbol)

    def __str__(self) -> str:
        return f"unknown {self.market} symbol {self.symbol!r} (not in the venue's exchangeInfo)"


class BadDecimal(ValueError):
    """A decimal string that is not a number, or has more decimals than the instrument allows."""


def decimals(step: str) -> int:
    """Decimal places of a tick or step size: ``"0.01000000"`` -> 2, ``"1"`` -> 0."""
    d = Decimal(step).normalize()
    exp = d.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _filter(info: SymbolInfo, name: str):
    for f in info.filters:
        if f.filterType == name:
            return f
    return None


def instrument_spec(info: SymbolInfo, market: Market, exchange: str = "binance") -> InstrumentSpec:
    """One exchangeInfo symbol as the model's ``InstrumentSpec`` (PRICE_FILTER, LOT_SIZE, NOTIONAL filters)."""
    price = _filter(info, "PRICE_FILTER")
    lot = _filter(info, "LOT_SIZE")
    notional = _filter(info, "NOTIONAL") or _filter(info, "MIN_NOTIONAL")
    if price is None or lot is None:
        raise ValueError(f"{market} {info.symbol}: exchangeInfo lacks PRICE_FILTER or LOT_SIZE")
    perp = market is Market.USDM
    settle = info.marginAsset or info.quoteAsset if perp else ""
    unified = InstrumentId(info.baseAsset, info.quoteAsset, settle).symbol
    min_notional = "0"
    if notional is not None:
        min_notional = notional.minNotional if notional.minNotional != "0" else notional.notional
    return InstrumentSpec(
        symbol=unified,
        kind=InstrumentKind.PERP if perp else InstrumentKind.SPOT,
        tick_size=price.tickSize,
        step_size=lot.stepSize,
        min_qty=lot.minQty,
        max_qty=lot.maxQty,
        min_price=price.minPrice,
        max_price=price.maxPrice,
        min_notional=min_notional,
        trading=info.status == "TRADING",
        exchange=exchange,
        venue_symbol=info.symbol,
        base_asset=info.baseAsset,
        quote_asset=info.quoteAsset,
        settle_asset=settle,
    )


class SymbolTable:
    """The symbols of one market of one exchange: both directions, precision, and the Instruments."""

    def __init__(self, market: Market, specs: Iterable[InstrumentSpec]) -> None:
        self.market = market
        self.instruments: dict[str, Instrument] = {}
        self.to_unified: dict[str, str] = {}
        self.to_venue: dict[str, str] = {}
        self.price_places: dict[str, int] = {}  # by Binance symbol
        self.qty_places: dict[str, int] = {}
        self.specs: dict[str, InstrumentSpec] = {}
        self.unusable: dict[str, str] = {}  # unified symbol -> why the model cannot hold it in int64 units
        # by Binance symbol, what the event parsers need in one lookup: the unified symbol, the decimals of its
        # prices and quantities, and the sets of values ``check_decimal`` has passed at those decimals
        self.parse_info: dict[str, tuple[str, int, int, AbstractSet[str], AbstractSet[str]]] = {}
        self.place_templates: dict[tuple[object, ...], Any] = {}  # oms.venues.binance.orders.place_params' cache
        for spec in specs:
            self.specs[spec.symbol] = spec
            try:
                self.instruments[spec.symbol] = Instrument(spec)
            except ValueError as exc:  # a tick x lot finer than the quote money unit
                self.unusable[spec.symbol] = str(exc)
            self.to_unified[spec.venue_symbol] = spec.symbol
            self.to_venue[spec.symbol] = spec.venue_symbol
            self.price_places[spec.venue_symbol] = decimals(spec.tick_size)
            self.qty_places[spec.venue_symbol] = decimals(spec.step_size)
            pp, qp = self.price_places[spec.venue_symbol], self.qty_places[spec.venue_symbol]
            self.parse_info[spec.venue_symbol] = (spec.symbol, pp, qp, seen_decimals(pp), seen_decimals(qp))

    @classmethod
    def from_exchange_info(cls, info: ExchangeInfo, market: Market, exchange: str = "binance") -> SymbolTable:
        """Every symbol of an exchangeInfo answer (USD-M: perpetuals only; dated contracts are skipped)."""
        specs = []
        for s in info.symbols:
            if market is Market.USDM and s.contractType not in ("PERPETUAL", ""):
                continue
            specs.append(instrument_spec(s, market, exchange))
        return cls(market, specs)

    def unified(self, venue_symbol: str) -> str:
        """``BTCUSDT`` -> ``BTC/USDT`` (or ``BTC/USDT:USDT`` on USD-M); raises ``UnknownSymbol``."""
        try:
            return self.to_unified[venue_symbol]
        except KeyError:
            raise UnknownSymbol(venue_symbol, self.market.value) from None

    def venue(self, unified: str) -> str:
        """``BTC/USDT`` -> ``BTCUSDT``; raises ``UnknownSymbol``."""
        try:
            return self.to_venue[unified]
        except KeyError:
            raise UnknownSymbol(unified, self.market.value) from None

    def instrument(self, unified: str) -> Instrument:
        """The model Instrument of a symbol; ``UnknownSymbol``, or ``ValueError`` for one the model's units
        cannot represent (its events still parse: the symbol map and precision do not need units)."""
        inst = self.instruments.get(unified)
        if inst is not None:
            return inst
        if unified in self.unusable:
            raise ValueError(f"{self.market.value} {unified}: {self.unusable[unified]}")
        raise UnknownSymbol(unified, self.market.value)


def check_decimal(value: str, places: int, what: str) -> str:
    """``value`` itself when it is a plain decimal with at most ``places`` significant decimals.

    Binance pads with zeros (``"0.00200000"``), so trailing zeros do not count. Raises ``BadDecimal`` naming
    ``what`` otherwise. Cheap on purpose: it runs on every price and quantity of every event (the values seen
    lately are remembered per number of places; the first check of a value is a few str methods).
    """
    seen = _SEEN[places] if 0 <= places < len(_SEEN) else None
    if seen is not None and value in seen:
        return value
    if type(value) is str and value.isascii():
        whole, dot, frac = value.partition(".")
        if (whole.isdigit() or (whole[:1] == "-" and whole[1:].isdigit())) and (
            not dot or (frac.isdigit() and (len(frac) <= places or len(frac.rstrip("0")) <= places))
        ):
            if seen is not None:
                if len(seen) >= _SEEN_MAX:
                    seen.clear()
                seen.add(value)
            return value
    return _check_decimal_slowly(value, places, what)


_SEEN: tuple[set[str], ...] = tuple(set() for _ in range(19))  # by places: values that passed
_SEEN_MAX = 8192
_NONE_SEEN: frozenset[str] = frozenset()


def seen_decimals(places: int) -> AbstractSet[str]:
    """The values ``check_decimal`` has passed at ``places`` (a live set: ``v in seen`` means ``check_decimal(v,
    places, ...)`` returns ``v``), for hot paths that test it before calling; empty for places it keeps none of."""
    return _SEEN[places] if 0 <= places < len(_SEEN) else _NONE_SEEN


def _check_decimal_slowly(value: str, places: int, what: str) -> str:
    dot = value.find(".")
    if dot < 0:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isdigit() and digits.isascii():
            return value
        raise BadDecimal(f"{what}: {value!r} is not a decimal number")
    frac = value[dot + 1 :]
    whole = value[1:dot] if value[:1] == "-" else value[:dot]
    if not (whole.isdigit() and whole.isascii() and (frac.isdigit() or not frac) and frac.isascii()):
        raise BadDecimal(f"{what}: {value!r} is not a decimal number")
    if len(frac.rstrip("0")) > places:
        raise BadDecimal(f"{what}: {value!r} has more than the {places} decimals the instrument allows")
    return value
