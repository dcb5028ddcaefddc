"""``BookFeed``: depth frames applied to the book kernel in one compiled call leave exactly the book that
``DepthUnits.decode`` + ``kernels.book.apply_diff`` leave, with the same results (applied, stale, gap, not
ready); a bad frame raises and leaves the book as it was."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import book as kbook
from oms.model import Instrument, InstrumentSpec
from oms.venues.binance.depth_units import DepthUnits
from oms.venues.binance.symbols import BadDecimal
from stream.depth import BookFeed

PAYLOADS = Path(__file__).resolve().parents[1] / "venues" / "payloads" / "binance"
SPEC = InstrumentSpec(symbol="BTC/USDT", tick_size="0.01", step_size="0.00001", venue_symbol="BTCUSDT")
FRAME = next(r["frame"] for r in json.loads((PAYLOADS / "spot_depth.json").read_text()) if r["frame"]["s"] == "BTCUSDT")


def _books():
    units = DepthUnits(Instrument(SPEC), "BTCUSDT")
    lv, meta = kbook.new_books(2, 256)
    first = units.decode(json.dumps({**FRAME, "U": 1, "u": 1}))
    n_bids = int((first.sides == kbook.BID).sum())
    p, q = first.prices.copy(), first.qtys.copy()
    for b in (0, 1):
        kbook.apply_snapshot(lv, meta, b, p[:n_bids].copy(), q[:n_bids].copy(), p[n_bids:].copy(), q[n_bids:].copy(), 5)
    return units, lv, meta


ids = st.tuples(st.integers(0, 12), st.integers(0, 3)).map(lambda t: (t[0], t[0] + t[1]))
qty = st.sampled_from(["0.00000000", "0.00100000", "1.50000000", "0.000001"])  # the last one is too precise


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ids, qty, st.integers(0, 19)), min_size=1, max_size=12))
def test_the_feed_leaves_the_book_the_reference_path_leaves(steps):
    units, lv, meta = _books()
    feed = BookFeed(units, lv, meta, 1)
    for (u0, u1), q, level in steps:
        bids = [list(x) for x in FRAME["b"]]
        bids[level][1] = q
        raw = json.dumps({**FRAME, "U": u0, "u": u1, "b": bids}).encode()
        try:
            f = units.decode(raw)
        except BadDecimal:
            before = (lv[1].copy(), meta[1].copy())
            with pytest.raises(BadDecimal):
                feed.apply(raw)
            assert np.array_equal(lv[1], before[0]) and np.array_equal(meta[1], before[1])
            continue
        want = kbook.apply_diff(lv, meta, 0, f.first_id, f.last_id, f.prev_id, f.sides, f.prices, f.qtys)
        assert feed.apply(raw) == want
        assert np.array_equal(lv[0], lv[1]) and np.array_equal(meta[0], meta[1])
    assert feed.last_event_ms in (0, FRAME["E"])


def test_bad_frames_are_refused_by_name():
    units, lv, meta = _books()
    feed = BookFeed(units, lv, meta, 0)
    with pytest.raises(msgspec.ValidationError, match="not a BTCUSDT depthUpdate"):
        feed.apply(json.dumps({**FRAME, "s": "ETHUSDT"}))
    with pytest.raises(msgspec.ValidationError, match="levels are not"):
        feed.apply(json.dumps({**FRAME, "U": 6, "u": 6, "b": [["1.00"]]}))
    assert feed.apply(json.dumps({"stream": "btcusdt@depth", "data": {**FRAME, "U": 6, "u": 6}})) == kbook.APPLIED


def test_the_feed_refuses_book_arrays_it_cannot_use():
    """The compiled call unboxes the book's arrays unchecked, so the feed checks them when it is made."""
    units, lv, meta = _books()
    for bad_lv, bad_meta in (
        (lv.astype(np.float64), meta),  # wrong dtype
        (lv[:, :, :, ::2], meta),  # not contiguous
        (lv, meta.astype(np.int32)),
        (lv[0], meta),  # wrong rank
    ):
        with pytest.raises(TypeError, match="book arrays"):
            BookFeed(units, bad_lv, bad_meta, 0)
    frozen = lv.copy()
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="book arrays"):
        BookFeed(units, frozen, meta, 0)
    for book in (-1, 2):
        with pytest.raises(ValueError, match="not in arrays of 2 books"):
            BookFeed(units, lv, meta, book)
    feed = BookFeed(units, lv, meta, 1)
    assert (feed.lv is lv, feed.meta is meta, feed.book) == (True, True, 1)
    with pytest.raises(AttributeError):
        feed.lv = lv.astype(np.float64)
    assert feed.apply(json.dumps({**FRAME, "U": 6, "u": 6}).encode()) == kbook.APPLIED
