"""A real local exchange per test module and the Binance connector's facets built on it through the real
shared machinery (``RateLimits``, ``ServerClock``), the way the factory builds them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.keys import Credentials
from oms.model import AccountId, Market
from oms.venues.binance import BinanceConnector
from oms.venues.binance.execution import BinanceExecution
from oms.venues.binance.instruments import BinanceInstruments
from oms.venues.binance.user_data import BinanceUserData
from oms.venues.clock import ServerClock
from oms.venues.interface import Endpoints, VenueContext
from oms.venues.ratelimit import AccountLimits, RateLimits
from tests.localex.conftest import LocalServer, free_port, start_server

FAST = {"ws_api_timeout_s": 1.0, "ws_cooldown_s": 1.0, "recv_window_ms": 1000, "silence_s": 30.0}
GENEROUS = AccountLimits(weight_per_minute=100_000, orders_per_10s=10_000, orders_per_day=1_000_000, ws_connections=5)


def local_endpoints(url: str, market: Market, ws_api_url: str | None = None) -> Endpoints:
    ws = "ws://" + url.split("://", 1)[1]
    if market is Market.SPOT:
        return Endpoints(url, ws, ws_api_url or f"{ws}/ws-api/v3", "local")
    return Endpoints(url, f"{ws}/fstream", ws_api_url or f"{ws}/ws-fapi/v1", "local")


@dataclass
class Clients:
    """One account's facets on one market."""

    ctx: VenueContext
    execution: BinanceExecution
    user: BinanceUserData
    account_id: str
    api_key: str
    secret: str


@dataclass
class Harness:
    server: LocalServer
    limits: RateLimits = field(default_factory=RateLimits)
    clocks: dict[Market, ServerClock] = field(default_factory=dict)
    instruments: dict[Market, BinanceInstruments] = field(default_factory=dict)
    opened: list[Clients] = field(default_factory=list)
    connector: BinanceConnector = field(default_factory=BinanceConnector)
    names: int = 0

    def clock(self, market: Market) -> ServerClock:
        if market not in self.clocks:
            self.clocks[market] = ServerClock(name=f"binance/{market.value}")
        return self.clocks[market]

    def context(
        self,
        name: str,
        market: Market,
        creds: Credentials | None = None,
        options: dict[str, Any] | None = None,
        ws_api_url: str | None = None,
        limits: AccountLimits = GENEROUS,
        refs: dict[str, str] | None = None,
    ) -> VenueContext:
        account = AccountId("binance", name)
        meta = self.connector.metadata("binance", market)
        return VenueContext(
            account=account,
            market=market,
            endpoints=local_endpoints(self.server.url, market, ws_api_url),
            limiter=self.limits.account(str(account), market.value, limits, meta),
            clock=self.clock(market),
            credentials=creds,
            account_refs=refs or {},
            options={**FAST, **(options or {})},
        )

    async def instrument_provider(self, market: Market) -> BinanceInstruments:
        if market not in self.instruments:
            provider = self.connector.instrument_provider(self.context("market_data", market))
            await provider.load()
            self.instruments[market] = provider
        return self.instruments[market]

    async def account(
        self,
        market: Market,
        *,
        spot: dict[str, str] | None = None,
        futures: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        ws_api_url: str | None = None,
        existing: tuple[str, str, str] | None = None,
        limits: AccountLimits = GENEROUS,
        refs: dict[str, str] | None = None,
        name: str | None = None,
    ) -> Clients:
        """A funded local-exchange account and its execution client and user stream (not yet subscribed)."""
        if existing is None:
            funds_spot = spot if spot is not None else {"USDT": "100000", "BTC": "2"}
            funds_fut = futures if futures is not None else {"USDT": "100000"}
            existing = self.server.new_account(spot=funds_spot, futures=funds_fut)
        account_id, key, secret = existing
        self.names += 1
        name = name or f"acct{self.names}"
        creds = Credentials("binance", market.value, name, key, secret)  # type: ignore[arg-type]
        ctx = self.context(name, market, creds, options, ws_api_url, limits, refs)
        instruments = await self.instrument_provider(market)
        execution = self.connector.execution_client(ctx, instruments)
        clock = self.clock(market)
        if clock.fetch is None:
            clock.bind(execution.server_time_ns)
        await clock.ensure_fresh()
        user = self.connector.user_data_stream(ctx, instruments, execution)
        clients = Clients(ctx, execution, user, account_id, key, secret)
        self.opened.append(clients)
        return clients

    async def close(self) -> None:
        async def close_one(c: Clients) -> None:
            await c.user.close()
            await c.execution.close()

        await asyncio.gather(*(close_one(c) for c in self.opened))


def server_config(**limits: Any) -> ServerConfig:
    """A local exchange with generous limits (``limits`` overrides ``RateLimitConfig`` fields)."""
    generous: dict[str, Any] = {
        "spot_weight_per_minute": 100_000,
        "futures_weight_per_minute": 100_000,
        "spot_orders_per_10s": 10_000,
        "futures_orders_per_10s": 10_000,
        "futures_orders_per_minute": 100_000,
    }
    rl = RateLimitConfig(**{**generous, **limits})
    return ServerConfig(port=free_port(), rate_limits=rl, speed=600.0, replay_interval_s=0.1)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    yield from start_server(server_config())


@pytest.fixture
async def harness(server: LocalServer) -> AsyncIterator[Harness]:
    h = Harness(server)
    try:
        yield h
    finally:
        await h.close()


def on_server(server: LocalServer, fn: Any) -> Any:
    """Run ``fn()`` on the local exchange's loop (its state is only touched there) and return the result."""

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), server.loop).result(10)


async def next_event(stream: Any, match: Any, timeout: float = 10.0) -> Any:
    """The next event of ``stream`` for which ``match(event)`` holds (others are skipped)."""

    async def find() -> Any:
        async for ev in stream:
            if match(ev):
                return ev
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), timeout)
