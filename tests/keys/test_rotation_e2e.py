"""Key rotation end to end: real OpenBao (after `oms keys init`), nats-server, the local exchange and Prefect.

A trader thread keeps signed requests flowing with the key it got from the store, and embeds the rotation
listener that switches its credentials; the rotate-keys flow runs against it. Then each step is made to
fail in turn (a real failure where one is cheap to cause, the flow's drill otherwise) and the old key must
still work everywhere. At the end nothing the tests wrote holds a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import msgspec
import pytest
from aiohttp import web

from localex.engine import Exchange
from localex.engine.markets import default_specs
from localex.server.app import build_app
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.keys import venue
from oms.keys.provider import Credentials
from oms.keys.redact import install_redaction
from oms.keys.rotation import KeyRotationListener, RotateReply, alert_subject, rotate_subject
from oms.keys.scan import scan_tree
from oms.services import free_port
from tests.harness.servers import NatsHandle
from tests.keys.conftest import Vault, start_vault

ADMIN_TOKEN = "local-admin-token-for-tests"
PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class Localex:
    url: str
    exchange: Exchange

    def admin(self, method: str, path: str, body: dict | None = None):
        return venue.admin_call(self.url, method, path, body, ADMIN_TOKEN)

    def active_keys(self, account_id: str) -> set[str]:
        return {k.api_key for k in self.exchange.api_keys(account_id) if not k.revoked}

    def all_secrets(self) -> list[str]:
        return [k.secret for a in self.exchange.accounts() for k in self.exchange.api_keys(a.account_id)]


@pytest.fixture(scope="module")
def localex() -> Iterator[Localex]:
    """The local exchange in a thread, on its own engine (to look at its keys), admin token required."""
    limits = RateLimitConfig(spot_weight_per_minute=1_000_000, futures_weight_per_minute=1_000_000)
    config = ServerConfig(port=free_port(), rate_limits=limits, replay=False, admin_token=ADMIN_TOKEN)
    exchange = Exchange(clock=time.time_ns, seed=7, specs=default_specs())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(config, exchange), handle_signals=False)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, config.host, config.port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="localex-keys-test", daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield Localex(f"http://{config.host}:{config.port}", exchange)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, nats_server, prefect_server, localex) -> Iterator[tuple[Vault, Localex, NatsHandle]]:
    """OpenBao initialised by `oms keys init`, the environment the flow reads, and a redacted debug log."""
    log_file = tmp_path_factory.getbasetemp() / "logs" / "rotation-e2e.log"
    log_file.parent.mkdir(exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_redaction()
    port = localex.url.rsplit(":", 1)[1]
    env = {
        "OMS_NATS_URL": nats_server.url,
        "OMS_NATS_CREDENTIALS_DIR": str(nats_server.service.credentials_dir),  # the flow connects as `flows`
        "OMS_LOCAL_EXCHANGE_PORT": port,
        "OMS_LOCALEX_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            for vault in start_vault(tmp_path_factory.mktemp("rotation-vault")):
                yield vault, localex, nats_server
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def signed_get(url: str, creds: Credentials) -> tuple[int, str]:
    import requests

    query = urlencode({"timestamp": int(time.time() * 1000)})
    sig = hmac.new(creds.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    resp = requests.get(f"{url}/api/v3/account?{query}&signature={sig}", headers={"X-MBX-APIKEY": creds.api_key})
    return resp.status_code, resp.text[:200]


@dataclass
class Trader:
    """A daemon stand-in: signed requests in a loop with whatever key its connector holds right now."""

    url: str
    creds: Credentials
    ok_by_key: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    switches: list[str] = field(default_factory=list)

    async def set_credentials(self, creds: Credentials) -> None:
        async with self._lock:  # a request signed with the old key finishes before the switch confirms
            self.creds = creds
            self.switches.append(creds.fingerprint)

    async def run(self, stop: threading.Event) -> None:
        self._lock = asyncio.Lock()
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                async with self._lock:
                    creds = self.creds
                    query = urlencode({"timestamp": int(time.time() * 1000)})
                    sig = hmac.new(creds.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
                    async with session.get(
                        f"{self.url}/api/v3/account?{query}&signature={sig}", headers={"X-MBX-APIKEY": creds.api_key}
                    ) as resp:
                        body = await resp.text()
                        if resp.status == 200:
                            self.ok_by_key[creds.fingerprint] = self.ok_by_key.get(creds.fingerprint, 0) + 1
                        else:
                            self.failures.append(f"{creds.fingerprint}: {resp.status} {body[:100]}")
                await asyncio.sleep(0.005)

    def count(self, fp: str) -> int:
        return self.ok_by_key.get(fp, 0)


class HolderThread:
    """A process-like holder: its own loop, NATS connection, key store (daemon AppRole) and listener."""

    def __init__(self, vault: Vault, nats: NatsHandle, url: str, name: str, refuse_new_keys: bool = False):
        self.vault, self.nats, self.url, self.name = vault, nats, url, name
        self.refuse_new_keys = refuse_new_keys
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.trader: Trader | None = None
        self.store = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=f"holder-{name}", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _run(self) -> None:
        store = self.store = self.vault.store("daemon")
        self.trader = Trader(self.url, store.get("binance", "spot", "main"))
        first = self.trader.creds.fingerprint
        nc = await self.nats.connect("daemon")  # a key holder like the daemon
        listener = KeyRotationListener(nc, store, self.name)

        def refuse(creds: Credentials) -> None:
            if creds.fingerprint != first:
                raise RuntimeError(f"this holder cannot open a session with key {creds.fingerprint}")

        listener.register("binance", "main", refuse if self.refuse_new_keys else self.trader.set_credentials)
        await listener.start()
        task = asyncio.create_task(self.trader.run(self.stop))
        self.ready.set()
        while not self.stop.is_set():
            await asyncio.sleep(0.02)
        await task
        await listener.stop()
        await nc.close()

    def __enter__(self) -> HolderThread:
        self.thread.start()
        assert self.ready.wait(30) and self.error is None, self.error
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, self.error


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def main_account(stack) -> str:
    """binance/main on the local exchange, its key in Vault (with the venue's account id)."""
    vault, lx, _ = stack
    acct = lx.admin("POST", "/admin/v1/accounts", {})["accountId"]
    lx.admin("POST", f"/admin/v1/accounts/{acct}/fund", {"asset": "USDT", "amount": "1000"})
    key = lx.admin("POST", f"/admin/v1/accounts/{acct}/keys", {"permissions": ["SPOT", "WITHDRAW"]})
    vault.store("admin", cache=False).put(
        "binance", "spot", "main", key["apiKey"], key["secret"], ["spot", "withdraw"], venue_account=acct
    )
    return acct


def current(vault: Vault) -> Credentials:
    return vault.store("admin", cache=False).refresh("binance", "spot", "main")


def test_rotation_switches_a_trading_holder_live_and_revokes_the_old_key(stack, main_account):
    from flows.rotate_keys import rotate_keys

    vault, lx, nats_url = stack
    old = current(vault)
    with HolderThread(vault, nats_url, lx.url, "trader-a") as holder:
        trader = holder.trader
        wait_until(lambda: trader.count(old.fingerprint) >= 20, what="requests with the old key")
        lines = rotate_keys("binance", "main", markets=["spot"], retries=1, revoke_grace_s=0.2)
        new = current(vault)
        assert new.version == old.version + 1 and new.fingerprint != old.fingerprint
        assert trader.switches == [new.fingerprint]
        wait_until(lambda: trader.count(new.fingerprint) >= 20, what="requests with the new key")
        assert trader.failures == []  # no request failed across the switch and the revocation
    assert lines == [f"spot: {old.fingerprint} v{old.version} -> {new.fingerprint} v{new.version}"]
    assert "Holders confirmed: trader-a" in _artifact_markdown("rotate-keys-binance-main")
    status, body = signed_get(lx.url, old)
    assert status == 401 and "-2015" in body  # the exchange rejects the old key now
    assert signed_get(lx.url, new)[0] == 200
    assert lx.active_keys(main_account) == {new.api_key}
    assert new.venue_account == main_account and new.permissions == ("spot", "withdraw")


def _artifact_markdown(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return "\n".join(str(a.data) for a in found)


def test_artifact_records_fingerprints_never_secrets(stack, main_account):
    vault, lx, _ = stack
    text = _artifact_markdown("rotate-keys-binance-main")
    assert current(vault).fingerprint in text and "| revoke | ok |" in text
    assert all(secret not in text for secret in lx.all_secrets())


@pytest.mark.parametrize("step", ["read", "create", "verify", "write", "switch", "revoke"])
def test_a_failure_at_any_step_leaves_the_old_key_working(stack, main_account, step, monkeypatch):
    from flows.rotate_keys import RotationFailed, rotate_keys

    vault, lx, nats_url = stack
    old = current(vault)
    kwargs: dict = {"retries": 0, "revoke_grace_s": 0.0, "confirm_timeout_s": 10.0}
    if step == "create":  # the venue refuses: the account id in the key is unknown to it
        vault.store("admin", cache=False).put(
            "binance", "spot", "main", old.api_key, old.secret, old.permissions, venue_account="no_such_account"
        )
        old = current(vault)
    elif step == "read":  # the flow runs with an AppRole that may not read keys (the balance flows')
        kwargs["component"] = "balances"
    elif step == "write":  # the flow runs with an AppRole that may not write (the daemon's)
        kwargs["component"] = "daemon"
    elif step in ("verify", "revoke"):
        kwargs["drill"] = step
    alerts: list[bytes] = []

    async def listen_for_alert() -> None:
        nc = await nats_url.connect("reader")  # a dashboard
        sub = await nc.subscribe(alert_subject("binance", "main"))
        await nc.flush()
        started.set()
        msg = await sub.next_msg(timeout=60)
        alerts.append(msg.data)
        await nc.close()

    started = threading.Event()
    alert_thread = threading.Thread(target=lambda: asyncio.run(listen_for_alert()), daemon=True)
    alert_thread.start()
    assert started.wait(10)
    with HolderThread(vault, nats_url, lx.url, "trader-b") as holder:
        refusing = HolderThread(vault, nats_url, lx.url, "refuser", refuse_new_keys=True) if step == "switch" else None
        if refusing is not None:
            refusing.__enter__()
        try:
            wait_until(lambda: holder.trader.count(old.fingerprint) >= 5, what="requests with the old key")
            with pytest.raises(RotationFailed, match=f"failed at {step}"):
                rotate_keys("binance", "main", markets=["spot"], **kwargs)
            after = holder.trader.count(old.fingerprint)
            wait_until(lambda: holder.trader.count(old.fingerprint) >= after + 5, what="requests after the failure")
            assert holder.trader.failures == []
            assert holder.trader.creds.fingerprint == old.fingerprint
        finally:
            if refusing is not None:
                refusing.__exit__(None, None, None)
    alert_thread.join(30)
    now = current(vault)
    assert now.fingerprint == old.fingerprint and now.secret == old.secret and now.created_ns == old.created_ns
    assert now.version == (old.version + 2 if step in ("switch", "revoke") else old.version)
    assert signed_get(lx.url, old)[0] == 200
    assert lx.active_keys(main_account) == {old.api_key}  # a new key, if made, was revoked again
    alert = msgspec.json.decode(alerts[0])
    assert alert["step"] == step and alert["rolled_back"] is True
    if step == "create":
        vault.store("admin", cache=False).put(
            "binance", "spot", "main", old.api_key, old.secret, old.permissions, venue_account=main_account
        )


def test_operator_rotation_for_a_venue_without_a_key_api(stack, main_account, monkeypatch):
    """A live venue: the flow pauses for the operator twice (new key staged; old key revoked by hand)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.flow_runs import resume_flow_run

    from flows.rotate_keys import rotate_keys

    vault, lx, _ = stack
    monkeypatch.setenv("OMS_BINANCE_VENUE", "live")
    monkeypatch.setenv("OMS_BINANCE_SPOT_REST_URL", lx.url)  # "the venue" is the local exchange at a live URL
    old = current(vault)
    result: dict = {}

    def run() -> None:
        try:
            result["lines"] = rotate_keys("binance", "main", markets=["spot"], retries=0, revoke_grace_s=0.0)
        except BaseException as exc:
            result["error"] = exc

    def paused_run():
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"])))
            )
        return runs[0] if runs else None

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: paused_run() is not None or not thread.is_alive(), 60, "the pause for the new key")
    assert "error" not in result, result.get("error")
    run_id = paused_run().id
    made = lx.admin("POST", f"/admin/v1/accounts/{main_account}/keys", {"permissions": ["SPOT", "WITHDRAW"]})
    fp = vault.store("admin", cache=False).stage(
        "binance", "spot", "main", made["apiKey"], made["secret"], old.permissions
    )
    resume_flow_run(run_id, run_input={"staged_fingerprint": fp})
    wait_until(lambda: (r := paused_run()) is not None and r.state.state_details.pause_key == "revoke-spot"
               or not thread.is_alive(), 60, "the pause for revoking the old key")  # fmt: skip
    assert "error" not in result, result.get("error")
    lx.admin("DELETE", f"/admin/v1/keys/{old.api_key}")
    resume_flow_run(paused_run().id, run_input={"revoked_fingerprint": old.fingerprint})
    thread.join(60)
    assert "error" not in result, result.get("error")
    new = current(vault)
    assert new.fingerprint == fp and new.version == old.version + 1 and signed_get(lx.url, new)[0] == 200
    with pytest.raises(Exception, match="no staged key"):
        vault.store("rotation", cache=False).read_staged("binance", "spot", "main")  # staging cleared


async def _bad_message_reply(nats_url: NatsHandle) -> RotateReply:
    nc = await nats_url.connect("flows")  # the identity that announces rotations
    try:
        msg = await nc.request(rotate_subject("binance", "main"), b"{not json", timeout=10)
        return msgspec.json.decode(msg.data, type=RotateReply)
    finally:
        await nc.close()


def test_listener_answers_malformed_messages_and_keeps_running(stack, main_account):
    vault, lx, nats_url = stack
    with HolderThread(vault, nats_url, lx.url, "trader-c") as holder:
        reply = asyncio.run(_bad_message_reply(nats_url))
        assert reply.ok is False and reply.holder == "trader-c" and "malformed" in reply.error
        before = holder.trader.count(holder.trader.creds.fingerprint)
        wait_until(lambda: holder.trader.count(holder.trader.creds.fingerprint) > before + 3, what="more requests")
        assert holder.trader.failures == []


def test_daemon_restarted_during_a_vault_outage_trades_from_the_cache_and_recovers(stack, main_account):
    from flows.rotate_keys import rotate_keys

    vault, lx, nats_url = stack
    old = current(vault)
    vault.service.down()
    try:
        with HolderThread(vault, nats_url, lx.url, "trader-d") as holder:  # starts with Vault unreachable
            assert holder.trader.creds.fingerprint == old.fingerprint
            assert holder.store.metrics.served_from_cache >= 1 and holder.store.metrics.degraded == 1
            wait_until(lambda: holder.trader.count(old.fingerprint) >= 10, what="requests from the cached key")
            vault.service.up()
            rotate_keys("binance", "main", markets=["spot"], retries=1, revoke_grace_s=0.1)
            new = current(vault)
            wait_until(lambda: holder.trader.count(new.fingerprint) >= 10, what="requests with the new key")
            assert holder.store.metrics.degraded == 0 and holder.trader.failures == []
    finally:
        vault.service.up()


def test_cli_rotate_runs_the_flow(stack, main_account, capsys):
    vault, lx, _ = stack
    old = current(vault)
    assert vault.oms("keys", "rotate", "binance", "main", "--market", "spot") == 0
    new = current(vault)
    out = capsys.readouterr().out
    assert f"rotated binance/main spot: {old.fingerprint} v{old.version} -> {new.fingerprint} v{new.version}" in out
    assert signed_get(lx.url, old)[0] == 401 and signed_get(lx.url, new)[0] == 200
    assert all(secret not in out for secret in lx.all_secrets())


def test_rotation_on_a_ccxt_exchange_verifies_the_new_key_through_ccxt(stack, main_account, tmp_path, tmp_path_factory):
    """Binance configured for the ccxt connector: the flow's verify step is ccxt's signed fetch_balance."""
    import shutil

    import yaml

    from flows.rotate_keys import rotate_keys
    from oms.config import load_config

    vault, lx, nats_url = stack
    ccxt_dir = tmp_path / "ccxt-configs"
    shutil.copytree(load_config().dir, ccxt_dir)
    doc = yaml.safe_load((ccxt_dir / "exchanges.yaml").read_text())
    doc["exchanges"]["binance"].update(library="ccxt", ccxt_id="binance")
    (ccxt_dir / "exchanges.yaml").write_text(yaml.safe_dump(doc))
    old = current(vault)
    with HolderThread(vault, nats_url, lx.url, "trader-e") as holder:
        wait_until(lambda: holder.trader.count(old.fingerprint) >= 5, what="requests with the old key")
        rotate_keys("binance", "main", markets=["spot"], config_dir=str(ccxt_dir), retries=1, revoke_grace_s=0.1)
        new = current(vault)
        wait_until(lambda: holder.trader.count(new.fingerprint) >= 5, what="requests with the new key")
        assert holder.trader.failures == []
    assert new.version == old.version + 1 and signed_get(lx.url, old)[0] == 401
    log_text = (tmp_path_factory.getbasetemp() / "logs" / "rotation-e2e.log").read_text()
    assert f"verified: signed read (ccxt binance fetch_balance) of binance/main/spot with key {new.fingerprint}" in (
        log_text
    )


def test_nothing_written_holds_a_secret(stack, tmp_path_factory):
    """Logs (with DEBUG urllib3 lines), data dirs, the key cache, the audit log, JetStream, Prefect's DB."""
    vault, lx, _ = stack
    secrets = lx.all_secrets()
    assert len(secrets) >= 6
    roots = [tmp_path_factory.getbasetemp(), os.environ["PREFECT_HOME"], PROJECT / "data", PROJECT / "reports"]
    log_text = (tmp_path_factory.getbasetemp() / "logs" / "rotation-e2e.log").read_text()
    assert "signature=[REDACTED]" in log_text and "rotated binance/main/spot" in log_text
    assert [str(f) for f in scan_tree(roots, secrets)] == []
