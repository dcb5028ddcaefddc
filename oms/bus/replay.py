"""Replaying outbox records older than JetStream's duplicate window without storing them twice.

JetStream drops a re-sent message whose ``Nats-Msg-Id`` it has seen within the stream's duplicate window
(``duplicate_window``, read from the stream itself). An outbox record written longer ago than that (an outage
longer than the window, or a daemon that stayed down) may already be in the stream (its ack was lost, or a
drain was cut short after the server stored it) and would be stored a second time. ``StoredLookup`` finds,
for the records of one segment that are that old, which ones the stream already holds: per subject, the last
message on the subject (``get_last_msg``: none, or one stored before the oldest record, means none is there),
else the messages on the subject from the oldest record's write time (less ``margin_s``: a record is written
to the outbox after it was sent, by up to the ack timeout) read headers-only with an ordered consumer up to
that last message. The publisher skips what is found.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from oms.bus.outbox import OutboxRecord

log = logging.getLogger("oms.bus.replay")
NS = 1_000_000_000


class StoredLookup:
    """Which old outbox records a stream already holds (``margin_s``: how much older than its write time a
    record may have been stored, and how much sooner than the window a record counts as old)."""

    def __init__(self, js: JetStreamContext, *, margin_s: float, timeout_s: float = 5.0):
        self.js = js
        self.margin_s = margin_s
        self.timeout_s = timeout_s
        self._streams: dict[str, tuple[str, float]] = {}  # subject -> (stream, duplicate window in s)
        self.looked_up = 0  # old records checked against the stream

    async def _stream(self, subject: str) -> tuple[str, float]:
        if subject not in self._streams:
            name = await self.js.find_stream_name_by_subject(subject)
            info = await self.js.stream_info(name)
            self._streams[subject] = (name, float(info.config.duplicate_window or 120.0))  # server default: 2 min
        return self._streams[subject]

    async def stored(self, records: list[OutboxRecord], now_ns: int | None = None) -> set[str]:
        """The ``Nats-Msg-Id`` of those of ``records`` too old for the stream's deduplication that the stream
        already holds; records young enough are left to ``Nats-Msg-Id`` (never looked up)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        old: dict[str, list[OutboxRecord]] = defaultdict(list)
        for rec in records:
            stream, window_s = await self._stream(rec.s)
            if now_ns - rec.t >= (window_s - self.margin_s) * NS:
                old[rec.s].append(rec)
        found: set[str] = set()
        for subject, recs in old.items():
            self.looked_up += len(recs)
            since_ns = min(r.t for r in recs) - int(self.margin_s * NS)
            found |= await self._ids_on(self._streams[subject][0], subject, since_ns, {r.i for r in recs})
        return found

    async def _ids_on(self, stream: str, subject: str, since_ns: int, wanted: set[str]) -> set[str]:
        try:
            last = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return set()  # nothing on the subject at all
        last_id = (last.headers or {}).get("Nats-Msg-Id")
        if wanted == {last_id}:
            return {last_id}
        if last.time is not None and last.time.timestamp() * NS < since_ns:
            return set()  # the subject's newest message is older than every record: none of them is there
        start = datetime.fromtimestamp(max(since_ns, 0) / NS, UTC)
        sub = await self.js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            headers_only=True,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            config=ConsumerConfig(opt_start_time=start),
        )
        found: set[str] = set()
        try:
            while True:
                msg = await sub.next_msg(timeout=self.timeout_s)
                mid = (msg.headers or {}).get("Nats-Msg-Id")
                if mid in wanted:
                    found.add(mid)
                if found == wanted or msg.metadata.sequence.stream >= last.seq:
                    break
        finally:
            await sub.unsubscribe()
        return found
