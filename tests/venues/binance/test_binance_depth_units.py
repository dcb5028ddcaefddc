"""``DepthUnits``: depth-diff frames into the book kernel's arrays give exactly the numbers of the model path
(``parse_to_depth_diff`` and ``Instrument.price``/``qty``), for recorded frames and generated ones; bad frames
and over-precise levels are refused, never rounded; and the arrays keep a ``kernels.book`` book in sync."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import book as kbook
from oms.model import Instrument, InstrumentKind, InstrumentSpec, Market
from oms.venues.binance import parse
from oms.venues.binance import wire_market as wm
from oms.venues.binance.depth_units import DepthUnits
from oms.venues.binance.symbols import BadDecimal, SymbolTable

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
SPOT_SPEC = InstrumentSpec(symbol="BTC/USDT", tick_size="0.01", step_size="0.00001", venue_symbol="BTCUSDT")
USDM_SPEC = InstrumentSpec(
    symbol="BTC/USDT:USDT", kind=InstrumentKind.PERP, tick_size="0.10", step_size="0.001", venue_symbol="BTCUSDT"
)


def model_arrays(frame: bytes, spec: InstrumentSpec, market: Market) -> tuple[list[int], list[int], list[int]]:
    inst = Instrument(spec)
    d = parse.parse_to_depth_diff(wm.DEPTH_DECODER.decode(frame), "binance", SymbolTable(market, [spec]))
    rows = [(kbook.BID, p, q) for p, q in d.bids] + [(kbook.ASK, p, q) for p, q in d.asks]
    return [s for s, _, _ in rows], [inst.price(p) for _, p, _ in rows], [inst.qty(q) for _, _, q in rows]


@pytest.mark.parametrize(
    ("channel", "spec", "market"), [("spot_depth", SPOT_SPEC, Market.SPOT), ("usdm_depth", USDM_SPEC, Market.USDM)]
)
def test_recorded_frames_equal_the_model_path(channel: str, spec: InstrumentSpec, market: Market):
    units = DepthUnits(Instrument(spec), "BTCUSDT")
    for row in json.loads((PAYLOADS / f"{channel}.json").read_text()):
        if row["frame"]["s"] != "BTCUSDT":
            continue
        raw = json.dumps(row["frame"]).encode()
        f = units.decode(raw)
        assert (list(f.sides), list(f.prices), list(f.qtys)) == model_arrays(raw, spec, market)
        assert (f.first_id, f.last_id) == (row["frame"]["U"], row["frame"]["u"])
        assert f.prev_id == row["frame"].get("pu", -1)
        combined = json.dumps({"stream": "btcusdt@depth@100ms", "data": row["frame"]})
        assert list(units.decode(combined).prices) == list(f.prices)


levels = st.lists(
    st.tuples(st.integers(1, 10**9), st.integers(0, 10**8)).map(
        lambda t: [f"{t[0] / 100:.2f}0000", f"{t[1] / 10**5:.8f}"]
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(bids=levels, asks=levels, spaces=st.booleans())
def test_generated_frames_equal_the_model_path(bids, asks, spaces):
    frame = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 5, "u": 9, "b": bids, "a": asks}
    raw = json.dumps(frame, separators=(", ", ": ") if spaces else (",", ":")).encode()
    f = DepthUnits(Instrument(SPOT_SPEC), "BTCUSDT").decode(raw)
    assert (list(f.sides), list(f.prices), list(f.qtys)) == model_arrays(raw, SPOT_SPEC, Market.SPOT)


@pytest.mark.parametrize(
    ("levels_json", "error"),
    [
        ('[["100.001","1"]]', BadDecimal),  # a price finer than the 0.01 tick
        ('[["100.00","0.000001"]]', BadDecimal),  # a quantity finer than the lot
        ('[["100","1"]', msgspec.DecodeError),  # truncated
        ('[[100.0,"1"]]', msgspec.ValidationError),  # a number, not a decimal string
        ('[["1e5","1"]]', msgspec.ValidationError),
        ('[["-1","1"]]', msgspec.ValidationError),
        ('[["100"]]', msgspec.ValidationError),
        ('{"p":"1"}', msgspec.ValidationError),
        ('[["1.","1"]]', msgspec.ValidationError),
    ],
)
def test_bad_levels_are_refused(levels_json: str, error: type[Exception]):
    raw = '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":' + levels_json + ',"a":[]}'
    with pytest.raises(error):
        DepthUnits(Instrument(SPOT_SPEC), "BTCUSDT").decode(raw)


def test_wrong_symbol_event_or_units_are_refused():
    units = DepthUnits(Instrument(SPOT_SPEC), "BTCUSDT")
    with pytest.raises(msgspec.ValidationError, match="ETHUSDT"):
        units.decode('{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}')
    with pytest.raises(msgspec.ValidationError, match="trade"):
        units.decode('{"e":"trade","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}')
    with pytest.raises(ValueError, match="power of ten"):
        DepthUnits(Instrument(InstrumentSpec(symbol="X/USDT", tick_size="0.05", venue_symbol="XUSDT")), "XUSDT")


def test_arrays_keep_a_kernel_book_in_sync():
    units = DepthUnits(Instrument(SPOT_SPEC), "BTCUSDT")
    lv, meta = kbook.new_books(1, 64)
    kbook.apply_snapshot(lv, meta, 0, *(np.array(x, dtype=np.int64) for x in ([10000], [5], [10100], [7])), 10)

    def diff(u0: int, u1: int, bids, asks) -> int:
        raw = json.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u0, "u": u1, "b": bids, "a": asks})
        f = units.decode(raw)
        return kbook.apply_diff(lv, meta, 0, f.first_id, f.last_id, f.prev_id, f.sides, f.prices, f.qtys)

    assert diff(11, 12, [["100.00", "0"], ["100.50", "0.00003"]], [["101.00", "0.00009"]]) == kbook.APPLIED
    assert kbook.best(lv, meta, 0, kbook.BID) == (10050, 3) and kbook.best(lv, meta, 0, kbook.ASK) == (10100, 9)
    assert diff(14, 15, [], []) == kbook.GAP  # 13 is missing
