"""Live state and trading leases in JetStream key-value buckets.

``LiveState`` keeps the daemon's current view of each account (positions, balances, open orders) under
``{exchange}.{account}.{kind}``, encoded by the model's codec, so dashboards and the snapshot flow read it
without asking the daemon.

``AccountLease`` makes sure two daemons never trade the same account: a daemon creates the key
``{exchange}.{account}`` in the lease bucket (a create fails when it exists), refreshes it by
compare-and-set on its revision well within the bucket's TTL, and deletes it on a clean stop. A daemon that
dies stops refreshing and its lease expires after the TTL, so another one can take the account over; a
daemon that finds its lease changed under it (``LeaseLost``) must stop trading that account.
"""

from __future__ import annotations

import os
import socket
import time

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from oms.model import AccountId
from oms.model.codec import decode, encode

# futures_settings: the USD-M settings refusal last announced (stream.futures_settings), so a restart that finds
# the same one does not announce it again
STATE_KINDS = ("positions", "balances", "open_orders", "pnl", "trading_state", "futures_settings")


class LeaseHeld(RuntimeError):
    """Another holder has the account."""


class LeaseLost(RuntimeError):
    """The lease was taken or expired while we held it: stop trading the account."""


class LeaseInfo(msgspec.Struct, frozen=True):
    holder: str
    host: str
    pid: int
    acquired_ns: int


def state_key(account: AccountId | str, kind: str) -> str:
    a = account if isinstance(account, AccountId) else AccountId.parse(account)
    if kind not in STATE_KINDS:
        raise ValueError(f"live state kind {kind!r}: one of {', '.join(STATE_KINDS)}")
    return f"{a.exchange}.{a.name}.{kind}"


class LiveState:
    """The live view per account in a KV bucket (``oms.bus.streams.ensure_bucket``)."""

    def __init__(self, kv: KeyValue):
        self.kv = kv

    async def put(self, account: AccountId | str, kind: str, value: msgspec.Struct | list | tuple) -> int:
        return await self.kv.put(state_key(account, kind), encode(value))

    async def get_raw(self, account: AccountId | str, kind: str) -> bytes | None:
        try:
            entry = await self.kv.get(state_key(account, kind))
        except KeyNotFoundError:
            return None
        return entry.value

    async def get(self, account: AccountId | str, kind: str, type: type):
        raw = await self.get_raw(account, kind)
        return None if raw is None else decode(raw, type)


class AccountLease:
    """One daemon's hold on one account (see the module docstring)."""

    def __init__(self, kv: KeyValue, account: AccountId | str, holder: str):
        self.kv = kv
        self.account = account if isinstance(account, AccountId) else AccountId.parse(account)
        self.key = f"{self.account.exchange}.{self.account.name}"
        self.info = LeaseInfo(holder=holder, host=socket.gethostname(), pid=os.getpid(), acquired_ns=time.time_ns())
        self.revision = 0

    async def acquire(self) -> None:
        for attempt in range(3):
            try:
                self.revision = await self.kv.create(self.key, encode(self.info))
                return
            except KeyNotFoundError:  # nats-py's create reads the entry it conflicted with, which may expire first
                if attempt == 2:
                    raise
            except KeyWrongLastSequenceError:
                other = await self.holder()
                who = f"{other.holder} (pid {other.pid} on {other.host})" if other else "another daemon"
                raise LeaseHeld(f"account {self.account} is traded by {who}; not trading it here") from None

    async def refresh(self) -> None:
        try:
            self.revision = await self.kv.update(self.key, encode(self.info), last=self.revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            raise LeaseLost(f"lease on {self.account} was lost (expired or taken over); stop trading it") from None

    async def release(self) -> None:
        try:
            await self.kv.delete(self.key, last=self.revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            pass  # not ours any more: nothing to release
        self.revision = 0

    async def holder(self) -> LeaseInfo | None:
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:
            return None
        return msgspec.json.decode(entry.value, type=LeaseInfo) if entry.value else None
