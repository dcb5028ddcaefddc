"""Events reach JetStream once and in order, through NATS outages, restarts and replays (real nats-server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest
from nats.js.api import StreamConfig

from oms.bus import (
    BusSettings,
    EventPublisher,
    Outbox,
    OutboxRecord,
    ensure_streams,
    msg_id,
    stream_configs,
    subject_of,
)
from oms.bus.replay import StoredLookup
from oms.model import Fill
from oms.model.codec import decode, encode
from tests.bus.conftest import connect, fill, order_event


async def trade_ids(js, stream: str = "TRADES") -> list[str]:
    """Every message in ``stream``, in stream order, as trade ids (read with an ordered consumer)."""
    info = await js.stream_info(stream)
    n = info.state.messages
    if n == 0:
        return []
    sub = await js.subscribe(f"{stream.lower()}.>", ordered_consumer=True, deliver_policy="all")
    out = []
    try:
        while len(out) < n:
            msg = await sub.next_msg(timeout=5)
            out.append(decode(msg.data, Fill).trade_id)
    finally:
        await sub.unsubscribe()
    return out


async def test_streams_are_created_once_with_30_day_file_retention(nc):
    js = nc.jetstream()
    settings = BusSettings(duplicate_window_s=120)
    first = await ensure_streams(js, settings)
    assert set(first) == {"ORDERS", "TRADES", "POSITIONS", "BALANCES", "TRANSFERS", "RISK", "FUNDING"}
    again = await ensure_streams(js, settings)
    assert set(again.values()) == {"ok"}
    info = await js.stream_info("TRADES")
    assert info.config.max_age == pytest.approx(30 * 86400) and info.config.storage == "file"
    assert info.config.subjects == ["trades.>"]
    changed = await ensure_streams(js, BusSettings(duplicate_window_s=60))
    assert set(changed.values()) == {"updated"}
    with pytest.raises(ValueError, match="storage"):
        await ensure_streams(js, BusSettings(duplicate_window_s=60, storage="memory"))


def test_bad_bus_settings_name_the_setting():
    with pytest.raises(ValueError, match="retention_days"):
        BusSettings(retention_days=0)
    with pytest.raises(ValueError, match="duplicate_window_s"):
        BusSettings(duplicate_window_s=0)
    assert all(isinstance(c, StreamConfig) for c in stream_configs())


async def test_publish_in_windows_and_replays_are_stored_once(own_nats, tmp_path: Path):
    nc = await connect(own_nats)
    try:
        await ensure_streams(nc.jetstream())
        async with EventPublisher(nc, Outbox(tmp_path / "outbox"), window=64) as pub:
            for n in range(500):
                await pub.publish(fill(n))
            await pub.publish(order_event(1))
            assert await pub.flush()
            for n in range(500):  # a replay after a restart: the same events again
                await pub.publish(fill(n))
            assert await pub.flush()
        assert pub.stats.acked == 1001 and pub.stats.duplicates == 500 and pub.stats.to_outbox == 0
        assert await trade_ids(nc.jetstream()) == [str(n) for n in range(500)]
        assert (await nc.jetstream().stream_info("ORDERS")).state.messages == 1
    finally:
        await nc.close()


async def test_nats_down_mid_run_loses_nothing_and_keeps_order(own_nats, tmp_path: Path):
    nc = await connect(own_nats)
    try:
        await ensure_streams(nc.jetstream())
        pub = EventPublisher(nc, Outbox(tmp_path / "outbox"), window=50, ack_timeout_s=0.5, retry_s=0.05)
        pub.start()
        for n in range(300):
            await pub.publish(fill(n))
        own_nats.down()  # nats-server stopped mid-run
        for n in range(300, 700):
            await pub.publish(fill(n))
        assert pub.stats.to_outbox > 0 and len(pub.outbox) > 0
        own_nats.up()  # same port, same store: JetStream keeps what it had
        assert await pub.flush(timeout_s=30), f"outbox not drained: {pub.stats}"
        await pub.close()
        ids = await trade_ids(nc.jetstream())
        assert sorted(ids, key=int) == [str(n) for n in range(700)], "every event exactly once"
        assert len(set(ids)) == 700
        assert list(Path(tmp_path / "outbox").glob("outbox.*.sealed.jsonl")) == []
    finally:
        await nc.close()


async def test_outbox_left_by_a_crashed_run_is_delivered_by_the_next(own_nats, tmp_path: Path, caplog):
    outdir = tmp_path / "outbox"
    # A run that could not reach NATS wrote 40 events to its outbox and died mid-append of the 41st.
    crashed = Outbox(outdir)
    crashed.append([OutboxRecord(subject_of(e), msg_id(e), msgspec.Raw(encode(e))) for e in map(fill, range(40))])
    crashed.close()
    with open(outdir / "outbox.jsonl", "ab") as fh:
        fh.write(b'{"s":"trades.binance.sub_mm.spot.BTC-USDT","i":"fill:x","d":{"type":"fi')  # torn line
    nc = await connect(own_nats)
    try:
        await ensure_streams(nc.jetstream())
        nxt = EventPublisher(nc, Outbox(outdir), window=10, retry_s=0.05)
        assert nxt.backlog == 41
        nxt.start()
        await nxt.publish(fill(40))  # queues behind the old run's events
        assert await nxt.flush(timeout_s=30)
        await nxt.close()
        assert await trade_ids(nc.jetstream()) == [str(n) for n in range(41)]
        assert nxt.outbox.bad_lines == 1 and nxt.backlog == 0
        assert "line 41 skipped" in caplog.text
    finally:
        await nc.close()


async def test_outbox_older_than_the_duplicate_window_is_looked_up_not_stored_twice(own_nats, tmp_path: Path):
    """A stream that remembers message ids for 1 s: an outbox record written longer ago than that, whose event
    the stream already holds (the ack was lost), is found in the stream on replay and skipped."""
    nc = await connect(own_nats)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name="TRADES", subjects=["trades.>"], duplicate_window=1.0))
        assert (await js.stream_info("TRADES")).config.duplicate_window == pytest.approx(1.0)
        stored = [fill(n) for n in range(10)]
        for e in stored:  # stored by a run whose acks never came back, so it kept them in its outbox too
            await js.publish(subject_of(e), encode(e), headers={"Nats-Msg-Id": msg_id(e)})
        outdir = tmp_path / "outbox"
        crashed = Outbox(outdir)
        crashed.append([OutboxRecord(subject_of(e), msg_id(e), msgspec.Raw(encode(e))) for e in map(fill, range(20))])
        crashed.close()
        legacy = fill(20)  # a line written before records carried their write time: read as old
        with open(outdir / "outbox.jsonl", "ab") as fh:
            fh.write(
                msgspec.json.encode({"s": subject_of(legacy), "i": msg_id(legacy), "d": msgspec.Raw(encode(legacy))})
            )
            fh.write(b"\n")
        assert all(r.t > 0 for r in Outbox(outdir).read(outdir / "outbox.jsonl")[:20])
        await asyncio.sleep(2.0)  # past the window: JetStream itself no longer knows these ids
        probe = await js.publish("trades.probe", b"x", headers={"Nats-Msg-Id": "probe"})
        await asyncio.sleep(1.5)
        again = await js.publish("trades.probe", b"x", headers={"Nats-Msg-Id": "probe"})
        assert not again.duplicate and again.seq == probe.seq + 1, "the window must have passed for this test"
        pub = EventPublisher(nc, Outbox(outdir), window=7, ack_timeout_s=0.2, retry_s=0.05)
        pub.start()
        assert await pub.flush(timeout_s=30), f"outbox not drained: {pub.stats}"
        await pub.close()
        info = await js.stream_info("TRADES")
        assert info.state.messages == 21 + 2  # fills 0..20 once each, and the two probes
        assert pub.stats.already_stored == 10 and pub.stats.drained == 21 and pub.lookup.looked_up == 21
        sub = await js.subscribe("trades.binance.>", ordered_consumer=True, deliver_policy="all")
        ids = [decode((await sub.next_msg(timeout=5)).data, Fill).trade_id for _ in range(21)]
        await sub.unsubscribe()
        assert ids == [str(n) for n in range(21)]
    finally:
        await nc.close()


async def test_records_younger_than_the_window_are_left_to_msg_id_deduplication(own_nats):
    nc = await connect(own_nats)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name="TRADES", subjects=["trades.>"], duplicate_window=60.0))
        e = fill(1)
        await js.publish(subject_of(e), encode(e), headers={"Nats-Msg-Id": msg_id(e)})
        rec = OutboxRecord(subject_of(e), msg_id(e), msgspec.Raw(encode(e)), t=time.time_ns())
        absent = OutboxRecord(subject_of(fill(2)), msg_id(fill(2)), msgspec.Raw(encode(fill(2))), t=1)
        lookup = StoredLookup(js, margin_s=1.0)
        assert await lookup.stored([rec]) == set() and lookup.looked_up == 0  # young: JetStream dedups it
        old = msgspec.structs.replace(rec, t=time.time_ns() - 61 * 1_000_000_000)
        assert await lookup.stored([old, absent]) == {msg_id(e)} and lookup.looked_up == 2
    finally:
        await nc.close()
