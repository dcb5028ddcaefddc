"""The parents' write-ahead: a parent's events go into its KV state with their seq, in one write, before they
are published and logged. The daemon is stopped dead at each seam after that write (its step frozen there, as
a kill -9 would leave it: nothing after the seam runs), a new daemon resumes the parent, and every event of it
is in JetStream and in parents.jsonl exactly once, in seq order. With nats-server down, no state write succeeds:
the events wait in the parent's state (none published, none logged) and go out once when it is back."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import pytest

from oms.model.parents import ParentEvent, ParentStatus
from oms.services.nats import NatsService
from tests.harness.servers import loopback_settings
from tests.stream.conftest import Bench, unique, until
from tests.stream.emulation_kit import (
    _logged,
    finished,
    kv_parent,
    parent,
    parent_events,
    send_parent,
    three_views_agree,
)


def _is_target(ev: ParentEvent) -> bool:
    return ev.kind == "child_sent"


class Freeze:
    """Stops the first ``child_sent`` event of the daemon's parents at one seam, for good."""

    def __init__(self, d, seam: str):
        self.d, self.seam = d, seam
        self.frozen = asyncio.Event()
        self.event: ParentEvent | None = None
        eng = d.emulation.parents
        publish, publish_record = eng.publish, d.publisher.publish_record

        async def engine_publish(ev: ParentEvent):
            if self.event is not None and ev.parent_id == self.event.parent_id:
                await self._halt(ev)  # the parent's later events: the process is gone
            if seam == "kv_written" and _is_target(ev):
                await self._halt(ev)
            ack = await publish(ev)
            if seam == "logged" and _is_target(ev):
                await self._halt(ev)
            return ack

        async def record_publish(rec):
            ack = await publish_record(rec)
            if seam == "published" and rec.i.startswith("parent:"):
                ev = msgspec.json.decode(bytes(rec.d), type=ParentEvent)
                if _is_target(ev):
                    await self._halt(ev)  # in JetStream, not yet in parents.jsonl
            return ack

        eng.publish = engine_publish
        d.publisher.publish_record = record_publish

    async def _halt(self, ev: ParentEvent):
        if self.event is None:
            self.event = ev
        self.frozen.set()
        await asyncio.Event().wait()

    async def kill(self, pid: str) -> None:
        """Nothing more of the parent runs (its frozen step is cancelled where it stands); the daemon stops."""
        eng = self.d.emulation.parents
        eng.stop()
        task = eng.parents[pid].task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.d.stop()


@pytest.mark.parametrize("seam", ["kv_written", "published", "logged"])
async def test_a_parent_stopped_after_its_state_write_loses_and_repeats_no_event(bench, nc, seam):
    name = unique("wal")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    freeze = Freeze(d, seam)
    try:
        twap = parent(acct, "twap", "0.003", slices=3, duration_s=3.0, max_slippage_bps=200, intent=f"wal-{seam}")
        pid = await send_parent(nc, acct, twap)
        await asyncio.wait_for(freeze.frozen.wait(), 30)
        ev = freeze.event
        assert ev is not None and ev.parent_id == pid
        # the seam is where it says: the state holds the event ahead; JetStream and the log have it or not
        st = await kv_parent(nc, acct, pid)
        assert ev.seq in [e.seq for e in st.pending] and st.seq >= ev.seq
        in_orders = [e.seq for e in await parent_events(nc, acct, pid)].count(ev.seq)
        in_log = [e.seq for e in _logged(d, acct, pid)].count(ev.seq)
        if seam == "published":  # acknowledged a moment after it was sent
            await until(lambda: _count_in_orders(nc, acct, pid, ev.seq), what="the event in ORDERS")
            in_orders = 1
        assert (in_orders, in_log) == {"kv_written": (0, 0), "published": (1, 0), "logged": (1, 1)}[seam]
    finally:
        await freeze.kill(pid)
    d2 = bench.daemon()
    await d2.start()
    try:
        st = await finished(d2, pid, status=ParentStatus.DONE, timeout=60)
        await three_views_agree(nc, d2, acct, pid)  # seqs 1..n once each in ORDERS, parents.jsonl the same
        evs = await parent_events(nc, acct, pid)
        assert [e.seq for e in evs].count(ev.seq) == 1
        assert [(e.seq, e.kind) for e in evs if e.seq == ev.seq] == [(ev.seq, "child_sent")]
        assert [e.seq for e in _logged(d2, acct, pid)].count(ev.seq) == 1
        # the finished parent's last events come off its write-ahead once acknowledged
        await until(lambda: _no_pending(nc, acct, pid), what="the write-ahead emptied in KV")
        assert st.seq == len(evs)
    finally:
        await d2.stop()


async def _count_in_orders(nc, acct, pid, seq) -> bool:
    return [e.seq for e in await parent_events(nc, acct, pid)].count(seq) == 1


async def _no_pending(nc, acct, pid) -> bool:
    st = await kv_parent(nc, acct, pid)
    return st.status is ParentStatus.DONE and not st.pending


async def test_with_nats_down_a_parents_events_wait_in_its_state_and_go_out_once(exchange, tmp_path):
    svc = NatsService(loopback_settings(tmp_path / "own-nats"))
    svc.up()
    bench = Bench(exchange, svc, tmp_path)
    name = unique("walout")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    nc = None
    try:
        eng = d.emulation.parents
        i, _ = eng.book.number("binance", "BTC/USDT")
        await until(lambda: eng.book.price(i), what="a BTC/USDT price (a schedule is planned from it)")
        twap = parent(acct, "twap", "0.003", slices=3, duration_s=4.0, max_slippage_bps=200, intent="wal-outage")
        nc = await bench.connect("trader")
        pid = await send_parent(nc, acct, twap)
        w = eng.parents[pid]
        await until(lambda: len(w.st.children) >= 1, what="the first slice")
        svc.down()
        await until(lambda: not d.nc.is_connected, what="the daemon to see NATS gone")
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=90)  # the venue is not NATS: it goes on
        assert "done" in [e.kind for e in st.pending]  # waiting in the state, numbered
        assert "done" not in [e.kind for e in _logged(d, acct, pid)]  # neither published nor logged yet
        svc.up()  # same port, same store
        await until(lambda: d.nc.is_connected and nc.is_connected, timeout=60, what="both clients reconnected")
        await until(lambda: _no_pending(nc, acct, pid), timeout=60, what="the state written, its events out")
        await three_views_agree(nc, d, acct, pid)  # seqs 1..n once each in ORDERS; parents.jsonl the same
    finally:
        if nc is not None:
            await nc.close()
        await d.stop()
        svc.down()


async def test_a_parent_event_whose_ack_failed_goes_again_through_the_outbox_once(bench, nc):
    """One step's event never reaches JetStream and its ack fails (as when the publisher gives up waiting): the
    next write does not take it off the state by that answer but requeues it through the outbox, so JetStream has
    it once, and parents.jsonl, which has it already, gets no second line."""
    name = unique("walack")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    publish_record, failed = d.publisher.publish_record, []

    async def lost_answer(rec):
        if rec.i.startswith("parent:") and not failed:
            ev = msgspec.json.decode(bytes(rec.d), type=ParentEvent)
            if _is_target(ev):  # never reached JetStream, and its ack failed
                failed.append(ev)
                gone = asyncio.get_running_loop().create_future()
                gone.set_exception(TimeoutError("no ack"))
                return gone
        return await publish_record(rec)

    d.publisher.publish_record = lost_answer
    try:
        outboxed = d.publisher.stats.to_outbox
        twap = parent(acct, "twap", "0.003", slices=3, duration_s=3.0, max_slippage_bps=200, intent="wal-ack")
        pid = await send_parent(nc, acct, twap)
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=60)
        [ev] = failed
        assert d.publisher.stats.to_outbox > outboxed  # requeued
        await three_views_agree(nc, d, acct, pid)  # seqs 1..n once each in ORDERS, parents.jsonl the same
        assert [e.seq for e in await parent_events(nc, acct, pid)].count(ev.seq) == 1
        assert [e.seq for e in _logged(d, acct, pid)].count(ev.seq) == 1
        await until(lambda: _no_pending(nc, acct, pid), what="the write-ahead emptied in KV")
        assert st.seq >= ev.seq
    finally:
        await d.stop()
