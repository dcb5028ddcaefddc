"""The rotate-keys flow: a new API key per account and market, switched live, the old key revoked.

For each market of the account, in order:

1. ``read``: the current key from Vault (the ``oms-rotation`` AppRole);
2. ``create``: a new key with the same permissions: on the local exchange through its admin API; on a real
   venue the flow pauses with a Prefect input form and the operator creates the key on the venue, stores it
   with ``oms keys stage`` and resumes with the fingerprint it printed;
3. ``verify``: a signed account read with the new key, through the exchange's library (``oms.keys.verify``:
   Binance's signed REST read for python-binance, ccxt's ``fetch_balance`` for a ccxt exchange);
4. ``write``: the new key as a new Vault version (check-and-set against the version read);
5. ``switch``: ``keys.rotate.{exchange}.{account}`` on NATS; every registered holder re-reads the key,
   calls its connectors' ``set_credentials`` and confirms (``oms.keys.rotation``);
6. ``revoke``: the old key on the venue (after ``revoke_grace_s`` for requests signed just before the switch).

A failure at any step (after the task's retries with back-off) rolls back: the old key is written back as a
newer version and announced, the new key is revoked on the venue, an alert goes to
``alerts.keys.{exchange}.{account}``, and the flow fails; the old key keeps working throughout. A markdown
artifact records what changed: fingerprints, versions, holders, timings; never a secret. ``drill`` makes
the flow fail on purpose at a step, to check the rollback in production.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from oms.bus.connect import NatsClientSettings, connect_as
from oms.config import load_config
from oms.keys import venue
from oms.keys.factory import open_store
from oms.keys.provider import Credentials, KeyStoreError
from oms.keys.redact import install_redaction, redact
from oms.keys.rotation import RotateRequest, RotationAlert, alert_subject, announce, registered_holders
from oms.keys.store import VaultKeyStore
from oms.keys.verify import verify_key

STEPS = ("read", "create", "verify", "write", "switch", "revoke")
Drill = Literal["", "create", "verify", "write", "switch", "revoke"]


class RotationFailed(Exception):
    """The rotation of one account's key failed and was rolled back (the message says how far)."""


class OperatorNewKey(RunInput):
    """Create the new key on the venue, store it with `oms keys stage EXCHANGE ACCOUNT --market M`, then resume
    with the fingerprint that command printed."""

    staged_fingerprint: str


class OperatorRevokedKey(RunInput):
    """Revoke the old key on the venue, then resume with its fingerprint to confirm."""

    revoked_fingerprint: str


@dataclass
class Target:
    """Everything one rotation needs to know about an account and where its services are."""

    exchange: str
    account: str
    market: str
    venue: str  # local | live
    localex_url: str
    rest_url: str
    nats: NatsClientSettings  # the `flows` identity (oms.bus.auth)
    admin_token: str | None = field(repr=False)
    store: VaultKeyStore = field(repr=False)
    config: object = field(default=None, repr=False)  # the loaded oms.config.Config (for the verify step)


@dataclass
class Record:
    """What the artifact shows for one market."""

    market: str
    old: str = ""
    new: str = ""
    old_version: int = 0
    new_version: int = 0
    holders: list[str] = field(default_factory=list)
    steps: list[tuple[str, str, float]] = field(default_factory=list)  # step, outcome, seconds
    outcome: str = "pending"


def _drill(drill: str, step: str) -> None:
    if drill == step:
        raise KeyStoreError(f"drill: deliberate failure at step {step!r}")


def _backoff(retries: int) -> list[float]:
    return [min(2.0**i, 30.0) for i in range(max(retries, 1))]


@task(name="read-current-key", cache_policy=NO_CACHE, persist_result=False)
def read_current(t: Target) -> Credentials:
    return t.store.refresh(t.exchange, t.market, t.account)  # type: ignore[arg-type]


@task(name="create-key", cache_policy=NO_CACHE, persist_result=False)
def create_on_venue(t: Target, old: Credentials, drill: str) -> Credentials:
    _drill(drill, "create")
    if not old.venue_account:
        raise KeyStoreError(f"{t.exchange}/{t.account}/{t.market}: the key has no venue_account to create a key for")
    label = f"oms rotation of {t.exchange}/{t.account}/{t.market}"
    made = venue.create_key(t.localex_url, old.venue_account, list(old.permissions), label, t.admin_token)
    return Credentials(
        t.exchange,
        t.market,  # type: ignore[arg-type]
        t.account,
        made["apiKey"],
        made["secret"],
        old.permissions,
        venue_account=old.venue_account,
    )


@task(name="verify-key", cache_policy=NO_CACHE, persist_result=False)
def verify(t: Target, new: Credentials, drill: str) -> None:
    _drill(drill, "verify")
    if t.config is None:
        venue.signed_read(t.rest_url, new)
        return
    get_run_logger().info("verified: %s", verify_key(t.config, new, local_url=t.localex_url))


@task(name="write-key", cache_policy=NO_CACHE, persist_result=False)
def write(t: Target, creds: Credentials, cas: int, drill: str = "") -> Credentials:
    _drill(drill, "write")
    return t.store.put(
        t.exchange,
        t.market,  # type: ignore[arg-type]
        t.account,
        creds.api_key,
        creds.secret,
        creds.permissions,
        expires_ns=creds.expires_ns,
        venue_account=creds.venue_account,
        cas=cas,
        created_ns=creds.created_ns,  # 0 for a new key (now); the old key's own time when restored
    )


@task(name="switch-holders", cache_policy=NO_CACHE, persist_result=False)
def switch(
    t: Target, creds: Credentials, rotation_id: str, reason: str, timeout_s: float, drill: str = ""
) -> list[str]:
    """Announce ``creds`` and wait for every registered holder's confirmation; returns the holders."""
    _drill(drill, "switch")

    async def run() -> list[str]:
        nc = await connect_as(t.nats, connect_timeout=5, max_reconnect_attempts=3)
        try:
            expected = await registered_holders(nc, t.exchange, t.account)
            req = RotateRequest(rotation_id, t.exchange, t.account, t.market, creds.version, creds.fingerprint, reason)
            replies, missing = await announce(nc, req, expected, timeout_s)
        finally:
            await nc.close()
        failed = {h: r.error for h, r in replies.items() if not r.ok}
        if missing or failed:
            parts = [f"no confirmation from {sorted(missing)} within {timeout_s:.0f}s"] if missing else []
            parts += [f"{h} failed: {e}" for h, e in sorted(failed.items())]
            raise KeyStoreError(
                f"holders of {t.exchange}/{t.account} did not switch to v{creds.version}: {'; '.join(parts)}"
            )
        return sorted(replies)

    return asyncio.run(run())


@task(name="revoke-key", cache_policy=NO_CACHE, persist_result=False)
def revoke_on_venue(t: Target, creds: Credentials, drill: str = "") -> None:
    _drill(drill, "revoke")
    venue.revoke_key(t.localex_url, creds.api_key, t.admin_token)


def _alert(t: Target, rotation_id: str, step: str, error: str, rolled_back: bool) -> None:
    alert = RotationAlert(rotation_id, t.exchange, t.account, t.market, step, error, rolled_back)

    async def run() -> None:
        nc = await connect_as(t.nats, connect_timeout=5, max_reconnect_attempts=1)
        try:
            await nc.publish(alert_subject(t.exchange, t.account), msgspec.json.encode(alert))
            await nc.flush()
        finally:
            await nc.close()

    try:
        asyncio.run(run())
    except Exception as exc:  # the alert is also in the flow's log and artifact
        get_run_logger().error("could not publish the alert on NATS: %s", exc)


def _operator_new_key(t: Target, old: Credentials) -> Credentials:
    """Real venue: pause for the operator to create and stage the new key; read it from staging."""
    answer = pause_flow_run(wait_for_input=OperatorNewKey, timeout=24 * 3600, poll_interval=2, key=f"new-{t.market}")
    staged = t.store.read_staged(t.exchange, t.market, t.account)  # type: ignore[arg-type]
    if staged.fingerprint != answer.staged_fingerprint.strip():
        raise KeyStoreError(
            f"the staged key is {staged.fingerprint}, the operator confirmed {answer.staged_fingerprint!r}"
        )
    return Credentials(
        t.exchange,
        t.market,
        t.account,
        staged.api_key,
        staged.secret,
        staged.permissions,  # type: ignore[arg-type]
        venue_account=old.venue_account,
    )


def _operator_revoke(t: Target, creds: Credentials, what: str) -> None:
    answer = pause_flow_run(wait_for_input=OperatorRevokedKey, timeout=24 * 3600, poll_interval=2, key=what)
    if answer.revoked_fingerprint.strip() != creds.fingerprint:
        raise KeyStoreError(f"operator confirmed revoking {answer.revoked_fingerprint!r}, expected {creds.fingerprint}")


def _timed(rec: Record, step: str, fn, *args):
    start = time.monotonic()
    try:
        result = fn(*args)
    except Exception:
        rec.steps.append((step, "failed", time.monotonic() - start))
        raise
    rec.steps.append((step, "ok", time.monotonic() - start))
    return result


def rotate_market(t: Target, opts: dict, rec: Record) -> None:
    """One market's rotation with rollback (see the module docstring)."""
    log = get_run_logger()
    rotation_id = uuid.uuid4().hex
    retries, drill, timeout_s = opts["retries"], opts["drill"], opts["confirm_timeout_s"]

    def with_retries(tk):
        return tk.with_options(retries=retries, retry_delay_seconds=_backoff(retries))

    try:
        old = _timed(rec, "read", with_retries(read_current), t)
    except Exception as exc:  # nothing changed yet: alert and stop
        error = redact(f"{type(exc).__name__}: {exc}")
        rec.outcome = "failed at read, nothing changed"
        _alert(t, rotation_id, "read", error, True)
        raise RotationFailed(f"rotation of {t.exchange}/{t.account}/{t.market} failed at read: {error}") from None
    rec.old, rec.old_version = old.fingerprint, old.version
    new = written = None
    step = "create"
    try:
        if t.venue == "live":
            _drill(drill, "create")
            new = _timed(rec, step, _operator_new_key, t, old)
        else:
            new = _timed(rec, step, with_retries(create_on_venue), t, old, drill)
        rec.new = new.fingerprint
        step = "verify"
        _timed(rec, step, with_retries(verify), t, new, drill)
        step = "write"
        written = _timed(rec, step, with_retries(write), t, new, old.version, drill)
        rec.new_version = written.version
        step = "switch"
        rec.holders = _timed(rec, step, with_retries(switch), t, written, rotation_id, "rotate", timeout_s, drill)
        step = "revoke"
        time.sleep(opts["revoke_grace_s"])  # requests signed with the old key just before the switch land first
        if t.venue == "live":
            _timed(rec, step, _operator_revoke, t, old, f"revoke-{t.market}")
        else:
            _timed(rec, step, with_retries(revoke_on_venue), t, old, drill)
        if t.venue == "live":
            t.store.clear_staged(t.exchange, t.market, t.account)  # type: ignore[arg-type]
        rec.outcome = "rotated"
        log.info(
            "rotated %s/%s/%s: %s v%d -> %s v%d",
            t.exchange,
            t.account,
            t.market,
            rec.old,
            rec.old_version,
            rec.new,
            rec.new_version,
        )
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {exc}")
        log.error("rotation of %s/%s/%s failed at %s: %s; rolling back", t.exchange, t.account, t.market, step, error)
        problems = _rollback(t, old, new, written, rotation_id, timeout_s, rec)
        rec.outcome = f"failed at {step}, " + ("rolled back" if not problems else "ROLLBACK INCOMPLETE")
        detail = error + ("" if not problems else "; rollback problems: " + "; ".join(problems))
        _alert(t, rotation_id, step, detail, not problems)
        raise RotationFailed(f"rotation of {t.exchange}/{t.account}/{t.market} failed at {step}: {detail}") from None


def _rollback(t, old, new, written, rotation_id, timeout_s, rec: Record) -> list[str]:
    """Back to the old key: if Vault's current key is not the old one (the new one was written, or a write
    failed half-way), write the old key back as a newer version and announce it; revoke the new key."""
    problems: list[str] = []
    try:
        now = t.store.refresh(t.exchange, t.market, t.account)
        if written is not None or now.fingerprint != old.fingerprint:
            restored = _timed(rec, "rollback-write", write.fn, t, old, now.version)
            rec.new_version = restored.version
            _timed(rec, "rollback-switch", switch.fn, t, restored, rotation_id, "rollback", timeout_s)
    except Exception as exc:
        problems.append(redact(f"restoring the old key in Vault/holders: {exc}"))
    if new is not None:
        if t.venue == "live":
            problems.append(f"revoke the new key {new.fingerprint} on the venue by hand (it was never used)")
        else:
            try:
                _timed(rec, "rollback-revoke-new", revoke_on_venue.fn, t, new)
            except Exception as exc:
                problems.append(redact(f"revoking the new key {new.fingerprint}: {exc}"))
    return problems


def _artifact(exchange: str, account: str, records: list[Record]) -> None:
    lines = [f"# Key rotation of {exchange}/{account}", ""]
    for r in records:
        lines += [
            f"## {r.market}: {r.outcome}",
            "",
            "| | key | vault version |",
            "|---|---|---|",
            f"| old | `{r.old or '-'}` | {r.old_version or '-'} |",
            f"| new | `{r.new or '-'}` | {r.new_version or '-'} |",
            "",
            f"Holders confirmed: {', '.join(r.holders) if r.holders else 'none registered'}",
            "",
            "| step | outcome | seconds |",
            "|---|---|---|",
            *[f"| {s} | {o} | {d:.2f} |" for s, o, d in r.steps],
            "",
        ]
    key = f"rotate-keys-{exchange}-{account}".replace("_", "-").lower()
    create_markdown_artifact("\n".join(lines), key=key, description=f"key rotation of {exchange}/{account}")


def _target(cfg, exchange: str, account: str, market: str, component: str) -> Target:
    ex = cfg.exchanges.exchanges[exchange]
    localex = cfg.exchanges.local_exchange.base_url
    rest = localex if ex.venue == "local" else ex.markets[market].live.rest_url
    nats_settings = NatsClientSettings.from_config(cfg, "flows")  # OMS_NATS_URL / OMS_NATS_CREDENTIALS_DIR first
    store = open_store(cfg, component, cache=False)
    token = venue.admin_token(cfg.data_dir())
    return Target(exchange, account, market, ex.venue, localex, rest, nats_settings, token, store, cfg)


@flow(name="rotate-keys", persist_result=False, log_prints=False)
def rotate_keys(
    exchange: str,
    account: str,
    markets: list[str] | None = None,
    config_dir: str | None = None,
    confirm_timeout_s: float = 30.0,
    revoke_grace_s: float = 1.0,
    retries: int = 3,
    component: str = "rotation",
    drill: Drill = "",
) -> list[str]:
    """Rotate the API key of ``exchange``/``account`` for each market (all of the account's by default).

    ``confirm_timeout_s``: how long to wait for every holder's confirmation; ``revoke_grace_s``: the pause
    between the last confirmation and revoking the old key; ``retries``: per step, with exponential back-off
    (1, 2, 4... s, at most 30 s); ``component``: the AppRole the flow uses (``rotation``); ``drill``: fail on
    purpose at this step to check the rollback. Returns one line per market: old -> new fingerprint, versions.
    """
    install_redaction()
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    cfg = load_config(config_dir)
    if exchange not in cfg.accounts or account not in cfg.accounts[exchange]:
        raise RotationFailed(f"account {exchange}/{account} is not in {Path(cfg.dir) / 'accounts.yaml'}")
    chosen = markets or list(cfg.accounts[exchange][account].markets())
    opts = {
        "retries": retries,
        "drill": drill,
        "confirm_timeout_s": confirm_timeout_s,
        "revoke_grace_s": revoke_grace_s,
    }
    records: list[Record] = []
    try:
        for market in chosen:
            rec = Record(market)
            records.append(rec)
            rotate_market(_target(cfg, exchange, account, market, component), opts, rec)
    finally:
        _artifact(exchange, account, records)
    return [f"{r.market}: {r.old} v{r.old_version} -> {r.new} v{r.new_version}" for r in records]
