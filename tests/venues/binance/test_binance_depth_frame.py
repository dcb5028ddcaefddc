"""``scan_frame`` (a whole depth frame in one compiled pass) never decides differently from the exact path
(``DepthUnits.envelope`` + ``scan_levels``): on every frame it returns the same ids and levels, or ``FALLBACK``;
on a frame the exact path refuses it always returns ``FALLBACK``. Checked on the recorded frames, on spellings
of them (whitespace, combined stream, key order, unknown keys) and on random byte edits of them."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.model import Instrument, InstrumentSpec
from oms.venues.binance.depth_frame import FALLBACK, scan_frame
from oms.venues.binance.depth_units import DepthUnits
from oms.venues.binance.symbols import BadDecimal

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
SPOT = DepthUnits(Instrument(InstrumentSpec("BTC/USDT", tick_size="0.01", step_size="0.00001")), "BTCUSDT")
USDM = DepthUnits(
    Instrument(InstrumentSpec("BTC/USDT:USDT", kind="perp", tick_size="0.10", step_size="0.001")), "BTCUSDT"
)


def _frames(name: str) -> list[dict]:
    return [r["frame"] for r in json.loads((PAYLOADS / name).read_text()) if r["frame"].get("s") == "BTCUSDT"]


SPOT_FRAMES = _frames("spot_depth.json")
USDM_FRAMES = _frames("usdm_depth.json")


def exact(units: DepthUnits, data: bytes):
    try:
        f = units.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, BadDecimal):
        return None
    return (f.event_ms, f.first_id, f.last_id, f.prev_id), f.sides.tolist(), f.prices.tolist(), f.qtys.tolist()


def fast(units: DepthUnits, data: bytes):
    sides, prices, qtys = (np.zeros(units.max_levels, dtype=np.int64) for _ in range(3))
    ids = np.zeros(4, dtype=np.int64)
    symbol = np.frombuffer(units.venue_symbol.encode(), dtype=np.uint8)
    out = []
    for buf in (np.frombuffer(data, dtype=np.uint8), data):  # an array of the bytes, or the bytes themselves
        k = scan_frame(buf, symbol, units.pplaces, units.qplaces, sides, prices, qtys, ids)
        assert k >= 0 or k == FALLBACK
        out.append(FALLBACK if k < 0 else (tuple(ids.tolist()), *(a[:k].tolist() for a in (sides, prices, qtys))))
    assert out[0] == out[1]
    return out[0]


def check(units: DepthUnits, data: bytes) -> object:
    want, got = exact(units, data), fast(units, data)
    if want is None:
        assert got == FALLBACK, data
    else:
        assert got in (FALLBACK, want), data
    return got


def spellings(frame: dict) -> list[bytes]:
    out = [orjson.dumps(frame), json.dumps(frame).encode(), json.dumps(frame, indent=2).encode()]
    out.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": frame}))
    out.append(json.dumps({"stream": "btcusdt@depth", "data": frame}, indent=1).encode())
    out.append(orjson.dumps({"data": frame, "stream": "btcusdt@depth"}))
    out.append(orjson.dumps({k: frame[k] for k in reversed(frame)}))  # a before b: the scanner falls back
    out.append(orjson.dumps({"x": 1.5e-3, "y": None, "z": True, "w": "ab", **frame, "v": False, "t": -0}))
    out.append(orjson.dumps({**frame, "obj": {"k": [1]}}))
    out.append(b"  " + orjson.dumps(frame) + b"\n")
    return out


@pytest.mark.parametrize("units,frames", [(SPOT, SPOT_FRAMES), (USDM, USDM_FRAMES)], ids=["spot", "usdm"])
def test_the_recorded_frames_are_scanned_exactly(units, frames):
    assert frames
    for frame in frames:
        results = [check(units, data) for data in spellings(frame)]
        assert results[0] != FALLBACK and results[3] != FALLBACK  # Binance's own spellings are the fast ones
        assert results[0] == results[3] == exact(units, orjson.dumps(frame))


bad = [
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],"e":"depthUpdate"}',  # a key twice
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1.0,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1e3,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":01,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdat","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],"x":1-2}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],"x":tru}',
    *(
        b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],"x":%s}' % v
        for v in (b"fals", b"nul", b"xxxxx", b"-", b"1.", b"1e", b".5", b"+1", b"1e+", b"00", b"-x", b'"\x01"')
    ),
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}x',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.001","1"]],"a":[]}',  # too precise
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTC\\u0055SDT","U":1,"u":2,"b":[],"a":[]}',  # an escape: exact path decides
    b'{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]},"stream":"y"}',
    b'{"stream":"x"}',
    b"",
    b"[]",
]


@pytest.mark.parametrize("data", bad)
def test_odd_frames_fall_back_or_agree(data):
    check(SPOT, data)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(SPOT_FRAMES + USDM_FRAMES),
    st.integers(0, 6),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 2), st.sampled_from(b' ",:[]{}-.0159eEtnx\\')), max_size=3),
)
def test_random_edits_never_decide_differently(frame, spelling, edits):
    data = bytearray(spellings(frame)[spelling])
    for where, op, byte in edits:
        i = min(int(where * len(data)), len(data) - 1)
        if op == 0:
            data[i] = byte
        elif op == 1:
            data.insert(i, byte)
        else:
            del data[i]
    check(SPOT, bytes(data))
    check(USDM, bytes(data))
