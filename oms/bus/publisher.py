"""Publishing the model's events to JetStream: each once, in order of acceptance, never lost.

``EventPublisher.publish(event)`` derives the subject and ``Nats-Msg-Id`` (``oms.bus.subjects``), sends the
event with ``publish_async`` and settles acknowledgements in windows (the throughput path: JetStream
acks are awaited a window at a time, not one by one). Whatever cannot be confirmed — NATS unreachable, a
connection lost with acks outstanding, an ack that does not come within ``ack_timeout_s`` — goes to the
fsync'd outbox (``oms.bus.outbox``). From then on new events queue behind it in the outbox, so their order
is kept, and a drain task replays the outbox as soon as NATS answers again, then switches back to direct
publishing. Re-sent events carry the same message id, so JetStream stores each once within the stream's
duplicate window; a record written to the outbox longer ago than that window (less the ack timeout) is
looked up in the stream first and skipped when it is there (``oms.bus.replay``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from oms.bus.outbox import Outbox, OutboxRecord
from oms.bus.replay import StoredLookup
from oms.bus.subjects import msg_id, subject_of
from oms.model.codec import encode

log = logging.getLogger("oms.bus.publisher")


@dataclass(slots=True)
class PublisherStats:
    accepted: int = 0  # events handed to publish()
    acked: int = 0  # stored by JetStream (duplicates included)
    duplicates: int = 0  # acknowledged as a duplicate of an id JetStream already had
    to_outbox: int = 0  # events written to the outbox
    drained: int = 0  # outbox records delivered
    already_stored: int = 0  # old outbox records found in the stream on replay, not published again
    errors: int = 0  # failed publishes and drains (each retried)


class EventPublisher:
    """Events to JetStream through an outbox. Use ``async with`` or call ``start()`` and ``close()``."""

    def __init__(
        self,
        nc: NATS,
        outbox: Outbox,
        *,
        window: int = 1000,
        ack_timeout_s: float = 5.0,
        retry_s: float = 0.25,
    ):
        if window < 1:
            raise ValueError(f"publisher window must be >= 1 (got {window})")
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=max(4000, 2 * window))
        self.outbox = outbox
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.retry_s = retry_s
        self.stats = PublisherStats()
        self._inflight: deque[tuple[OutboxRecord, asyncio.Future]] = deque()
        self._queued = len(outbox) > 0  # events wait in the outbox: new ones queue behind them
        self._drainer: asyncio.Task | None = None
        self._closed = False
        # an outbox record is written up to ack_timeout_s after it was sent (and stored, maybe): older than the
        # window less that (and a second of clock slop) is beyond what Nats-Msg-Id deduplication still covers
        self.lookup = StoredLookup(self.js, margin_s=ack_timeout_s + 1.0, timeout_s=max(ack_timeout_s, 1.0))

    async def __aenter__(self) -> EventPublisher:
        self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def start(self) -> None:
        """Start delivering what a previous run left in the outbox."""
        if self._queued:
            self._wake_drainer()

    @property
    def backlog(self) -> int:
        """Events not yet confirmed by JetStream: in flight plus in the outbox."""
        return len(self._inflight) + len(self.outbox)

    async def publish(self, event: msgspec.Struct) -> None:
        """Hand one event over; it is stored in JetStream or, failing that, in the outbox."""
        await self.publish_record(OutboxRecord(subject_of(event), msg_id(event), msgspec.Raw(encode(event))))

    async def publish_record(self, rec: OutboxRecord) -> asyncio.Future | None:
        """Send ``rec``; its JetStream acknowledgement's future, or None when it went to the outbox (fsync'd: it
        survives a crash). A caller keeping its own write-ahead of the event may drop it once that future holds
        an ack (a failed one: the record goes to the outbox at the next settle)."""
        self.stats.accepted += 1
        if self._queued or not self.nc.is_connected:
            self._to_outbox([rec])
            return None
        try:
            # No wait_stall: the window (settled below) keeps pending acks under the client's limit, and a
            # timed wait would cost a task per event.
            fut = await self.js.publish_async(rec.s, bytes(rec.d), headers={"Nats-Msg-Id": rec.i})
        except Exception as exc:
            self.stats.errors += 1
            log.warning(
                "publish of %s to %s failed (%s: %s): kept in the outbox", rec.i, rec.s, type(exc).__name__, exc
            )
            self._to_outbox([rec])
            return None
        self._inflight.append((rec, fut))
        if len(self._inflight) >= self.window:
            await self._settle()
        return fut

    def requeue(self, records: list[OutboxRecord]) -> None:
        """Records that may or may not have reached JetStream (a crash came between a caller's write-ahead and
        its acknowledgement): into the outbox, delivered in order behind what is in flight, each stored once (a
        record carries its first write time ``t``: one younger than the duplicate window is deduplicated by its
        ``Nats-Msg-Id``, an older one is looked up in the stream first)."""
        if not records:
            return
        self.stats.accepted += len(records)
        self.outbox.append(records)
        self.stats.to_outbox += len(records)
        self._queued = True
        self._wake_drainer()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything accepted so far is in JetStream; False if some is still in the outbox."""
        await self._settle()
        if not self._queued:
            return True
        self._wake_drainer()
        deadline = asyncio.get_running_loop().time() + (timeout_s if timeout_s is not None else self.ack_timeout_s)
        while self._queued and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return not self._queued

    async def close(self) -> None:
        """Settle what is in flight (the rest stays in the outbox for the next run) and stop draining."""
        self._closed = True
        await self._settle()
        if self._drainer is not None:
            self._drainer.cancel()
            try:
                await self._drainer
            except asyncio.CancelledError:
                pass
        self.outbox.close()

    # ------------------------------------------------------------------ internals
    def _to_outbox(self, records: list[OutboxRecord]) -> None:
        self.outbox.append(records)
        self.stats.to_outbox += len(records)
        if not self._queued:
            log.warning("JetStream unavailable: events go to the outbox %s until it returns", self.outbox.directory)
        self._queued = True
        self._wake_drainer()

    async def _settle(self) -> None:
        """Wait for the acks in flight; what is not acknowledged in time goes to the outbox."""
        if not self._inflight:
            return
        inflight, self._inflight = self._inflight, deque()
        futures = [f for _, f in inflight]
        done, _ = await asyncio.wait(futures, timeout=self.ack_timeout_s)
        failed: list[OutboxRecord] = []
        for rec, fut in inflight:
            if fut in done and not fut.cancelled() and fut.exception() is None:
                self.stats.acked += 1
                if fut.result().duplicate:
                    self.stats.duplicates += 1
            else:
                if not fut.done():
                    fut.cancel()
                failed.append(rec)
        if failed:
            self.stats.errors += len(failed)
            log.warning("%d event(s) not acknowledged by JetStream: kept in the outbox", len(failed))
            self._to_outbox(failed)

    def _wake_drainer(self) -> None:
        if self._closed or (self._drainer is not None and not self._drainer.done()):
            return
        self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="oms-outbox-drain")

    async def _drain(self) -> None:
        while self._queued:
            if not self.nc.is_connected:
                await asyncio.sleep(self.retry_s)
                continue
            await self._settle()
            self.outbox.seal()
            segments = self.outbox.segments()
            if not segments:
                self._queued = False  # no await since seal(): nothing can have been appended meanwhile
                log.info("outbox drained: publishing to JetStream directly again")
                return
            for segment in segments:
                records = self.outbox.read(segment)
                if not await self._deliver(records):
                    await asyncio.sleep(self.retry_s)
                    break
                self.outbox.delivered(segment)
                self.stats.drained += len(records)

    async def _deliver(self, records: list[OutboxRecord]) -> bool:
        """Publish ``records`` in windows and wait for every ack; False at the first failure. Records too old
        for the stream's deduplication that the stream already holds are skipped."""
        try:
            stored = await self.lookup.stored(records)
        except Exception as exc:
            self.stats.errors += 1
            log.warning("outbox drain: looking up old records failed (%s: %s): retrying", type(exc).__name__, exc)
            return False
        if stored:
            log.info("outbox drain: %d record(s) older than the duplicate window already stored: skipped", len(stored))
            self.stats.already_stored += len(stored)
            records = [r for r in records if r.i not in stored]
        for start in range(0, len(records), self.window):
            futures = []
            try:
                for rec in records[start : start + self.window]:
                    futures.append(await self.js.publish_async(rec.s, bytes(rec.d), headers={"Nats-Msg-Id": rec.i}))
                done, pending = await asyncio.wait(futures, timeout=self.ack_timeout_s)
            except Exception as exc:
                self.stats.errors += 1
                log.warning("outbox drain failed (%s: %s): retrying", type(exc).__name__, exc)
                for f in futures:
                    f.cancel()
                return False
            bad = [f for f in futures if f not in done or f.cancelled() or f.exception() is not None]
            if bad:
                self.stats.errors += 1
                for f in pending:
                    f.cancel()
                first = next((f.exception() for f in bad if f.done() and not f.cancelled()), None)
                log.warning("outbox drain: %d of %d not acknowledged (%s): retrying", len(bad), len(futures), first)
                return False
            for f in futures:
                self.stats.acked += 1
                if f.result().duplicate:
                    self.stats.duplicates += 1
        return True
