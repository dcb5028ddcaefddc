"""Binance's markets (exchangeInfo) as model Instruments, and the symbol map both ways.

One provider per exchange market, shared by every account (the factory builds it on a public context).
Symbols the model cannot hold in int64 units (a tick times a lot below its money unit, e.g. some BTC-quoted
pairs) stay in the symbol map, so their events still parse, but have no ``Instrument``; ``load`` logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from oms.model import Instrument
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.session import MarketSession
from oms.venues.binance.symbols import SymbolTable, UnknownSymbol
from oms.venues.binance.wire_rest import ExchangeInfo, convert
from oms.venues.interface import VenueContext

log = logging.getLogger(__name__)


class BinanceInstruments:
    """``InstrumentProvider`` of one Binance market."""

    def __init__(self, ctx: VenueContext, settings: BinanceSettings | None = None) -> None:
        self.context = ctx
        self.session = MarketSession(ctx, settings or BinanceSettings.from_options(ctx.options))
        self.table: SymbolTable | None = None

    async def load(self, reload: bool = False) -> Mapping[str, Instrument]:
        if self.table is None or reload:
            body = await self.session.request("exchange_info", {}, action="load markets", sign=False)
            table = SymbolTable.from_exchange_info(
                convert(body, ExchangeInfo), self.context.market, self.context.exchange
            )
            for symbol, why in table.unusable.items():
                log.info("binance %s %s has no model instrument: %s", self.context.market.value, symbol, why)
            self.table = table
            await self.session.close()  # exchangeInfo is read rarely: no idle connection kept
        return dict(self.table.instruments)

    @property
    def symbols(self) -> SymbolTable:
        if self.table is None:
            raise RuntimeError(f"binance {self.context.market.value} instruments are not loaded (await load())")
        return self.table

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.symbols.instruments[symbol]
        except KeyError:
            raise UnknownSymbol(symbol, f"binance {self.context.market.value}") from None

    def to_venue(self, symbol: str) -> str:
        return self.symbols.venue(symbol)

    def from_venue(self, venue_symbol: str) -> str:
        return self.symbols.unified(venue_symbol)
