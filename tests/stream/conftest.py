"""The daemon's test bench: a real local exchange (replaying market data), a real nats-server with JetStream,
funded exchange accounts with their own keys, and a ``configs/`` folder written for them.

Keys reach the daemon as ``OMS_KEY_*`` environment variables (``oms.keys.EnvKeys``), the way a subprocess
``oms stream run --keys env`` reads them too. Every test gets its own account names (so the JetStream
history, the KV state and the leases of one test never meet another's).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import nats
import pytest
import yaml

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.bus.connect import NatsClientSettings, connect_as
from oms.config import load_config
from oms.config.loader import DEFAULT_CONFIG_DIR
from oms.keys import EnvKeys
from oms.model import OrderType, PlaceOrder, Side
from oms.model.commands import CommandRequest, decode_reply, encode_request
from oms.services import free_port
from oms.services.nats import NatsService
from stream.daemon import Daemon, DaemonSettings
from tests.harness.servers import loopback_settings, nats_settings
from tests.localex.conftest import LocalServer, start_server

FAST = {"ws_api_timeout_s": 2.0, "ws_cooldown_s": 1.0, "recv_window_ms": 5000, "silence_s": 30.0}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def exchange() -> Iterator[LocalServer]:
    limits = RateLimitConfig(
        spot_weight_per_minute=100_000,
        futures_weight_per_minute=100_000,
        spot_orders_per_10s=10_000,
        futures_orders_per_10s=10_000,
        futures_orders_per_minute=100_000,
    )
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, speed=600.0, replay_interval_s=0.1))


@pytest.fixture(scope="module")
def stream_nats(tmp_path_factory) -> Iterator[NatsService]:
    """nats-server with the platform's identities (oms.bus.auth): clients connect as daemon, trader, ..."""
    svc = NatsService(loopback_settings(tmp_path_factory.mktemp("stream-nats")))
    svc.up()
    try:
        yield svc
    finally:
        svc.down()


@dataclass
class Bench:
    """One test's configuration: accounts on the local exchange, a configs/ folder, its environment."""

    exchange: LocalServer
    nats: NatsService
    root: Path
    accounts: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (id, key, secret)
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = 0
    metrics_port: int = 0

    def __post_init__(self) -> None:
        # `oms stream run` as a subprocess finds the identities' seeds here (they live with the test's server)
        self.env["OMS_NATS_CREDENTIALS_DIR"] = str(self.nats.credentials_dir)

    @property
    def nats_url(self) -> str:
        return self.nats.address

    def nats_identity(self, identity: str = "daemon") -> NatsClientSettings:
        return nats_settings(self.nats, identity)

    async def connect(self, identity: str = "trader") -> nats.NATS:
        """A NATS client as one of the bus identities (a trader by default: it sends the commands)."""
        return await connect_as(self.nats_identity(identity))

    @property
    def config_dir(self) -> Path:
        return self.root / "configs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def account(self, name: str) -> str:
        return f"binance/{name}"

    def write(
        self,
        names: list[str],
        *,
        risk: dict | None = None,
        on_shutdown: str = "leave",
        symbols: tuple[str, ...] = ("BTC/USDT",),
        strategies: dict | None = None,
        risk_extra: dict | None = None,
        usdm: tuple[str, ...] = (),
        cash: dict[str, list[str]] | None = None,
    ) -> Path:
        """The bench's configs for ``names`` (Spot accounts; with ``usdm`` symbols, USD-M enabled on each of
        them too and those perpetuals streamed by the daemon; ``cash``: account name -> its ``cash_assets``)."""
        for name in names:
            if name not in self.accounts:
                acct = self.exchange.new_account(spot={"USDT": "100000", "BTC": "2"}, futures={"USDT": "100000"})
                self.accounts[name] = acct
                stem = f"OMS_KEY_BINANCE_{name.upper()}"
                self.env[stem + "_API_KEY"], self.env[stem + "_SECRET"] = acct[1], acct[2]
        cfg = self.config_dir
        if cfg.exists():
            shutil.rmtree(cfg)
        shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
        accounts = {
            n: {
                "type": "sub",
                "parent": "main",
                "api_key_vault_path": f"binance_{n}",
                "spot_enabled": True,
                "futures_enabled": bool(usdm),
                **({"cash_assets": (cash or {})[n]} if n in (cash or {}) else {}),
            }
            for n in names
        }
        accounts["main"] = {"type": "main", "api_key_vault_path": "binance_main"}
        (cfg / "accounts.yaml").write_text(
            yaml.safe_dump(
                {
                    "accounts": {"binance": accounts},
                    "account_routing": {
                        "default": "main",
                        "strategies": {k: v["account"] for k, v in (strategies or {}).items()},
                        "balance_rules": {"min_main_balance": 0, "max_sub_balance": 1000000},
                    },
                }
            )
        )
        (cfg / "strategies.yaml").write_text(
            yaml.safe_dump(
                {
                    "strategies": {
                        k: {kk: vv for kk, vv in v.items() if kk != "account"} for k, v in (strategies or {}).items()
                    }
                }
            )
        )
        ex = yaml.safe_load((cfg / "exchanges.yaml").read_text())
        ex["local_exchange"]["port"] = int(self.exchange.url.rsplit(":", 1)[1])
        ex["exchanges"] = {"binance": ex["exchanges"]["binance"]}
        ex["exchanges"]["binance"]["rate_limits"]["accounts"] = {}
        (cfg / "exchanges.yaml").write_text(yaml.safe_dump(ex))
        r = yaml.safe_load((cfg / "risk.yaml").read_text())
        r["accounts"] = {"binance": {n: (risk or {}).get(n, {}) for n in names if (risk or {}).get(n)}}
        r.update(risk_extra or {})  # more top-level sections of risk.yaml (e.g. exits)
        (cfg / "risk.yaml").write_text(yaml.safe_dump(r))
        # six ports at once, all held until each is chosen: one at a time, a busy machine can hand out the same
        # port twice (the config check then refuses the clash)
        self.health_port, self.metrics_port, monitor, bao, bao_cluster, prefect = distinct_ports(6)
        nats_port = int(self.nats_url.rsplit(":", 1)[1])
        (cfg / "stream.yaml").write_text(
            yaml.safe_dump(
                {
                    "daemon": {
                        "cpu_cores": [0],
                        "kernel_cores": [0],
                        "health_port": self.health_port,
                        "metrics_port": self.metrics_port,
                        "on_shutdown": on_shutdown,
                        "markets": {"binance": {"spot": list(symbols), **({"usdm": list(usdm)} if usdm else {})}},
                    },
                    "services": {
                        "data_dir": str(self.data_dir),
                        "nats": {"port": nats_port, "monitor_port": monitor},
                        "openbao": {"port": bao, "cluster_port": bao_cluster},
                        "prefect": {"port": prefect},
                        "local_exchange": {"enabled": False},
                    },
                }
            )
        )
        return cfg

    def daemon(self, accounts: list[str] | None = None, *, venue: dict | None = None, **kw) -> Daemon:
        """The daemon on this bench's config; ``venue``: connector options over ``FAST``."""
        cfg = load_config(self.config_dir, env={})
        settings = DaemonSettings.from_config(
            cfg,
            nats_url=self.nats_url,
            nats_identity=self.nats_identity("daemon"),
            local_url=self.exchange.url,
            venue_options={"binance": {**FAST, **(venue or {})}},
            **kw,
        )
        owned = accounts if accounts is not None else [self.account(n) for n in self.accounts]
        return Daemon(cfg, EnvKeys(self.env), settings, accounts=owned)

    def ticker(self, symbol: str = "BTCUSDT") -> Decimal:
        with urllib.request.urlopen(f"{self.exchange.url}/api/v3/ticker/bookTicker?symbol={symbol}", timeout=5) as r:
            doc = json.loads(r.read())
        return (Decimal(doc["bidPrice"]) + Decimal(doc["askPrice"])) / 2


@pytest.fixture
def bench(exchange, stream_nats, tmp_path) -> Bench:
    return Bench(exchange, stream_nats, tmp_path)


def unique(prefix: str = "acct") -> str:
    return f"{prefix}{next(_names)}"


@pytest.fixture
async def nc(stream_nats) -> AsyncIterator[nats.NATS]:
    """A trader's connection: it sends commands and the kill switch, and reads events and live state."""
    conn = await connect_as(nats_settings(stream_nats, "trader"))
    try:
        yield conn
    finally:
        await conn.close()


def place(
    account: str,
    qty: str,
    price: str | None,
    *,
    side: Side = Side.BUY,
    intent: str = "t",
    order_type: OrderType | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol="BTC/USDT",
        side=side,
        order_type=order_type or (OrderType.LIMIT if price else OrderType.MARKET),
        qty=qty,
        price=price,
        intent=intent,
    )


async def request(nc: nats.NATS, account: str, *commands, timeout: float = 20.0, raw: bytes | None = None):
    exchange, name = account.split("/")
    data = raw if raw is not None else encode_request(CommandRequest(request_id="r1", commands=tuple(commands)))
    msg = await nc.request(f"cmd.order.{exchange}.{name}", data, timeout=timeout)
    return decode_reply(msg.data)


def distinct_ports(n: int) -> list[int]:
    """``n`` different ports free on 127.0.0.1 right now (bound together, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def until(predicate, timeout: float = 20.0, what: str = "condition"):
    """Poll a real condition (an awaitable or plain callable) until it is truthy; its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
