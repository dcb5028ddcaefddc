"""Shared pieces of the flow tests. The flows' test venue: a local exchange in a thread (its admin API creates
and funds accounts), with a gate that can hold one request mid-way (how a test cuts a flow off while a
transfer is in flight), and the configuration, keys file and environment a flow run reads."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from localex.admin_client import AdminClient
from localex.engine import Exchange
from localex.engine.markets import default_specs
from localex.server.app import build_app
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.archive.market import load_default_paths
from oms.archive.records import Funding
from oms.model import Fill
from oms.services import free_port

PROJECT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "flows-test-admin-token"
WALLET = {"spot": "SPOT", "usdm": "FUTURES"}


@dataclass
class Gate:
    """Holds the answer to the ``nth`` request to ``path`` (1-based) until ``release``: the venue has executed
    it, the client has not heard back (``arrived`` is set then); what a crash mid-request leaves behind."""

    path: str = "/sapi/v1/sub-account/universalTransfer"
    method: str = "POST"
    nth: int = 0
    seen: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    released: asyncio.Event | None = None

    def hold(self, nth: int) -> None:
        self.nth, self.seen = nth, 0
        self.arrived.clear()

    def release(self, loop: asyncio.AbstractEventLoop) -> None:
        self.nth = 0
        if self.released is not None:
            loop.call_soon_threadsafe(self.released.set)

    def middleware(self):
        @web.middleware
        async def gate(request: web.Request, handler):
            held = request.method == self.method and request.path == self.path and self.nth
            if held:
                self.seen += 1
                held = self.seen == self.nth
            response = await handler(request)
            if held:  # executed by the venue; its answer waits until the test lets it go
                self.released = asyncio.Event()
                self.arrived.set()
                await self.released.wait()
            return response

        return gate


@dataclass
class Venue:
    url: str
    loop: asyncio.AbstractEventLoop
    exchange: Exchange
    gate: Gate

    def admin(self, method: str, path: str, body: dict | None = None):
        return AdminClient(self.url, ADMIN_TOKEN).call(method, path, body)

    def balance(self, account_id: str, market: str, asset: str = "USDT") -> Decimal:
        rows = self.admin("GET", f"/admin/v1/accounts/{account_id}/balances?wallet={WALLET[market]}")
        return next((Decimal(r["free"]) for r in rows if r["asset"] == asset), Decimal(0))

    def venue_transfers(self) -> list:
        return [t for t in self.exchange.transfers(None, limit=10**6) if t.type != "FUND"]


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    limits = RateLimitConfig(spot_weight_per_minute=1_000_000, futures_weight_per_minute=1_000_000)
    config = ServerConfig(port=free_port(), rate_limits=limits, admin_token=ADMIN_TOKEN, replay_interval_s=0.5)
    exchange = Exchange(clock=time.time_ns, seed=11, specs=default_specs())
    gate = Gate()
    app = build_app(config, exchange, paths=load_default_paths())  # books with liquidity that follows real prices
    app.middlewares.append(gate.middleware())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, config.host, config.port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="localex-flows-test", daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield Venue(f"http://{config.host}:{config.port}", loop, exchange, gate)
    finally:
        gate.release(loop)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


FLOWS = ("rebalance", "onboard-exchange")


@pytest.fixture
def clean_runs(prefect_server) -> Iterator[None]:
    """Leave the session's shared Prefect server as found: other tests count its flow runs."""
    yield
    from prefect.client.orchestration import get_client  # after the prefect_server fixture set the API URL

    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs():
            if client.read_flow(run.flow_id).name in FLOWS:
                client.delete_flow_run(run.id)


@dataclass
class Desk:
    """One exchange's accounts on the venue (our name -> the venue's account id), the files a run reads."""

    venue: Venue
    ids: dict[str, str]
    markets: dict[str, str]
    config_dir: Path
    data_dir: Path
    keys_file: Path
    env: dict[str, str]

    def balances(self) -> dict[str, Decimal]:
        return {n: self.venue.balance(self.ids[n], self.markets[n]) for n in self.ids}


def make_desk(venue: Venue, tmp: Path, funds: dict[str, str], nats, rules: dict | None = None) -> Desk:
    """The binance accounts of configs/accounts.yaml as venue accounts (main with its subs), funded on each
    one's rebalanced wallet (``funds``: name -> USDT), keys in a demo-keys file, a config copy with ``rules``."""
    config_dir = tmp / "configs"
    shutil.copytree(PROJECT / "configs", config_dir)
    doc = yaml.safe_load((config_dir / "accounts.yaml").read_text())
    if rules:
        doc["account_routing"]["balance_rules"].update(rules)
    (config_dir / "accounts.yaml").write_text(yaml.safe_dump(doc))
    accounts = doc["accounts"]["binance"]
    main = next(n for n, a in accounts.items() if a["type"] == "main")
    ids = {main: venue.admin("POST", "/admin/v1/accounts", {})["accountId"]}
    for name in accounts:
        if name != main:
            ids[name] = venue.admin("POST", "/admin/v1/accounts", {"parentId": ids[main]})["accountId"]
    emails = {a["accountId"]: a["email"] for a in venue.admin("GET", "/admin/v1/accounts")}
    markets = {n: "spot" if accounts[n].get("spot_enabled", True) else "usdm" for n in ids}
    rows = []
    for name, acct_id in ids.items():
        amount = funds.get(name, "0")
        if Decimal(amount) > 0:
            venue.admin("POST", f"/admin/v1/accounts/{acct_id}/fund",
                        {"asset": "USDT", "amount": amount, "wallet": WALLET[markets[name]]})  # fmt: skip
        key = venue.admin("POST", f"/admin/v1/accounts/{acct_id}/keys", {})
        rows.append({"accountId": name, "apiKey": key["apiKey"], "secret": key["secret"],
                     "permissions": ["SPOT", "FUTURES", "TRANSFER"], "email": emails[acct_id]})  # fmt: skip
    data_dir = tmp / "data"
    data_dir.mkdir()
    keys_file = tmp / "keys.json"
    keys_file.write_text(json.dumps({"keys": rows}))
    env = {"OMS_LOCAL_EXCHANGE_PORT": venue.url.rsplit(":", 1)[1], "OMS_DATA_DIR": str(data_dir),
           "OMS_NATS_URL": nats.url, "OMS_NATS_CREDENTIALS_DIR": str(nats.settings("flows").credentials_dir),
           "OMS_BINANCE_VENUE": "local"}  # fmt: skip
    return Desk(venue, ids, markets, config_dir, data_dir, keys_file, env)


# ---- the hand-checked fill sequence of tests/archive/test_pnl.py as trade and funding logs, and Prefect helpers
DAY = 86_400 * 10**9
T0 = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp()) * 10**9  # 29, 30 Nov, 1 Dec: a month boundary
PERP = "BTC/USDT:USDT"


def fill(acct: str, i: int, side: str, price: str, qty: str, t: int, fee: str, sym: str = PERP) -> Fill:
    return Fill(account=acct, symbol=sym, client_order_id=f"c{i}", venue_order_id=f"v{i}", trade_id=str(i),
                side=side, price=price, qty=qty, commission=fee, commission_asset="USDT", event_ns=t)  # fmt: skip


def write_known_fills(data: Path) -> Layout:
    """sub_a: long 3 (2 @ 100, 1 @ 110), sells 2 @ 120 (+40) and 2 @ 90 (-20, short 1), funding -0.5, buys 1 @ 80
    (+10); sub_b: long 1 @ 95 left open (marked at the symbol's last price of each day)."""
    layout = Layout(data)
    a = "binance/sub_a"
    with LogWriter(layout) as w:
        w.extend([
            fill(a, 1, "buy", "100", "2", T0 + 1, "0.2"),
            fill(a, 2, "buy", "110", "1", T0 + 2, "0.11"),
            fill(a, 3, "sell", "120", "2", T0 + DAY + 1, "0.24"),
            fill(a, 4, "sell", "90", "2", T0 + DAY + 2, "0.18"),
            fill(a, 5, "buy", "80", "1", T0 + 2 * DAY, "0.08"),
            fill("binance/sub_b", 1, "buy", "95", "1", T0, "0.095"),
        ])  # fmt: skip
        w.append(Funding(account=a, symbol=PERP, asset="USDT", amount="-0.5", rate="0.0001", event_ns=T0 + DAY + 5))
    return layout


def delete_runs_of(*flow_names: str) -> None:
    """Leave the session's shared Prefect server as found: other tests count its flow runs."""
    from prefect import get_client

    async def go() -> None:
        async with get_client() as client:
            for run_ in await client.read_flow_runs():
                if (await client.read_flow(run_.flow_id)).name in flow_names:
                    await client.delete_flow_run(run_.id)

    asyncio.run(go())


def artifacts() -> dict:
    """The latest artifact of each key on the Prefect server."""
    from prefect import get_client

    async def go():
        async with get_client() as client:
            return await client.read_artifacts()

    found: dict = {}
    for a in sorted(asyncio.run(go()), key=lambda a: a.created):
        found[a.key] = a
    return found
