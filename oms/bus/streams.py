"""The JetStream streams and key-value buckets of the platform, created when missing, updated when changed.

Every event kind of ``oms.bus.subjects`` has its own file-backed stream kept 30 days (``max_age``), so a
consumer replays one kind without reading the others. The duplicate window (how long JetStream remembers a
``Nats-Msg-Id``) is an hour by default: long enough for the outbox to drain after an outage and for a daemon
restart to republish its last events, short enough to keep the server's id index small. Beyond it,
reconciliation (which compares with the last events in the stream) keeps replays from doubling events.

Key-value buckets: ``oms_state`` holds the live state (positions, balances, open orders per account) and
``oms_leases`` the per-account trading leases (``oms.bus.kv``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError

from oms.bus.subjects import EVENT_KINDS

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class BusSettings:
    """How long events are kept and remembered, and where (``file``; ``memory`` only for throwaway tests)."""

    retention_days: float = 30.0
    duplicate_window_s: float = 3600.0
    storage: str = "file"
    replicas: int = 1
    state_bucket: str = "oms_state"
    lease_bucket: str = "oms_leases"
    lease_ttl_s: float = 15.0

    def __post_init__(self) -> None:
        if self.retention_days <= 0:
            raise ValueError(f"bus retention_days must be > 0 (got {self.retention_days})")
        if not 0 < self.duplicate_window_s <= self.retention_days * DAY_S:
            raise ValueError(f"bus duplicate_window_s must be in (0, retention] (got {self.duplicate_window_s})")
        if self.storage not in ("file", "memory"):
            raise ValueError(f"bus storage must be 'file' or 'memory' (got {self.storage!r})")
        if self.lease_ttl_s < 1:
            raise ValueError(f"bus lease_ttl_s must be >= 1 s (got {self.lease_ttl_s})")


def stream_name(kind: str) -> str:
    """``orders`` -> ``ORDERS``."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}: one of {', '.join(EVENT_KINDS)}")
    return kind.upper()


def stream_configs(settings: BusSettings = BusSettings()) -> list[StreamConfig]:
    storage = StorageType.FILE if settings.storage == "file" else StorageType.MEMORY
    return [
        StreamConfig(
            name=stream_name(kind),
            subjects=[f"{kind}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=storage,
            max_age=settings.retention_days * DAY_S,
            duplicate_window=settings.duplicate_window_s,
            num_replicas=settings.replicas,
            description=f"crypto-oms {kind} events",
        )
        for kind in EVENT_KINDS
    ]


_COMPARED = ("subjects", "max_age", "duplicate_window", "storage", "retention", "num_replicas")


def _differs(have: StreamConfig, want: StreamConfig) -> list[str]:
    out = []
    for name in _COMPARED:
        a, b = getattr(have, name), getattr(want, name)
        if isinstance(a, float) or isinstance(b, float):
            if abs((a or 0) - (b or 0)) > 1e-3:
                out.append(name)
        elif a != b:
            out.append(name)
    return out


async def ensure_streams(js: JetStreamContext, settings: BusSettings = BusSettings()) -> dict[str, str]:
    """Create each stream that is missing and update one whose settings changed.

    Returns ``{stream: "created" | "updated" | "ok"}``. Storage type cannot change in place; such a change
    raises naming the stream, so nobody loses a stream's history by editing a setting.
    """
    outcome: dict[str, str] = {}
    for want in stream_configs(settings):
        try:
            info = await js.stream_info(want.name)
        except NotFoundError:
            await js.add_stream(want)
            outcome[want.name] = "created"
            continue
        changed = _differs(info.config, want)
        if not changed:
            outcome[want.name] = "ok"
            continue
        if "storage" in changed:
            raise ValueError(
                f"stream {want.name}: storage is {info.config.storage} on the server but {want.storage} is "
                "configured; JetStream cannot change it in place (back up and delete the stream to change it)"
            )
        await js.update_stream(want)
        outcome[want.name] = "updated"
    return outcome


async def ensure_bucket(js: JetStreamContext, bucket: str, *, ttl_s: float = 0.0, history: int = 1, storage="file"):
    """The key-value bucket ``bucket``, created if missing (``ttl_s`` 0: entries never expire)."""
    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(
            KeyValueConfig(
                bucket=bucket,
                history=history,
                ttl=ttl_s or None,
                storage=StorageType.FILE if storage == "file" else StorageType.MEMORY,
                description=f"crypto-oms {bucket}",
            )
        )
