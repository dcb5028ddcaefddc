"""Events of the model for the bus tests, and a nats-server each test may stop and restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from oms.bus.connect import connect_as
from oms.model import Fill, OrderEvent, OrderEventKind, OrderStatus, Side
from oms.services.nats import NatsService
from tests.harness.servers import loopback_settings, nats_settings


def fill(n: int, account: str = "binance/sub_mm", symbol: str = "BTC/USDT") -> Fill:
    return Fill(
        account=account,
        symbol=symbol,
        client_order_id=f"oms-{n // 4}",
        venue_order_id=str(1000 + n // 4),
        trade_id=str(n),
        side=Side.BUY,
        price="65000.10",
        qty="0.001",
        commission="0.0000010",
        commission_asset="BTC",
        event_ns=1_700_000_000_000_000_000 + n,
        recv_ns=1_700_000_000_000_000_500 + n,
    )


def order_event(n: int, account: str = "binance/sub_mm", symbol: str = "BTC/USDT:USDT") -> OrderEvent:
    return OrderEvent(
        account=account,
        symbol=symbol,
        client_order_id=f"oms-{n}",
        venue_order_id=str(n),
        kind=OrderEventKind.ACCEPTED,
        status=OrderStatus.NEW,
        side=Side.SELL,
        qty="1",
        price="70000",
        event_ns=1_700_000_000_000_000_000 + n,
    )


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsService]:
    """A nats-server of this test alone (JetStream on files), so the test may stop and restart it."""
    svc = NatsService(loopback_settings(tmp_path / "nats-data"))
    svc.up()
    try:
        yield svc
    finally:
        svc.down()


async def connect(svc: NatsService, identity: str = "daemon") -> nats.NATS:
    """Connected as a bus identity (the daemon by default: it publishes the events)."""
    return await connect_as(
        nats_settings(svc, identity),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.05,
        connect_timeout=2,
        allow_reconnect=True,
    )


@pytest.fixture
async def nc(nats_server) -> AsyncIterator[nats.NATS]:
    conn = await connect(nats_server.service)
    try:
        yield conn
    finally:
        await conn.close()
