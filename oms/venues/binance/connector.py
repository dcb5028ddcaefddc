"""The Binance connector on python-binance: registered for ``library: python-binance``.

Each facet is built for one exchange market (Spot or USD-M) from a ``VenueContext``; the execution client and
the user stream of an account share one ``MarketSession`` (one python-binance client, one WebSocket API
connection that carries orders and, on Spot, the user-data subscription, and one order tracker).
"""

from __future__ import annotations

from oms.model import Market
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.execution import BinanceExecution
from oms.venues.binance.instruments import BinanceInstruments
from oms.venues.binance.market_data import BinanceMarketData
from oms.venues.binance.metadata import METADATA
from oms.venues.binance.user_data import BinanceUserData
from oms.venues.interface import Connector, InstrumentProvider, VenueContext
from oms.venues.metadata import Capabilities, VenueMetadata
from oms.venues.registry import register


def _binance(instruments: InstrumentProvider) -> BinanceInstruments:
    if not isinstance(instruments, BinanceInstruments):
        raise TypeError(f"the Binance connector needs its own instrument provider, not {type(instruments).__name__}")
    return instruments


@register
class BinanceConnector(Connector):
    library = "python-binance"

    def capabilities(self, exchange: str, market: Market) -> Capabilities:
        return METADATA[Market(market)].capabilities

    def metadata(self, exchange: str, market: Market) -> VenueMetadata:
        return METADATA[Market(market)]

    def instrument_provider(self, ctx: VenueContext) -> BinanceInstruments:
        return BinanceInstruments(ctx, BinanceSettings.from_options(ctx.options))

    def market_data_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> BinanceMarketData:
        return BinanceMarketData(ctx, _binance(instruments), BinanceSettings.from_options(ctx.options))

    def execution_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> BinanceExecution:
        return BinanceExecution(ctx, _binance(instruments), BinanceSettings.from_options(ctx.options))

    def user_data_stream(self, ctx: VenueContext, instruments: InstrumentProvider, execution) -> BinanceUserData:  # type: ignore[override]
        if not isinstance(execution, BinanceExecution):
            raise TypeError(
                f"the Binance user stream needs the Binance execution client, not {type(execution).__name__}"
            )
        return BinanceUserData(execution)
