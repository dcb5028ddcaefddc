"""Key rotation through the stream daemon against a real OpenBao, end to end, while the daemon trades.

The bench: the local exchange replaying market data, nats-server with the platform's identities, a Prefect
server, and OpenBao initialised by `oms keys init` (AppRoles, root revoked); the account's key goes in with
`oms keys put`. The daemon reads it through the ``daemon`` AppRole (``--keys vault``: ``keys_for(cfg,
"vault")``, with a short memory TTL and key check so the tests see Vault's state quickly).

1. The rotate-keys Prefect flow creates a new key on the local exchange, verifies it with a signed read,
   writes it as a new Vault version, tells the daemon on NATS; the daemon switches REST signer, WebSocket
   API and user-data stream and confirms; the flow revokes the old key. Meanwhile a trader keeps placing and
   cancelling orders: none fails or is lost, the user stream has no gap, the old key is refused afterwards,
   and `/metrics` shows the rotation and the key's new version.
2. OpenBao stopped, then sealed, mid-run: the daemon keeps trading on the key it holds (and, restarted while
   Vault is down, on its encrypted cache), with a warning and ``oms_keys_degraded 1``, and recovers when
   Vault is back.
At the end the secret scan finds no key secret in clear in the logs, data folders, JetStream or Prefect's DB.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import hvac
import pytest
import requests

from oms.cli.main import main as oms_main
from oms.cli.stream_cmd import keys_for
from oms.config import load_config
from oms.keys.bootstrap import approle_token, generate_root
from oms.keys.factory import open_store
from oms.keys.provider import Credentials
from oms.keys.redact import install_redaction
from oms.keys.rotation import registered_holders
from oms.keys.scan import scan_tree
from oms.keys.settings import VaultSettings
from oms.keys.store import VaultKeyStore
from oms.model import CancelOrder, Fill, Market, OrderEvent, OrderStatus
from oms.services.openbao import OpenBaoService
from oms.services.settings import ServiceSettings
from stream.daemon import Daemon, DaemonSettings
from tests.stream.conftest import FAST, Bench, place, request, unique, until
from tests.stream.test_daemon_orders import events

PROJECT = Path(__file__).resolve().parents[2]
VAULT_VARS = ("OMS_VAULT_ADDR", "OMS_VAULT_TOKEN", "VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN")


@dataclass
class VaultBench:
    bench: Bench
    name: str
    vault: OpenBaoService
    secrets: list[str] = field(default_factory=list)  # every key secret the test made (for the scan)

    @property
    def acct(self) -> str:
        return f"binance/{self.name}"

    def cfg(self):
        return load_config(self.bench.config_dir)

    def oms(self, *args: str) -> int:
        return oms_main([*args, "--config", str(self.bench.config_dir)])

    def current(self) -> Credentials:
        return open_store(self.cfg(), "admin", cache=False).refresh("binance", "spot", self.name)

    def daemon_store(self) -> VaultKeyStore:
        store = keys_for(self.cfg(), "vault")  # what `oms stream run --keys vault` reads with
        assert isinstance(store, VaultKeyStore) and store.settings.auth == "approle"
        store.ttl_s, store.retry_s = 0.5, 0.5  # see Vault's state within a check period
        return store

    def daemon(self, keys) -> Daemon:
        b = self.bench
        settings = DaemonSettings.from_config(
            self.cfg(),
            nats_url=b.nats_url,
            nats_identity=b.nats_identity("daemon"),
            local_url=b.exchange.url,
            venue_options={"binance": FAST},
            key_check_s=0.5,
        )
        return Daemon(self.cfg(), keys, settings, accounts=[self.acct])

    def root_client(self) -> hvac.Client:
        """A root token for this test's own administration (sealing): generated the way `oms keys init
        --generate-root` does, from the unseal key and the oms-admin AppRole."""
        cfg = self.cfg()
        s = VaultSettings.from_env("admin", cfg.data_dir(), self.vault.address, {})
        token = approle_token(self.vault.address, s.role_id or "", s.secret_id or "")
        root = generate_root(self.vault.address, token, self.vault.credentials()["unseal_key"])
        return hvac.Client(url=self.vault.address, token=root, timeout=30)


@pytest.fixture
def vb(bench, prefect_server, monkeypatch, tmp_path) -> Iterator[VaultBench]:
    name = unique("vrot")
    bench.write([name])
    for var in VAULT_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMS_NATS_URL", bench.nats_url)  # the flow connects as `flows`
    monkeypatch.setenv("OMS_NATS_CREDENTIALS_DIR", str(bench.nats.credentials_dir))
    monkeypatch.setenv("OMS_LOCALEX_ADMIN_TOKEN", bench.exchange.admin_token)
    log_file = tmp_path / "logs" / "daemon-vault-rotation.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root_log = logging.getLogger()
    old_level = root_log.level
    root_log.addHandler(handler)
    root_log.setLevel(logging.DEBUG)
    install_redaction()
    vault = OpenBaoService(ServiceSettings.from_config(load_config(bench.config_dir)))
    vault.up()
    try:
        v = VaultBench(bench, name, vault)
        assert v.oms("keys", "init", "--daemon-account", v.acct) == 0
        account_id, key, secret = bench.accounts[name]
        monkeypatch.setenv("OMS_TEST_KEY_SECRET", secret)
        assert v.oms("keys", "put", "binance", name, "--market", "spot", "--api-key", key,
                     "--secret-env", "OMS_TEST_KEY_SECRET", "--permissions", "spot",
                     "--venue-account", account_id) == 0  # fmt: skip
        monkeypatch.delenv("OMS_TEST_KEY_SECRET")
        v.secrets.append(secret)
        yield v
    finally:
        vault.down()
        root_log.removeHandler(handler)
        root_log.setLevel(old_level)
        handler.close()


def signed_status(url: str, creds: Credentials) -> tuple[int, str]:
    query = urlencode({"timestamp": int(time.time() * 1000)})
    sig = hmac.new(creds.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    resp = requests.get(f"{url}/api/v3/account?{query}&signature={sig}", headers={"X-MBX-APIKEY": creds.api_key})
    return resp.status_code, resp.text[:200]


async def scrape(port: int) -> str:
    """The daemon's /metrics page (asynchronously: the daemon serves it on this test's event loop)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        return await r.text()


def sample(page: str, name: str, **labels: str) -> float | None:
    """The value of one series of a Prometheus text page (labels must all match), or None."""
    for line in page.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


@dataclass
class Trader:
    """Places a resting order and cancels it, again and again, through the daemon's command subject."""

    vb: VaultBench
    price: str
    placed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        nc = await self.vb.bench.connect("trader")
        acct = self.vb.acct
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                [r] = (await request(nc, acct, place(acct, "0.001", self.price, intent=f"loop-{n}"))).results
                if not (r.ok and r.status is OrderStatus.NEW):
                    self.failures.append(f"place loop-{n}: {r}")
                    continue
                self.placed.append(r.client_order_id)
                cancel = CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=r.client_order_id)
                [c] = (await request(nc, acct, cancel)).results
                if not c.ok:
                    self.failures.append(f"cancel loop-{n}: {c}")
        finally:
            await nc.close()


async def bounded(what: str, coro, timeout_s: float = 120.0):
    """Await one step with its own bound, so a stuck step fails with its name (not the test's timeout)."""
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s:.0f} s: {what}") from None


def resting_price(bench: Bench) -> str:
    return str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))


@pytest.mark.timeout(600)  # OpenBao, Prefect and the daemon under a loaded CI machine: each step has its own bound
async def test_the_rotate_keys_flow_switches_the_trading_daemon_live(vb: VaultBench):
    from flows.rotate_keys import rotate_keys

    bench, name, acct = vb.bench, vb.name, vb.acct
    old = vb.current()
    d = vb.daemon(vb.daemon_store())
    await bounded("the daemon to start", d.start())
    trader_nc = await bench.connect("trader")
    flows_nc = await bench.connect("flows")
    try:
        assert d.health()[1]["accounts"][acct]["trading"], d.health()
        assert d.settings.holder in await registered_holders(flows_nc, "binance", name)
        price = resting_price(bench)
        [resting] = (await request(trader_nc, acct, place(acct, "0.001", price, intent="before"))).results
        assert resting.ok and resting.status is OrderStatus.NEW, resting
        user_data = d.sessions[acct].links[Market.SPOT].clients.user_data
        gaps_before = sample(await scrape(bench.metrics_port), "oms_reconnects_total", stream="user_stream") or 0.0
        trader = Trader(vb, price)
        task = asyncio.create_task(trader.run())
        await until(lambda: len(trader.placed) >= 5, 60, "orders with the old key")

        lines = await bounded("the rotation flow", asyncio.to_thread(
            rotate_keys, "binance", name, markets=["spot"], config_dir=str(bench.config_dir), retries=1,
            revoke_grace_s=0.5, confirm_timeout_s=60.0,
        ), 240)  # fmt: skip
        new = vb.current()
        vb.secrets.append(new.secret)
        assert lines == [f"spot: {old.fingerprint} v{old.version} -> {new.fingerprint} v{new.version}"]
        assert new.version == old.version + 1 and new.fingerprint != old.fingerprint
        after_revoke = len(trader.placed)
        await until(lambda: len(trader.placed) >= after_revoke + 5, 60, "orders with the new key")
        trader.stop.set()
        await asyncio.wait_for(task, 60)
        assert trader.failures == []  # not one order refused or lost across the switch and the revocation
        assert d.rotation.metrics.switched == 1 and d.rotation.metrics.failed == 0

        # the exchange refuses the old key; the daemon's REST/WebSocket API session signs with the new one
        status, body = signed_status(bench.exchange.url, old)
        assert status == 401 and "-2015" in body
        assert signed_status(bench.exchange.url, new)[0] == 200
        balances = await d.sessions[acct].links[Market.SPOT].clients.execution.balances()
        assert any(b.asset == "USDT" for b in balances)
        # the order from before the rotation is still the daemon's, and cancels with the new key
        assert resting.client_order_id in {o.client_order_id for o in d.gateway.orders.open_orders(
            d.sessions[acct].number)}  # fmt: skip
        cancel = CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=resting.client_order_id)
        [c] = (await request(trader_nc, acct, cancel)).results
        assert c.ok, c
        # the user-data stream moved to the new key without a gap: a fill after the revocation arrives
        [m] = (await request(trader_nc, acct, place(acct, "0.001", None, intent="market-after"))).results
        assert m.ok, m
        await until(lambda: d.account_health(acct)["open_orders"] == 0, 30, "no open order left")

        async def fill_stored():
            fills = [e for e in await events(trader_nc, "TRADES", f"trades.binance.{name}.>") if isinstance(e, Fill)]
            return any(f.client_order_id == m.client_order_id for f in fills)

        await until(fill_stored, 30, "the market order's fill from the user stream")
        assert user_data.notices["resubscribed: key rotated"] == 1
        assert [k for k in user_data.notices if k.startswith("resubscribed") and k != "resubscribed: key rotated"] == []
        page = await scrape(bench.metrics_port)
        assert (sample(page, "oms_reconnects_total", stream="user_stream") or 0.0) == gaps_before
        # every order the trader placed reached JetStream as NEW and then CANCELED: none lost
        stored = [e for e in await events(trader_nc, "ORDERS", f"orders.binance.{name}.>") if isinstance(e, OrderEvent)]
        statuses: dict[str, set] = {}
        for e in stored:
            statuses.setdefault(e.client_order_id, set()).add(e.status)
        for coid in trader.placed:
            assert {OrderStatus.NEW, OrderStatus.CANCELED} <= statuses.get(coid, set()), (coid, statuses.get(coid))
        # the key store's and the rotation's metrics on the daemon's /metrics
        rot = dict(exchange="binance", account=name)
        assert sample(page, "oms_keys_rotations_total", **rot, reason="rotate", outcome="switched") == 1.0
        assert sample(page, "oms_keys_version", **rot, market="spot") == float(new.version)
        assert sample(page, "oms_keys_age_seconds", **rot, market="spot") is not None
        assert sample(page, "oms_keys_degraded", component="daemon") == 0.0
        assert (sample(page, "oms_keys_cache_hits_total", component="daemon") or 0) > 0
        assert (sample(page, "oms_keys_vault_reads_total", component="daemon") or 0) >= 2
        assert sample(page, "oms_keys_vault_errors_total", component="daemon", reason="unreachable") == 0.0
        assert sample(page, "oms_keys_last_rotation_timestamp_seconds", **rot) is not None
        assert old.secret not in page and new.secret not in page and new.fingerprint not in page
    finally:
        await trader_nc.close()
        await flows_nc.close()
        await bounded("the daemon to stop", d.stop())
    _scan(vb, f"switched to key {new.fingerprint}", "verified: signed read (python-binance REST)", "signature=")


@pytest.mark.timeout(600)  # OpenBao, Prefect and the daemon under a loaded CI machine: each step has its own bound
async def test_a_rotation_failing_after_the_daemon_switched_rolls_the_daemon_back(vb: VaultBench):
    """The flow fails at its last step (revoking the old key; the flow's drill): it writes the old key back as a
    newer version, tells the daemon, which switches back and confirms, and revokes the new key; the daemon
    trades on with the old key throughout."""
    from flows.rotate_keys import RotationFailed, rotate_keys

    bench, name = vb.bench, vb.name
    old = vb.current()
    d = vb.daemon(vb.daemon_store())
    await bounded("the daemon to start", d.start())
    try:
        trader = Trader(vb, resting_price(bench))
        task = asyncio.create_task(trader.run())
        await until(lambda: len(trader.placed) >= 3, 60, "orders with the old key")
        with pytest.raises(RotationFailed, match="failed at revoke"):
            await bounded("the failing rotation flow", asyncio.to_thread(
                rotate_keys, "binance", name, markets=["spot"], config_dir=str(bench.config_dir), retries=0,
                revoke_grace_s=0.0, drill="revoke", confirm_timeout_s=60.0,
            ), 240)  # fmt: skip
        after = len(trader.placed)
        await until(lambda: len(trader.placed) >= after + 3, 60, "orders after the rollback")
        trader.stop.set()
        await bounded("the trader to stop", task, 60)
        assert trader.failures == []
        now = vb.current()
        assert now.fingerprint == old.fingerprint and now.version == old.version + 2
        admin = open_store(vb.cfg(), "admin", cache=False)
        admin._login()
        path = admin.path("binance", "spot", name)
        rolled = admin._client.secrets.kv.v2.read_secret_version(
            path, version=old.version + 1, mount_point="secret", raise_on_deleted_version=True
        )
        vb.secrets.append(rolled["data"]["data"]["api_secret"])  # the new key, revoked again: scanned for too
        assert signed_status(bench.exchange.url, Credentials(
            "binance", "spot", name, rolled["data"]["data"]["api_key"], vb.secrets[-1]))[0] == 401  # fmt: skip
        assert d.rotation.metrics.outcomes == {
            ("binance", name, "rotate", "switched"): 1,
            ("binance", name, "rollback", "switched"): 1,
        }
        assert signed_status(bench.exchange.url, old)[0] == 200  # the old key works; the new one was revoked
        page = await scrape(bench.metrics_port)
        rot = dict(exchange="binance", account=name)
        assert sample(page, "oms_keys_rotations_total", **rot, reason="rollback", outcome="switched") == 1.0
        assert sample(page, "oms_keys_version", **rot, market="spot") == float(old.version + 2)
    finally:
        await bounded("the daemon to stop", d.stop())
    _scan(vb, "rolling back")


@pytest.mark.timeout(600)  # two daemon starts and an OpenBao restart: each step has its own bound below
async def test_vault_stopped_or_sealed_mid_run_the_daemon_trades_on_and_recovers(vb: VaultBench, caplog):
    bench, acct = vb.bench, vb.acct
    key = vb.current()
    store = vb.daemon_store()
    d = vb.daemon(store)
    await bounded("the daemon to start", d.start())
    nc = await bench.connect("trader")
    price = resting_price(bench)
    orders = iter(range(1, 1000))

    async def trades() -> None:
        [r] = (await request(nc, acct, place(acct, "0.001", price, intent=f"outage-{next(orders)}"))).results
        assert r.ok and r.status is OrderStatus.NEW, r
        [c] = (await request(nc, acct, CancelOrder(account=acct, symbol="BTC/USDT",
                                                    client_order_id=r.client_order_id))).results  # fmt: skip
        assert c.ok, c

    async def degraded() -> float | None:
        return sample(await scrape(bench.metrics_port), "oms_keys_degraded", component="daemon")

    async def is_degraded(value: float) -> bool:
        return await degraded() == value

    try:
        await trades()
        assert await degraded() == 0.0
        # 1. OpenBao stopped: the key check falls back to the key held, warns, and the metric says so
        await bounded("OpenBao to stop", asyncio.to_thread(vb.vault.down))
        with caplog.at_level(logging.WARNING, logger="oms.keys.store"):
            await until(lambda: is_degraded(1.0), 30, "oms_keys_degraded 1 with Vault stopped")
            assert any("unreachable or sealed" in r.getMessage() and acct.split("/")[1] in r.getMessage()
                       for r in caplog.records)  # fmt: skip
        page = await scrape(bench.metrics_port)
        assert (sample(page, "oms_keys_served_from_cache_total", component="daemon") or 0) >= 1
        assert (sample(page, "oms_keys_vault_errors_total", component="daemon", reason="unreachable") or 0) >= 1
        await trades()
        # 2. the daemon restarted while Vault is still down: it starts from its encrypted cache file
        await bounded("the daemon to stop", d.stop())
        cache_file = bench.data_dir / "keys" / "cache" / "daemon.cache"
        assert cache_file.stat().st_mode & 0o777 == 0o600 and key.secret.encode() not in cache_file.read_bytes()
        d = vb.daemon(vb.daemon_store())
        await bounded("the daemon to start with Vault down", d.start())
        assert d.health()[1]["accounts"][acct]["trading"], d.health()
        assert d.keys.metrics.served_from_cache >= 1 and await degraded() == 1.0
        await trades()
        # 3. Vault back: the key check reads it again and the daemon leaves the degraded state
        await bounded("OpenBao to start again", asyncio.to_thread(vb.vault.up))
        await until(lambda: is_degraded(0.0), 60, "oms_keys_degraded 0 once Vault answers")
        # 4. sealed mid-run (Vault answers 503): degraded again, trading on; unsealed: recovered
        root = await bounded("a root token for sealing", asyncio.to_thread(vb.root_client))
        await bounded("OpenBao to seal", asyncio.to_thread(root.sys.seal))
        try:
            await until(lambda: is_degraded(1.0), 30, "oms_keys_degraded 1 with Vault sealed")
            await trades()
        finally:
            hvac.Client(url=vb.vault.address).sys.submit_unseal_key(vb.vault.credentials()["unseal_key"])
        await until(lambda: is_degraded(0.0), 60, "oms_keys_degraded 0 once Vault is unsealed")
        await trades()
        root.auth.token.revoke_self()
        assert d.keys.metrics.vault_denied == 0 and d.rotation.metrics.check_failures == 0
    finally:
        await nc.close()
        await bounded("the daemon to stop", d.stop())
    _scan(vb, "is unreachable or sealed", "answers again")


def _scan(vb: VaultBench, *logged: str) -> None:
    """No key secret in clear anywhere this test wrote: logs, the data folder (trade logs, key cache, OpenBao's
    audit log), JetStream's store, Prefect's database, the project's data/ and reports/."""
    roots = [vb.bench.root, vb.bench.nats.settings.data_dir, os.environ["PREFECT_HOME"], PROJECT / "data",
             PROJECT / "reports"]  # fmt: skip
    log_text = (vb.bench.root / "logs" / "daemon-vault-rotation.log").read_text()
    for text in logged:  # the log did capture the daemon and the flow (DEBUG, signed URLs included)
        assert text in log_text, text
    assert [str(f) for f in scan_tree(roots, vb.secrets)] == []
