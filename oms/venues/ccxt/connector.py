"""The ccxt connector: every exchange ccxt supports (and Binance as a second path) through ccxt's unified
async REST API and ccxt.pro streams, in ``oms.model`` types.

One ccxt.pro instance per facet that holds connections: the instrument provider loads the markets with its
own and closes it; market data (public) and each account's execution client (shared with its user stream,
so the stream knows every order execution placed) get their own, with the provider's markets. ``ctx.options``:

* ``ccxt_id``: the ccxt exchange id (default: the account's exchange name);
* ``ccxt_options`` / ``ccxt_config``: merged into ccxt's options / constructor dict (see ``config``);
* ``timeout_ms``: ccxt's request timeout (10000);
* ``depth_levels``: levels kept by the depth stream (100);
* ``user_silence_s``: seconds of user-stream silence with open orders before a REST reconciliation (30).

Rate limits: ccxt's own token bucket is replaced by the shared ``RequestBudget`` (``session``), with
ccxt's per-endpoint costs as the weights. The clock: ccxt signs with ``ctx.clock.server_time_ms()``.
"""

from __future__ import annotations

from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE

from oms.model import Market
from oms.venues.ccxt.config import exchange_config
from oms.venues.ccxt.execution import CcxtExecution
from oms.venues.ccxt.instruments import CcxtInstruments
from oms.venues.ccxt.market_data import CcxtMarketData
from oms.venues.ccxt.metadata import metadata_for
from oms.venues.ccxt.session import Session, new_exchange
from oms.venues.ccxt.user_data import CcxtUserStream
from oms.venues.interface import (
    Connector,
    ExecutionClient,
    InstrumentProvider,
    MarketDataClient,
    UserDataStream,
    VenueContext,
)
from oms.venues.metadata import Capabilities, VenueMetadata
from oms.venues.registry import register


def ccxt_id_of(ctx: VenueContext) -> str:
    return str(ctx.options.get("ccxt_id") or ctx.exchange)


def new_session(ctx: VenueContext, *, private: bool) -> Session:
    """A ccxt.pro instance for ``ctx`` (with its key when ``private``), hooked to the limiter and clock."""
    creds = ctx.credentials if private else None
    e = ctx.endpoints
    config = exchange_config(
        ccxt_id_of(ctx),
        ctx.market,
        e.venue,
        e.rest_url,
        e.ws_url,
        e.ws_api_url,
        dict(ctx.options),
        creds.api_key if creds else None,
        creds.secret if creds else None,
    )
    return Session(new_exchange(ccxt_id_of(ctx), config), str(ctx.account), ctx.limiter, ctx.clock, config)


@register
class CcxtConnector(Connector):
    library = "ccxt"

    def capabilities(self, exchange: str, market: Market) -> Capabilities:
        return metadata_for(exchange, exchange, market).capabilities

    def metadata(self, exchange: str, market: Market) -> VenueMetadata:
        return metadata_for(exchange, exchange, market)

    def instrument_provider(self, ctx: VenueContext) -> InstrumentProvider:
        session = new_session(ctx, private=False)
        provider = CcxtInstruments(session.exchange, ctx.exchange, ctx.market)
        provider.close_after_load = True  # it only loads markets; the other facets get them from it
        return provider

    def market_data_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> MarketDataClient:
        inst = _ccxt_instruments(instruments)
        session = new_session(ctx, private=False)
        if inst.exchange.markets:
            session.exchange.set_markets(inst.exchange.markets, inst.exchange.currencies)
        depth = int(ctx.options.get("depth_levels", 100))
        return CcxtMarketData(session, ctx.exchange, inst, depth)

    def execution_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> ExecutionClient:
        inst = _ccxt_instruments(instruments)
        session = new_session(ctx, private=True)
        if inst.exchange.markets:  # reuse the provider's markets instead of loading them again
            session.exchange.set_markets(exact_markets(inst.exchange), inst.exchange.currencies)
        own = CcxtInstruments(session.exchange, ctx.exchange, ctx.market)
        own._by_symbol, own._by_venue = inst._by_symbol, inst._by_venue
        meta = metadata_for(ccxt_id_of(ctx), ctx.exchange, ctx.market)
        return CcxtExecution(ctx, session, own, meta.capabilities, meta)

    def user_data_stream(
        self, ctx: VenueContext, instruments: InstrumentProvider, execution: ExecutionClient
    ) -> UserDataStream:
        if not isinstance(execution, CcxtExecution):
            raise TypeError(f"the ccxt user stream needs the ccxt execution client, not {type(execution).__name__}")
        return CcxtUserStream(execution, float(ctx.options.get("user_silence_s", 30.0)))


def exact_markets(exchange: Any) -> dict[str, Any]:
    """The markets with the finest precision, so ccxt sends prices and quantities exactly as given.

    ccxt rounds every amount and price to the market's precision before sending (and refuses one that
    rounds to 0 without asking the venue). The interface wants them sent as the caller gave them (the caller
    checked them against the Instrument; a connector does not round), and the venue's own answer to a bad
    one, with its code: so the execution client's markets carry a precision ccxt never rounds to.
    """
    finest = 1e-18 if exchange.precisionMode == TICK_SIZE else 18
    out = {}
    for symbol, m in exchange.markets.items():
        precision = dict(m.get("precision") or {})
        precision["amount"] = precision["price"] = finest
        out[symbol] = {**m, "precision": precision}
    return out


def _ccxt_instruments(instruments: Any) -> CcxtInstruments:
    if not isinstance(instruments, CcxtInstruments):
        raise TypeError(f"the ccxt connector needs its own instrument provider, not {type(instruments).__name__}")
    return instruments
