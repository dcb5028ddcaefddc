"""Depth-diff frames into the book kernel in one compiled call: the daemon's market-data hot path.

``BookFeed(units, lv, meta, book).apply(frame)`` validates the frame's envelope (``DepthUnits.envelope``: event
type, symbol, sequence numbers), then scans both sides' price levels into int64 units and applies them to the
book (``kernels.book.apply_diff``: sequence rules, gap detection) inside one Numba function, so a frame costs
one compiled call instead of a scan per side plus the kernel's. The result is the book kernel's (``APPLIED``,
``STALE``, ``GAP``, ``NOT_READY``); a bad frame raises as ``DepthUnits.decode`` does and leaves the book as it
was. ``tests/stream/test_depth.py`` checks it against ``DepthUnits.decode`` + ``apply_diff``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from kernels.book import apply_diff
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


class BookFeed:
    """One instrument's depth frames into one book of ``kernels.book``'s arrays."""

    __slots__ = ("units", "lv", "meta", "book", "last_event_ms", "_sides", "_prices", "_qtys")

    def __init__(self, units: DepthUnits, lv: np.ndarray, meta: np.ndarray, book: int) -> None:
        self.units = units
        self.lv, self.meta, self.book = lv, meta, book
        self.last_event_ms = 0  # event time of the last frame applied
        self._sides = np.zeros(units.max_levels, dtype=np.int64)
        self._prices = np.zeros(units.max_levels, dtype=np.int64)
        self._qtys = np.zeros(units.max_levels, dtype=np.int64)

    def apply(self, frame: bytes | str) -> int:
        ev = self.units.envelope(frame)
        u = self.units
        r = scan_and_apply(
            np.frombuffer(ev.b, dtype=np.uint8), np.frombuffer(ev.a, dtype=np.uint8), u.pplaces, u.qplaces,
            self._sides, self._prices, self._qtys, self.lv, self.meta, self.book, ev.U, ev.u, ev.pu,
        )  # fmt: skip
        if r < 0:
            raise u.error(r)
        self.last_event_ms = ev.E
        return r
