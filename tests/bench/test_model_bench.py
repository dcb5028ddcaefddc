"""Model benchmarks: the codec (NATS/file messages), client order id derivation and decimal -> units.

Run with ``make bench``. Each row prints p50/p99 of single calls (``perf_counter_ns`` around each, GC off,
20,000 calls after 1,000 warm-up) next to a baseline measured in the same run: the standard library doing
the same job (``json.dumps``/``json.loads`` of the equivalent dict, ``Decimal`` division). The baselines do
less than the model (``json.loads`` checks no field; the model's decode checks every decimal, id and symbol
against its pattern, which is most of its cost), so the ratio prices that checking; nothing is asserted.
"""

from __future__ import annotations

import gc
import json
import time
from decimal import Decimal

import msgspec
import pytest

from oms.model import Fill, Instrument, InstrumentSpec, OrderEvent, decode, encode
from tests.model.samples import SAMPLES

pytestmark = pytest.mark.bench
N, WARMUP = 20_000, 1_000


def _lat(fn):
    gc.disable()
    try:
        for _ in range(WARMUP):
            fn()
        out = []
        for _ in range(N):
            t = time.perf_counter_ns()
            fn()
            out.append(time.perf_counter_ns() - t)
    finally:
        gc.enable()
    out.sort()
    return out[N // 2], out[N * 99 // 100]


def _row(name, fn, base_name, base):
    p50, p99 = _lat(fn)
    b50, b99 = _lat(base)
    print(
        f"{name:<34} p50 {p50 / 1000:6.2f} us  p99 {p99 / 1000:6.2f} us   "
        f"baseline {base_name}: p50 {b50 / 1000:6.2f} us  p99 {b99 / 1000:6.2f} us   x{b50 / p50:5.1f}"
    )
    return p50, b50


def test_codec_and_ids():
    event = next(s for s in SAMPLES if isinstance(s, OrderEvent))
    fill = next(s for s in SAMPLES if isinstance(s, Fill))
    data, fdata = encode(event), encode(fill)
    as_dict = msgspec.to_builtins(event)
    text = json.dumps(as_dict)
    print()
    _row("encode OrderEvent (with its fill)", lambda: encode(event), "json.dumps(dict)", lambda: json.dumps(as_dict))
    _row("decode+validate any message", lambda: decode(data), "json.loads (no checks)", lambda: json.loads(text))
    _row("decode+validate Fill by type", lambda: decode(fdata, Fill), "json.loads (no checks)",
         lambda: json.loads(fdata))  # fmt: skip
    cmd = SAMPLES[0]
    cmd_dict = msgspec.to_builtins(cmd)
    bare = msgspec.structs.replace(cmd, client_order_id=None)
    _row("client order id derivation", bare.with_client_order_id, "json.dumps(sorted) only",
         lambda: json.dumps(cmd_dict, sort_keys=True))  # fmt: skip
    inst = Instrument(InstrumentSpec("BTC/USDT", tick_size="0.01", step_size="0.00001"))
    tick = Decimal("0.01")
    _row("Instrument.price (exact, checked)", lambda: inst.price("64250.17"), "Decimal(s) / tick",
         lambda: Decimal("64250.17") / tick)  # fmt: skip
