"""Where the daemon's events go: JetStream (through the publisher and its outbox), the daily log files, and
the live-state key-value bucket.

``EventSink.emit(event)`` publishes one model event (``Nats-Msg-Id`` from ``oms.bus.subjects``), appends order
events and fills to ``data/logs/YYYY/MM/DD/{account}/orders.jsonl`` / ``trades.jsonl`` (each fill once, by
trade id, however often the venue reports it) and marks the account's live state dirty; ``StateWriter``
writes dirty accounts' positions, balances, open orders, PnL and trading state to the KV bucket a moment
later (one put per kind and account, however many events arrived meanwhile).

``RiskEvent`` is the daemon's own event on ``risk.{exchange}.{account}`` (kill switch, lease, breaker).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from oms.archive.logs import LogWriter
from oms.bus import EventPublisher, LiveState, OutboxRecord, risk_subject
from oms.model import Fill, OrderEvent
from oms.model.codec import encode
from stream.metrics import DaemonMetrics

log = logging.getLogger("stream.events")


class RiskEvent(msgspec.Struct, frozen=True, kw_only=True, tag="risk_event"):
    """A change of an account's (or every account's: ``account`` "*") trading state, and why."""

    account: str
    # halt | reduce_only | resume | lease_held | lease_lost | breaker | liquidation_risk | adl_risk | settings_drift
    # | futures_settings_applied | futures_settings_refused (stream.futures_settings)
    action: str
    trading_state: str  # active | reduce_only | halted
    reason: str = ""
    cancelled: int = 0  # open orders cancelled with it
    event_ns: int


def risk_msg_id(ev: RiskEvent) -> str:
    digest = hashlib.blake2b(encode(ev), digest_size=12).hexdigest()
    return f"risk:{ev.account}:{ev.action}:{digest}"


class _SeenTrades:
    """Trade ids already logged, per account (bounded: the oldest are forgotten first)."""

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def add(self, fill: Fill) -> bool:
        key = (fill.account, fill.symbol, fill.trade_id)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True


class EventSink:
    def __init__(self, publisher: EventPublisher, logs: LogWriter, metrics: DaemonMetrics):
        self.publisher = publisher
        self.logs = logs
        self.metrics = metrics
        self.dirty: set[str] = set()
        self._trades = _SeenTrades()
        self.log_errors = 0
        # stream.emulation: ``enrich`` may rewrite an event before it goes out (a fill's slippage fields);
        # ``listeners`` see every order event and fill that goes out (parents follow their children there)
        self.enrich: Callable[[msgspec.Struct], msgspec.Struct] | None = None
        self.listeners: list[Callable[[msgspec.Struct], None]] = []

    async def emit(self, event: msgspec.Struct) -> None:
        if isinstance(event, Fill) and not self._trades.add(event):
            return  # the stream and a REST snapshot both reported it: once is enough
        if self.enrich is not None:
            event = self.enrich(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not lose the event
                log.exception("event listener failed on %s", type(event).__name__)
        await self.publisher.publish(event)
        self.metrics.events_published.labels(type(event).__name__).inc()
        if isinstance(event, OrderEvent | Fill):
            self.log(event)
        account = getattr(event, "account", None)
        if account:
            self.dirty.add(account)

    def log(self, event: msgspec.Struct) -> None:
        """Append ``event`` to its account's daily log file; a full or failing disk is counted and logged (the
        event is on JetStream already, which stays the record)."""
        try:
            self.logs.append(event)
        except OSError as exc:
            self.log_errors += 1
            log.error("could not write the %s log of %s: %s", type(event).__name__, event.account, exc)

    async def emit_risk(self, event: RiskEvent) -> None:
        subject = risk_subject(event.account) if event.account != "*" else "risk.all.all"
        await self.publisher.publish_record(OutboxRecord(subject, risk_msg_id(event), msgspec.Raw(encode(event))))
        self.metrics.events_published.labels("RiskEvent").inc()


class StateWriter:
    """Writes the live state of dirty accounts to the KV bucket every ``interval_s``."""

    def __init__(self, state: LiveState, sink: EventSink, snapshot: Callable[[str], dict], interval_s: float = 0.1):
        self.state = state
        self.sink = sink
        self.snapshot = snapshot  # account -> {kind: value} (oms.bus.kv.STATE_KINDS)
        self.interval_s = interval_s
        self.writes = 0
        self.errors = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> None:
        dirty, self.sink.dirty = self.sink.dirty, set()
        for account in sorted(dirty):
            try:
                for kind, value in self.snapshot(account).items():
                    await self.state.put(account, kind, value)
                    self.writes += 1
            except Exception as exc:  # NATS down: keep it dirty and try again later
                self.errors += 1
                self.sink.dirty.add(account)
                if self.errors <= 5 or self.errors % 100 == 0:
                    log.warning("live state of %s not written (%s: %s); retrying", account, type(exc).__name__, exc)


def now_ns() -> int:
    return time.time_ns()
