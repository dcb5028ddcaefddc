"""Build each account's venue clients from ``configs/`` with keys from a ``KeyProvider``.

    factory = VenueFactory(load_config(), DemoKeysFile("data/localex-demo-keys.json"))
    clients = await factory.account_clients("binance", "sub_mm", "spot")
    event = await clients.execution.place(cmd.with_client_order_id())
    ...
    await factory.close()

For each account and market the factory takes the exchange's ``library`` (``configs/exchanges.yaml``) to pick
the registered ``Connector`` (``oms.venues.registry``), the endpoints of its ``venue`` (``local``: the local
exchange of ``local_exchange``; ``live``: the listed URLs, which the ``OMS_<EXCHANGE>_<MARKET>_*_URL``
variables override), the account's rate-limit budget (``rate_limits``; accounts on one exchange market share
the IP budget), one server clock per exchange market, and the account's credentials from the key provider.
Instruments and market data are built once per exchange market and shared.

Errors name what is wrong: an unknown exchange or account, a market the account has not enabled, a library
without a registered connector, a missing key (the provider's ``KeyNotFound``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oms.config import Config
from oms.keys.provider import Credentials, KeyProvider
from oms.model import AccountId, Market
from oms.venues.clock import ServerClock
from oms.venues.interface import (
    Connector,
    Endpoints,
    ExecutionClient,
    InstrumentProvider,
    MarketDataClient,
    UserDataStream,
    VenueContext,
)
from oms.venues.metadata import Capabilities, VenueMetadata
from oms.venues.ratelimit import AccountLimits, RateLimits
from oms.venues.registry import connector_for

PUBLIC = "market_data"  # the account name of the public (unsigned) contexts

# The local exchange's path layout (it speaks Binance's wire for every exchange it stands in for).
LOCAL_PATHS = {
    Market.SPOT: {"ws": "", "ws_api": "/ws-api/v3"},
    Market.USDM: {"ws": "/fstream", "ws_api": "/ws-fapi/v1"},
}


@dataclass
class AccountClients:
    """One account's clients on one market, and the key switch that keeps their sessions."""

    context: VenueContext
    instruments: InstrumentProvider
    execution: ExecutionClient
    user_data: UserDataStream
    capabilities: Capabilities
    metadata: VenueMetadata

    @property
    def account(self) -> AccountId:
        return self.context.account

    async def set_credentials(self, creds: Credentials) -> None:
        """Switch the execution client, then the user stream, to ``creds`` (see ``ExecutionClient``)."""
        await self.execution.set_credentials(creds)
        await self.user_data.set_credentials(creds)

    async def rotate(self, keys: KeyProvider) -> Credentials:
        """Read the account's current key from ``keys`` and switch to it; returns it."""
        ctx = self.context
        creds = keys.get(ctx.exchange, ctx.market.value, ctx.account.name)  # type: ignore[arg-type]
        await self.set_credentials(creds)
        return creds

    async def close(self) -> None:
        await self.user_data.close()
        await self.execution.close()


class VenueFactory:
    def __init__(
        self,
        config: Config,
        keys: KeyProvider,
        *,
        limits: RateLimits | None = None,
        local_url: str | None = None,
        account_refs: Mapping[str, Mapping[str, str]] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        connectors: Callable[[str], Connector] = connector_for,
    ):
        """``local_url`` overrides the local exchange's address (tests start one on a free port);
        ``account_refs`` gives the venue's own ids of accounts (exchange -> name -> id, e.g. Binance
        sub-account emails; default: the key provider's ``email(name)`` where it has one); ``options`` adds
        library options per exchange to those from the config."""
        self.config = config
        self.keys = keys
        self.limits = limits or RateLimits()
        self.local_url = (local_url or config.exchanges.local_exchange.base_url).rstrip("/")
        self._refs = {ex: dict(refs) for ex, refs in (account_refs or {}).items()}
        self._options = {ex: dict(o) for ex, o in (options or {}).items()}
        self._connectors = connectors
        self._connector: dict[str, Connector] = {}
        self._clocks: dict[tuple[str, Market], ServerClock] = {}
        self._instruments: dict[tuple[str, Market], InstrumentProvider] = {}
        self._market_data: dict[tuple[str, Market], MarketDataClient] = {}
        self._accounts: dict[tuple[str, str, Market], AccountClients] = {}
        self._lock = asyncio.Lock()

    # --- pieces --------------------------------------------------------------------------------------------
    def _exchange(self, exchange: str):
        try:
            return self.config.exchanges.exchanges[exchange]
        except KeyError:
            known = ", ".join(sorted(self.config.exchanges.exchanges))
            raise KeyError(f"exchange {exchange!r} is not in configs/exchanges.yaml (it has: {known})") from None

    def connector(self, exchange: str) -> Connector:
        library = self._exchange(exchange).library
        if library not in self._connector:
            self._connector[library] = self._connectors(library)
        return self._connector[library]

    def endpoints(self, exchange: str, market: Market | str) -> Endpoints:
        market = Market(market)
        ex = self._exchange(exchange)
        if market.value not in ex.markets:
            raise KeyError(f"exchange {exchange!r} has no {market.value} market in configs/exchanges.yaml")
        if ex.venue == "local":
            ws = "ws://" + self.local_url.split("://", 1)[1]
            paths = LOCAL_PATHS[market]
            return Endpoints(self.local_url, ws + paths["ws"], ws + paths["ws_api"], venue="local")
        live = ex.markets[market.value].live
        return Endpoints(live.rest_url, live.ws_url, live.ws_api_url, venue="live")

    def account_limits(self, exchange: str, account: str, market: Market | str) -> AccountLimits:
        budget = self._exchange(exchange).budget(account)
        weight = budget.spot_weight_per_minute if Market(market) is Market.SPOT else budget.futures_weight_per_minute
        return AccountLimits(weight, budget.orders_per_10s, budget.orders_per_day, budget.ws_connections)

    def clock(self, exchange: str, market: Market | str) -> ServerClock:
        key = (exchange, Market(market))
        if key not in self._clocks:
            self._clocks[key] = ServerClock(name=f"{exchange}/{key[1].value}")
        return self._clocks[key]

    def account_refs(self, exchange: str) -> dict[str, str]:
        refs = dict(self._refs.get(exchange, {}))
        email = getattr(self.keys, "email", None)
        if callable(email):
            for name in self.config.accounts.get(exchange, {}):
                if name not in refs and (ref := email(name)):
                    refs[name] = ref
        return refs

    def options(self, exchange: str) -> dict[str, Any]:
        ex = self._exchange(exchange)
        out: dict[str, Any] = {"library": ex.library, "venue": ex.venue}
        if ex.ccxt_class():
            out["ccxt_id"] = ex.ccxt_class()
        out.update(self._options.get(exchange, {}))
        return out

    def context(
        self, exchange: str, account: str, market: Market | str, credentials: Credentials | None = None
    ) -> VenueContext:
        """The context of one account and market (``account`` ``market_data`` for the public one)."""
        market = Market(market)
        connector = self.connector(exchange)
        metadata = connector.metadata(exchange, market)
        acct = AccountId(exchange, account)
        limiter = self.limits.account(str(acct), market.value, self.account_limits(exchange, account, market), metadata)
        return VenueContext(
            account=acct,
            market=market,
            endpoints=self.endpoints(exchange, market),
            limiter=limiter,
            clock=self.clock(exchange, market),
            credentials=credentials,
            account_refs=self.account_refs(exchange),
            options=self.options(exchange),
        )

    # --- shared per exchange market ------------------------------------------------------------------------
    async def instruments(self, exchange: str, market: Market | str) -> InstrumentProvider:
        """The exchange market's instrument provider, loaded (built and loaded once)."""
        key = (exchange, Market(market))
        async with self._lock:
            if key not in self._instruments:
                provider = self.connector(exchange).instrument_provider(self.context(exchange, PUBLIC, key[1]))
                await provider.load()
                self._instruments[key] = provider
            return self._instruments[key]

    async def market_data(self, exchange: str, market: Market | str) -> MarketDataClient:
        key = (exchange, Market(market))
        instruments = await self.instruments(exchange, key[1])
        if key not in self._market_data:
            ctx = self.context(exchange, PUBLIC, key[1])
            self._market_data[key] = self.connector(exchange).market_data_client(ctx, instruments)
        return self._market_data[key]

    # --- per account ---------------------------------------------------------------------------------------
    async def account_clients(self, exchange: str, account: str, market: Market | str) -> AccountClients:
        """The account's clients on ``market`` (built once; the clock is measured on first use)."""
        market = Market(market)
        key = (exchange, account, market)
        if key in self._accounts:
            return self._accounts[key]
        self._exchange(exchange)
        acct_cfg = self.config.accounts.get(exchange, {}).get(account)
        if acct_cfg is None:
            known = ", ".join(sorted(self.config.accounts.get(exchange, {})))
            raise KeyError(f"account {exchange}/{account} is not in configs/accounts.yaml (it has: {known})")
        if market.value not in acct_cfg.markets():
            raise ValueError(f"account {exchange}/{account} has {market.value} disabled in configs/accounts.yaml")
        instruments = await self.instruments(exchange, market)
        creds = self.keys.get(exchange, market.value, account)  # type: ignore[arg-type]
        ctx = self.context(exchange, account, market, creds)
        connector = self.connector(exchange)
        execution = connector.execution_client(ctx, instruments)
        clock = self.clock(exchange, market)
        if clock.fetch is None:
            clock.bind(execution.server_time_ns)
        await clock.ensure_fresh()
        clients = AccountClients(
            context=ctx,
            instruments=instruments,
            execution=execution,
            user_data=connector.user_data_stream(ctx, instruments, execution),
            capabilities=connector.capabilities(exchange, market),
            metadata=connector.metadata(exchange, market),
        )
        self._accounts[key] = clients
        return clients

    async def all_account_clients(self) -> dict[tuple[str, str, Market], AccountClients]:
        """Clients of every configured account on every market it has enabled."""
        for exchange, accounts in self.config.accounts.items():
            for name, cfg in accounts.items():
                for market in cfg.markets():
                    await self.account_clients(exchange, name, market)
        return dict(self._accounts)

    async def close(self) -> None:
        for clients in self._accounts.values():
            await clients.close()
        for md in self._market_data.values():
            await md.close()
        self._accounts.clear()
        self._market_data.clear()
