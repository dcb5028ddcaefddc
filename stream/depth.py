"""Depth-diff frames into the book kernel in one compiled call: the daemon's market-data hot path.

``BookFeed(units, lv, meta, book).apply(frame)`` validates the frame's envelope (``DepthUnits.envelope``: event
type, symbol, sequence numbers), then scans both sides' price levels into int64 units and applies them to the
book (``kernels.book.apply_diff``: sequence rules, gap detection) inside one Numba function, so a frame costs
one compiled call instead of a scan per side plus the kernel's. The result is the book kernel's (``APPLIED``,
``STALE``, ``GAP``, ``NOT_READY``); a bad frame raises as ``DepthUnits.decode`` does and leaves the book as it
was. ``tests/stream/test_depth.py`` checks it against ``DepthUnits.decode`` + ``apply_diff``.

A frame first goes through ``oms.venues.binance.depth_frame.scan_frame`` (envelope and levels in one compiled
pass, the kernel in the same call: ``scan_frame_and_apply``); one outside that scanner's strict subset of JSON
(or a bad one) takes the path above, which decides what it is.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from kernels.book import apply_diff
from oms.venues.binance.depth_frame import FALLBACK, FRAME_BYTES, scan_frame
from oms.venues.binance.depth_units import ASK, BID, DepthUnits, scan_levels

_BYTES = types.Array(types.uint8, 1, "C", readonly=True)
_I64 = types.Array(types.int64, 1, "C")
_LV = types.Array(types.int64, 4, "C")
_META = types.Array(types.int64, 2, "C")


@njit(
    types.int64(_BYTES, _BYTES, types.int64, types.int64, _I64, _I64, _I64, _LV, _META, types.int64, types.int64,
                types.int64, types.int64),
    cache=True,
)  # fmt: skip
def scan_and_apply(bids, asks, pplaces, qplaces, sides, prices, qtys, lv, meta, book, first_id, last_id, prev_id):
    """Both sides' levels scanned, then applied to ``book``: the book kernel's result, or a scanner error < 0
    with the book untouched."""
    k = scan_levels(bids, pplaces, qplaces, BID, sides, prices, qtys, 0)
    if k >= 0:
        k = scan_levels(asks, pplaces, qplaces, ASK, sides, prices, qtys, k)
    if k < 0:
        return k
    return apply_diff(lv, meta, book, first_id, last_id, prev_id, sides[:k], prices[:k], qtys[:k])


@njit(
    types.int64(FRAME_BYTES, _BYTES, types.int64, types.int64, _I64, _I64, _I64, _I64, _LV, _META, types.int64),
    cache=True,
)
def scan_frame_and_apply(frame, symbol, pplaces, qplaces, sides, prices, qtys, ids, lv, meta, book):
    """A whole frame scanned (``scan_frame``), then applied to ``book``: the kernel's result, with the frame's
    event time in ``ids[4]``; or ``FALLBACK`` with the book untouched."""
    k = scan_frame(frame, symbol, pplaces, qplaces, sides, prices, qtys, ids)
    if k < 0:
        return FALLBACK
    r = apply_diff(lv, meta, book, ids[1], ids[2], ids[3], sides[:k], prices[:k], qtys[:k])
    ids[4] = ids[0]
    return r


class BookFeed:
    """One instrument's depth frames into one book of ``kernels.book``'s arrays."""

    __slots__ = ("units", "lv", "meta", "book", "_sides", "_prices", "_qtys", "_ids", "_symbol")

    def __init__(self, units: DepthUnits, lv: np.ndarray, meta: np.ndarray, book: int) -> None:
        self.units = units
        self.lv, self.meta, self.book = lv, meta, book
        self._sides = np.zeros(units.max_levels, dtype=np.int64)
        self._prices = np.zeros(units.max_levels, dtype=np.int64)
        self._qtys = np.zeros(units.max_levels, dtype=np.int64)
        self._ids = np.zeros(5, dtype=np.int64)  # scan_frame's E U u pu, and the event time of the last applied
        self._symbol = np.frombuffer(units.venue_symbol.encode(), dtype=np.uint8)

    @property
    def last_event_ms(self) -> int:
        """Event time of the last frame applied (0 before the first)."""
        return int(self._ids[4])

    def apply(self, frame: bytes | str) -> int:
        data = frame.encode() if type(frame) is str else frame
        u = self.units
        if type(data) is bytes:
            r = scan_frame_and_apply(
                data, self._symbol, u.pplaces, u.qplaces, self._sides, self._prices,
                self._qtys, self._ids, self.lv, self.meta, self.book,
            )  # fmt: skip
            if r != FALLBACK:
                return r
        ev = u.envelope(frame)
        r = scan_and_apply(
            np.frombuffer(ev.b, dtype=np.uint8), np.frombuffer(ev.a, dtype=np.uint8), u.pplaces, u.qplaces,
            self._sides, self._prices, self._qtys, self.lv, self.meta, self.book, ev.U, ev.u, ev.pu,
        )  # fmt: skip
        if r < 0:
            raise u.error(r)
        self._ids[4] = ev.E
        return r
