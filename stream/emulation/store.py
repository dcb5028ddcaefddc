"""Where parent orders and managed exits live between restarts: the JetStream KV bucket ``oms_parents``.

One key per parent, ``{exchange}.{account}.{parent_id}`` (a managed exit: ``...exit-{symbol token}``), holding
its ``ParentState`` (or ``ExitState``) as JSON; written before each child is sent (so a restart knows every
child id that may be at the venue) and after each change. ``load(account)`` returns what one account has.
"""

from __future__ import annotations

import logging

import msgspec

from oms.model import AccountId

log = logging.getLogger("stream.emulation.store")

BUCKET = "oms_parents"
_enc = msgspec.json.Encoder()


def key_of(account: str, name: str) -> str:
    a = AccountId.parse(account)
    return f"{a.exchange}.{a.name}.{name}"


class StateStore:
    def __init__(self, kv):
        self.kv = kv
        self.errors = 0

    async def put(self, account: str, name: str, value: msgspec.Struct) -> bool:
        try:
            await self.kv.put(key_of(account, name), _enc.encode(value))
            return True
        except Exception as exc:  # NATS down: the state in memory goes on; the next change writes it again
            self.errors += 1
            if self.errors <= 5 or self.errors % 100 == 0:
                log.warning("state %s of %s not written (%s: %s)", name, account, type(exc).__name__, exc)
            return False

    async def load(self, account: str, prefix: str, type_: type) -> list:
        a = AccountId.parse(account)
        head = f"{a.exchange}.{a.name}.{prefix}"
        try:
            keys = await self.kv.keys()
        except Exception:  # nats-py raises NoKeysError on an empty bucket
            return []
        out = []
        for key in keys:
            if not key.startswith(head):
                continue
            try:
                entry = await self.kv.get(key)
                if entry.value:
                    out.append(msgspec.json.decode(entry.value, type=type_))
            except Exception as exc:
                log.error("state %s in %s unreadable, skipped: %s", key, BUCKET, exc)
        return out
