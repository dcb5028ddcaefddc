"""Live key rotation over NATS: the protocol, and the listener a daemon embeds to switch keys without a restart.

Protocol (JSON, msgspec structs below; never a secret, only fingerprints and versions):

- Each holder of an account's key (a daemon, a flow worker) registers in the JetStream key-value bucket
  ``oms_key_holders`` under ``{exchange}.{account}.{holder}`` and refreshes the entry every
  ``heartbeat_s`` (the bucket forgets entries after ``HOLDER_TTL_S``), so the rotation flow knows whom to
  wait for.
- The flow sends a ``RotateRequest`` on ``keys.rotate.{exchange}.{account}`` with its own reply inbox.
- Each holder re-reads the key from the key store (at least the announced version, and checks the
  fingerprint), calls every callback registered for the account (the connectors' ``set_credentials``),
  and only then answers with a ``RotateReply`` (``ok`` false and the reason when anything failed).
- The flow revokes the old key only after every registered holder confirmed the new version; a rollback
  is the same message with ``reason="rollback"`` announcing the old key written back as a newer version.
- Failed rotations are announced on ``alerts.keys.{exchange}.{account}``.

With ``check_s`` the listener also reads each registered account's key from the store on that period (the
store answers from memory within its TTL, else from Vault, else from its encrypted cache while Vault is sealed
or down, with a warning and its ``degraded`` metric), so a long-running holder notices a Vault outage and its
end, and a key written without an announcement, while it keeps signing with the key it holds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from oms.keys.provider import Credentials, KeyStoreError
from oms.keys.redact import redact

log = logging.getLogger(__name__)
HOLDERS_BUCKET = "oms_key_holders"
HOLDER_TTL_S = 60.0
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")

Callback = Callable[[Credentials], Awaitable[None] | None]


def rotate_subject(exchange: str, account: str) -> str:
    return f"keys.rotate.{exchange}.{account}"


def alert_subject(exchange: str, account: str) -> str:
    return f"alerts.keys.{exchange}.{account}"


class RotateRequest(msgspec.Struct, frozen=True):
    rotation_id: str
    exchange: str
    account: str
    market: str
    version: int
    fingerprint: str
    reason: str = "rotate"  # rotate | rollback


class RotateReply(msgspec.Struct, frozen=True):
    rotation_id: str
    holder: str
    ok: bool
    version: int
    fingerprint: str
    error: str = ""


class HolderEntry(msgspec.Struct, frozen=True):
    holder: str
    exchange: str
    account: str
    since_ns: int


class RotationAlert(msgspec.Struct, frozen=True):
    rotation_id: str
    exchange: str
    account: str
    market: str
    step: str
    error: str
    rolled_back: bool


async def holders_bucket(nc: NATS):
    js = nc.jetstream()
    try:
        return await js.key_value(HOLDERS_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(bucket=HOLDERS_BUCKET, ttl=HOLDER_TTL_S, history=1)


async def registered_holders(nc: NATS, exchange: str, account: str) -> set[str]:
    """The holders of ``exchange``/``account`` whose registration is alive."""
    kv = await holders_bucket(nc)
    try:
        keys = await kv.keys()  # nats-py's `filters` match substrings, not subjects: select here
    except nats.js.errors.NoKeysError:
        return set()
    prefix = f"{exchange}.{account}."
    return {k[len(prefix) :] for k in keys if k.startswith(prefix) and "." not in k[len(prefix) :]}


@dataclass
class ListenerMetrics:
    switched: int = 0
    failed: int = 0
    bad_messages: int = 0
    # (exchange, account, reason: rotate | rollback, outcome: switched | failed) -> count
    outcomes: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    last_switch_ns: dict[tuple[str, str], int] = field(default_factory=dict)  # (exchange, account) -> time
    checks: int = 0  # periodic reads of the held keys (check_s)
    check_failures: int = 0  # ... that got no key at all (not even from the cache)

    def count(self, req: RotateRequest, outcome: str) -> None:
        key = (req.exchange, req.account, req.reason, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if outcome == "switched":
            self.switched += 1
            self.last_switch_ns[(req.exchange, req.account)] = time.time_ns()
        else:
            self.failed += 1


class KeyRotationListener:
    """Embedded in a process that holds keys: on a rotation message it switches them and confirms.

    ``store`` is the key store (``refresh(exchange, market, account, min_version)``); callbacks are called
    with the new ``Credentials`` (sync or async) before the confirmation is sent.
    """

    def __init__(self, nc: NATS, store, holder: str, heartbeat_s: float = 15.0, check_s: float | None = None):
        if not _TOKEN.match(holder):
            raise ValueError(f"holder name {holder!r} must be letters, digits, '_' or '-' (a NATS subject token)")
        self.nc = nc
        self.store = store
        self.holder = holder
        self.heartbeat_s = heartbeat_s
        self.metrics = ListenerMetrics()
        self._callbacks: dict[tuple[str, str], list[Callback]] = {}
        self._subs: list = []
        self._kv = None
        self._beat: asyncio.Task | None = None
        self.check_s = check_s
        self._markets: dict[tuple[str, str], set[str]] = {}
        self._in_use: dict[tuple[str, str, str], str] = {}  # (exchange, account, market) -> fingerprint
        self._check: asyncio.Task | None = None

    def register(self, exchange: str, account: str, callback: Callback, markets: tuple[str, ...] = ()) -> None:
        """Call ``callback(creds)`` whenever the key of ``exchange``/``account`` changes (any market); ``markets``
        are the ones the periodic check reads (``check_s``)."""
        for token in (exchange, account):
            if not _TOKEN.match(token):
                raise ValueError(f"{token!r} cannot be a NATS subject token")
        self._callbacks.setdefault((exchange, account), []).append(callback)
        self._markets.setdefault((exchange, account), set()).update(markets)

    async def start(self) -> None:
        self._kv = await holders_bucket(self.nc)
        for exchange, account in self._callbacks:
            self._subs.append(await self.nc.subscribe(rotate_subject(exchange, account), cb=self._on_message))
        await self.nc.flush()
        await self._announce_presence()
        self._beat = asyncio.create_task(self._heartbeat(), name=f"key-holder-{self.holder}")
        if self.check_s:
            self._check = asyncio.create_task(self._check_loop(self.check_s), name=f"key-check-{self.holder}")

    async def stop(self) -> None:
        for task in (self._beat, self._check):
            if task is not None:
                task.cancel()
        self._beat = self._check = None
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        if self._kv is not None:
            for exchange, account in self._callbacks:
                try:
                    await self._kv.delete(f"{exchange}.{account}.{self.holder}")
                except (nats.errors.Error, nats.js.errors.Error) as exc:
                    log.warning("holder %s could not deregister from %s: %s", self.holder, HOLDERS_BUCKET, exc)

    async def _announce_presence(self) -> None:
        now = time.time_ns()
        for exchange, account in self._callbacks:
            entry = HolderEntry(self.holder, exchange, account, now)
            await self._kv.put(f"{exchange}.{account}.{self.holder}", msgspec.json.encode(entry))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._announce_presence()
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                log.warning("holder %s could not refresh its registration: %s", self.holder, exc)

    async def check_once(self) -> None:
        """Read every registered account's key from the store once (see the module docstring)."""
        for (exchange, account), markets in self._markets.items():
            for market in sorted(markets):
                self.metrics.checks += 1
                try:
                    creds = await asyncio.to_thread(self.store.get, exchange, market, account)
                except Exception as exc:  # no key at all: the connectors keep the one they hold
                    self.metrics.check_failures += 1
                    log.error(
                        "holder %s: key check of %s/%s/%s failed, signing on with the key held: %s",
                        self.holder, exchange, account, market, redact(f"{type(exc).__name__}: {exc}"),
                    )  # fmt: skip
                    continue
                held = self._in_use.setdefault((exchange, account, market), creds.fingerprint)
                if held != creds.fingerprint:
                    log.info(
                        "holder %s: the store has key %s for %s/%s/%s, the connectors sign with %s until its "
                        "rotation is announced",
                        self.holder, creds.fingerprint, exchange, account, market, held,
                    )  # fmt: skip

    async def _check_loop(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.check_once()

    async def _on_message(self, msg: Msg) -> None:
        try:
            req = msgspec.json.decode(msg.data, type=RotateRequest)
        except msgspec.DecodeError as exc:
            self.metrics.bad_messages += 1
            log.error("holder %s: malformed rotation message on %s: %s", self.holder, msg.subject, exc)
            if msg.reply:
                await msg.respond(msgspec.json.encode(RotateReply("", self.holder, False, 0, "", f"malformed: {exc}")))
            return
        reply = await self._switch(req)
        if msg.reply:
            await msg.respond(msgspec.json.encode(reply))

    async def _switch(self, req: RotateRequest) -> RotateReply:
        what = f"{req.exchange}/{req.account}/{req.market} v{req.version} ({req.reason} {req.rotation_id})"
        try:
            creds = await asyncio.to_thread(
                self.store.refresh, req.exchange, req.market, req.account, min_version=req.version
            )
            if creds.fingerprint != req.fingerprint:
                raise KeyStoreError(
                    f"the store holds key {creds.fingerprint}, the rotation announced {req.fingerprint}"
                )
            for callback in self._callbacks.get((req.exchange, req.account), []):
                result = callback(creds)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:  # any failure is reported to the flow, which then rolls back
            self.metrics.count(req, "failed")
            error = redact(f"{type(exc).__name__}: {exc}")
            log.error("holder %s could not switch to %s: %s", self.holder, what, error)
            return RotateReply(req.rotation_id, self.holder, False, req.version, req.fingerprint, error)
        self.metrics.count(req, "switched")
        self._in_use[(req.exchange, req.account, req.market)] = creds.fingerprint
        log.info("holder %s switched to key %s of %s", self.holder, creds.fingerprint, what)
        return RotateReply(req.rotation_id, self.holder, True, creds.version, creds.fingerprint)


async def announce(
    nc: NATS, req: RotateRequest, expected: set[str], timeout_s: float
) -> tuple[dict[str, RotateReply], set[str]]:
    """Send ``req`` and gather replies until every ``expected`` holder answered or ``timeout_s`` passed.

    Returns the replies by holder and the expected holders that did not answer.
    """
    inbox = nc.new_inbox()
    replies: dict[str, RotateReply] = {}
    done = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        try:
            reply = msgspec.json.decode(msg.data, type=RotateReply)
        except msgspec.DecodeError:
            log.error("malformed rotation reply on %s", msg.subject)
            return
        if reply.rotation_id == req.rotation_id:
            replies[reply.holder] = reply
            if expected <= replies.keys():
                done.set()

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(rotate_subject(req.exchange, req.account), msgspec.json.encode(req), reply=inbox)
        await nc.flush()
        if expected:
            try:
                await asyncio.wait_for(done.wait(), timeout_s)
            except TimeoutError:
                pass
    finally:
        await sub.unsubscribe()
    return replies, expected - replies.keys()
