"""Fixtures for the ccxt connector: a real local exchange (one per module) and a fault proxy in front of it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import yaml

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.config import Config, load_config
from oms.keys import EnvKeys
from oms.venues.factory import AccountClients, VenueFactory
from tests.localex.conftest import LocalServer, free_port, start_server
from tests.venues.ccxt.faultproxy import FaultProxy


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A local exchange for one test module (generous rate limits so suites do not trip them)."""
    limits = RateLimitConfig(
        spot_weight_per_minute=100_000,
        futures_weight_per_minute=100_000,
        spot_orders_per_10s=10_000,
        futures_orders_per_10s=10_000,
        futures_orders_per_minute=100_000,
    )
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, speed=600.0, replay_interval_s=0.1))


@pytest.fixture
async def proxy(server: LocalServer) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the module's local exchange, for one test."""
    p = FaultProxy(server.url)
    await p.start(free_port())
    try:
        yield p
    finally:
        await p.stop()


@pytest.fixture(scope="session")
def ccxt_config(tmp_path_factory) -> Config:
    """configs/ with Binance served by the ccxt connector (``library: ccxt``, ``ccxt_id: binance``)."""
    d = tmp_path_factory.mktemp("ccxt-configs")
    for f in load_config().dir.glob("*.yaml"):
        shutil.copy(f, d / f.name)
    data = yaml.safe_load((d / "exchanges.yaml").read_text())
    data["exchanges"]["binance"]["library"] = "ccxt"
    data["exchanges"]["binance"]["ccxt_id"] = "binance"
    (d / "exchanges.yaml").write_text(yaml.safe_dump(data))
    return load_config(d)


class Venue:
    """The real clients factory for ccxt-on-binance against a local exchange, with keys for new accounts."""

    def __init__(self, server: LocalServer, config: Config, url: str | None = None) -> None:
        self.server = server
        self.env: dict[str, str] = {}
        self.factory = VenueFactory(config, EnvKeys(self.env), local_url=url or server.url)

    def fund(self, account: str, market: str, **balances: str) -> tuple[str, str, str]:
        """A new local-exchange account funded in ``market``'s wallet, keyed as config account ``account``."""
        spot = balances if market == "spot" else None
        futures = balances if market == "usdm" else None
        acct_id, key, secret = self.server.new_account(spot=spot, futures=futures)
        stem = f"OMS_KEY_BINANCE_{market}_{account}".upper()
        self.env[stem + "_API_KEY"], self.env[stem + "_SECRET"] = key, secret
        return acct_id, key, secret

    async def clients(self, account: str, market: str) -> AccountClients:
        return await self.factory.account_clients("binance", account, market)

    async def close(self) -> None:
        await self.factory.close()
