"""Fixtures for the ccxt connector: a real local exchange (one per module) and a fault proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
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
