"""What the reconciliation tests share: a gateway over real kernels, JetStream on the session's nats-server,
and accounts on a local exchange reached through a real connector (python-binance or ccxt)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from nats.aio.client import Client as NATS

from kernels.positions import update_mark
from kernels.state import AccountIndex, KernelState
from oms.bus import BusSettings, EventPublisher, LiveState, Outbox, ensure_bucket, ensure_streams
from oms.model import Market
from oms.venues.ccxt.connector import CcxtConnector
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.reconcile import Reconciler, ReconcileTarget
from tests.venues.binance.conftest import Clients, Harness

SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"
BUS = BusSettings()  # file streams, as every other test of the shared session server creates them
CCXT_OPTIONS = {"ccxt_id": "binance", "library": "ccxt", "venue": "local"}


def harness_for(server, library: str) -> tuple[Harness, dict]:
    """A connector harness on ``server`` and the options its contexts need."""
    if library == "ccxt":
        return Harness(server, connector=CcxtConnector()), dict(CCXT_OPTIONS)
    return Harness(server), {}


def spot_bid(server) -> str:
    """The local exchange's best Spot bid for BTCUSDT (public REST, like any client would read it)."""
    with urllib.request.urlopen(f"{server.url}/api/v3/depth?symbol=BTCUSDT&limit=5", timeout=5) as resp:
        return json.loads(resp.read())["bids"][0][0]


def below(price: str, frac: float = 0.95) -> str:
    """A resting buy price ``frac`` of ``price`` (two decimals: the Spot tick)."""
    return f"{Decimal(price) * Decimal(str(frac)):.2f}"


def unique(prefix: str = "r") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Bus:
    nc: NATS
    publisher: EventPublisher
    live: LiveState

    @property
    def js(self):
        return self.publisher.js

    async def count(self, stream: str, subject: str) -> int:
        info = await self.js.stream_info(stream, subjects_filter=subject)
        return sum((info.state.subjects or {}).values())

    async def close(self) -> None:
        await self.publisher.close()
        await self.nc.close()


async def connect_bus(nats_server, outbox_dir) -> Bus:
    """The daemon's bus pieces on ``nats_server`` (tests.harness NatsHandle), connected as the daemon."""
    nc = await nats_server.connect("daemon")
    js = nc.jetstream()
    await ensure_streams(js, BUS)
    kv = await ensure_bucket(js, BUS.state_bucket)
    publisher = EventPublisher(nc, Outbox(outbox_dir))
    publisher.start()
    return Bus(nc, publisher, LiveState(kv))


@dataclass
class Daemon:
    """The parts of a daemon that reconciliation works on: kernel state, instruments, gateway."""

    gateway: OrderGateway
    names: list[str]
    targets: list[ReconcileTarget] = field(default_factory=list)


async def new_daemon(harness: Harness, names: Sequence[str], markets: Sequence[Market] = (Market.SPOT,)) -> Daemon:
    """A fresh gateway (as after a restart) for accounts ``names`` with the venue's BTC instruments."""
    state = KernelState(n_accounts=max(1, len(names)), n_instruments=4)
    table = InstrumentTable(state)
    for market in markets:
        provider = await harness.instrument_provider(market)
        instruments = await provider.load()
        table.add("binance", instruments[SPOT if market is Market.SPOT else PERP])
    gw = OrderGateway(state, AccountIndex([("binance", n) for n in names]), table)
    return Daemon(gw, list(names))


def set_mark(daemon: Daemon, symbol: str, price: str) -> None:
    """The instrument's mark (the risk kernel refuses orders on an instrument without one)."""
    i, ins = daemon.gateway.instruments.lookup("binance", symbol)
    update_mark(*daemon.gateway.state.blocks, i, ins.mark_to_units(price))


def reconciler(daemon: Daemon, bus: Bus, **kw) -> Reconciler:
    return Reconciler(daemon.gateway, bus.js, bus.publisher, bus.live, **kw)


def target(clients: Clients, market: Market = Market.SPOT, pending=()) -> ReconcileTarget:
    return ReconcileTarget(clients.execution, (SPOT if market is Market.SPOT else PERP,), tuple(pending))
