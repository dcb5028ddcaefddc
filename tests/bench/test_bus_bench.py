"""Events to JetStream sustained, beside the raw nats-py ``publish_async`` rate measured in the same run.

Run with ``make bench``. Both sides publish the same 200-byte-class events (model ``Fill``s) to a file-backed
stream on a fresh nats-server on loopback, with acks settled in windows of 1,000:

* raw: pre-encoded payloads, ``js.publish_async`` + a fixed ``Nats-Msg-Id``, then ``asyncio.wait`` on the
  window's futures — nats-py's own floor;
* ours: ``EventPublisher.publish(fill)`` per event — subject and message id derivation, encoding, in-flight
  bookkeeping and the window settle included.

Each side runs 3 times, interleaved, on a new stream each time; the best rate of each is compared (this
machine
is shared; the best run is the least disturbed). Target: ours >= 80% of raw. A miss is a warning, never a
failure.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

import pytest

from oms.bus import BusSettings, EventPublisher, Outbox, ensure_streams
from oms.bus.connect import connect_as
from oms.model.codec import encode
from oms.services.nats import NatsService
from tests.bus.conftest import fill
from tests.harness.servers import loopback_settings, nats_settings

pytestmark = pytest.mark.bench
N = 30_000
WINDOW = 1000


async def _fresh(js) -> None:
    for name in ("TRADES",):
        try:
            await js.delete_stream(name)
        except Exception:
            pass
    await ensure_streams(js, BusSettings(duplicate_window_s=120))


async def _raw(js, events) -> float:
    payloads = [("trades.binance.sub_mm.spot.BTC-USDT", encode(e), f"fill:{e.trade_id}") for e in events]
    t0 = time.perf_counter()
    for start in range(0, len(payloads), WINDOW):
        futs = [
            await js.publish_async(s, d, headers={"Nats-Msg-Id": i}) for s, d, i in payloads[start : start + WINDOW]
        ]
        await asyncio.wait(futs)
    return len(payloads) / (time.perf_counter() - t0)


async def _ours(nc, events, outdir: Path) -> float:
    pub = EventPublisher(nc, Outbox(outdir), window=WINDOW)
    t0 = time.perf_counter()
    for e in events:
        await pub.publish(e)
    assert await pub.flush()
    rate = len(events) / (time.perf_counter() - t0)
    assert pub.stats.to_outbox == 0 and pub.stats.acked == len(events)
    await pub.close()
    return rate


def test_jetstream_publish_rate_against_raw_nats_py(tmp_path: Path):
    svc = NatsService(loopback_settings(tmp_path / "nats"))
    svc.up()

    async def run() -> tuple[float, float]:
        nc = await connect_as(nats_settings(svc))
        js = nc.jetstream(publish_async_max_pending=4 * WINDOW)
        events = [fill(n) for n in range(N)]
        raw, ours = [], []
        for k in range(3):
            await _fresh(js)
            raw.append(await _raw(js, events))
            await _fresh(js)
            ours.append(await _ours(nc, events, tmp_path / f"outbox{k}"))
        await nc.close()
        return max(raw), max(ours)

    try:
        raw, ours = asyncio.run(run())
    finally:
        svc.down()
    ratio = ours / raw
    print(
        f"\nJetStream publish, {N:,} fills, windows of {WINDOW}: EventPublisher {ours:,.0f}/s, "
        f"raw nats-py publish_async {raw:,.0f}/s, ratio {ratio:.2f} (target >= 0.80)"
    )
    if ratio < 0.8:
        warnings.warn(f"EventPublisher at {ratio:.2f} of raw publish_async (target 0.80)", stacklevel=1)
