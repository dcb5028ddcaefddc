"""Instruments from ccxt's ``load_markets``: precision and limits -> ``Instrument``, symbols both ways.

ccxt already names markets the unified way (``BTC/USDT``, ``BTC/USDT:USDT``); its ``id`` is the exchange's
own symbol (``BTCUSDT``). One venue id can name two markets (Binance's BTCUSDT is Spot and the USD-M
perpetual), so the reverse map is keyed by (venue symbol, market). Markets the model cannot hold (options,
dated or inverse futures, significant-digit precision) are skipped, counted and logged once per load.
"""

from __future__ import annotations

import logging
from typing import Any

from oms.model import Instrument, Market
from oms.venues.ccxt.parse import BadValue, instrument_spec

log = logging.getLogger(__name__)


class UnknownSymbol(KeyError):
    """A symbol this venue does not list (or that ``load`` has not been called for)."""

    def __str__(self) -> str:
        return str(self.args[0])


class CcxtInstruments:
    """The instrument provider of one ccxt exchange instance."""

    def __init__(self, exchange: Any, exchange_name: str, market: Market | None = None) -> None:
        self.exchange = exchange
        self.exchange_name = exchange_name
        self.market = market  # None: both markets (a Spot and a USD-M instrument may share a venue id)
        self._by_symbol: dict[str, Instrument] = {}
        self._by_venue: dict[tuple[str, Market], str] = {}
        self.skipped: dict[str, str] = {}  # symbol -> why
        self.close_after_load = False

    async def load(self, reload: bool = False) -> dict[str, Instrument]:
        """Unified symbol -> Instrument for every market of this provider's market (Spot or USD-M)."""
        markets = await self.exchange.load_markets(reload)
        by_symbol: dict[str, Instrument] = {}
        by_venue: dict[tuple[str, Market], str] = {}
        skipped: dict[str, str] = {}
        mode = self.exchange.precisionMode
        for symbol, market in markets.items():
            try:
                inst = Instrument(instrument_spec(self.exchange_name, market, mode))
            except (BadValue, ValueError) as exc:
                skipped[symbol] = str(exc)
                continue
            if self.market is not None and inst.market is not self.market:
                continue
            by_symbol[symbol] = inst
            by_venue[(str(market["id"]), inst.market)] = symbol
        if skipped:
            log.info(
                "%s: skipped %d markets the model cannot hold, e.g. %s",
                self.exchange_name,
                len(skipped),
                next(iter(skipped.values())),
            )
        self._by_symbol, self._by_venue, self.skipped = by_symbol, by_venue, skipped
        if self.close_after_load:  # its own REST session is not needed until the next load
            await self.exchange.close()
        return dict(by_symbol)

    def instruments(self) -> list[Instrument]:
        return list(self._by_symbol.values())

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise UnknownSymbol(
                f"{self.exchange_name} has no instrument {symbol!r} ({len(self._by_symbol)} loaded)"
            ) from None

    def find(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def to_venue(self, symbol: str) -> str:
        """Unified symbol -> the exchange's own (``BTC/USDT:USDT`` -> ``BTCUSDT``)."""
        return self.instrument(symbol).spec.venue_symbol

    def from_venue(self, venue_symbol: str, market: Market | str | None = None) -> str:
        """The exchange's symbol -> unified (``BTCUSDT`` on usdm -> ``BTC/USDT:USDT``); ``market`` defaults to
        the provider's own."""
        market = market if market is not None else self.market
        if market is None:
            raise UnknownSymbol(f"{self.exchange_name} {venue_symbol!r}: say which market (spot or usdm)")
        try:
            return self._by_venue[(venue_symbol, Market(market))]
        except KeyError:
            raise UnknownSymbol(f"{self.exchange_name} has no {market} market {venue_symbol!r}") from None
