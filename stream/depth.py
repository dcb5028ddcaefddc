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
from numba import njit, typeof, types

from kernels.book import M_FIELDS, apply_diff, apply_levels
from kernels.pointers import item_pointer
from oms.venues.binance.depth_frame import FALLBACK, FRAME_BYTES, scan_frame_at
from oms.venues.binance.depth_numbers import data_pointer
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


# BookFeed's work array: rows of sides, prices and quantities (the scanner's output), then a header row
_SIDES, _PRICES, _QTYS, _HEAD = range(4)
_H_PPLACES, _H_QPLACES, _H_BOOK, _H_SYMBOL_LEN = range(4)
_H_IDS = 4  # E U u pu of the frame scanned
_H_EVENT_MS = 8  # event time of the last frame applied
_H_SYMBOL = 16  # the venue symbol's bytes, one per slot
_WORK = types.Array(types.int64, 2, "C")


@njit(types.int64(FRAME_BYTES, _WORK, _LV, _META), cache=True)
def scan_frame_and_apply(frame, work, lv, meta):
    """A whole frame scanned (``scan_frame``), then applied to the book named in ``work``'s header: the kernel's
    result, with the frame's event time in the header; or ``FALLBACK`` with the book untouched. Everything but
    the frame and the book's arrays is in ``work``, so a call unboxes four arguments instead of eleven."""
    # pointers into work's rows, not views of them: a view costs reference counting (see kernels.pointers)
    head = item_pointer(work, (_HEAD, 0))
    ids = item_pointer(work, (_HEAD, _H_IDS))
    sides, prices, qtys = (
        item_pointer(work, (_SIDES, 0)),
        item_pointer(work, (_PRICES, 0)),
        item_pointer(work, (_QTYS, 0)),
    )
    symbol = item_pointer(work, (_HEAD, _H_SYMBOL))
    k = scan_frame_at(
        data_pointer(frame), len(frame), symbol, head[_H_SYMBOL_LEN], head[_H_PPLACES], head[_H_QPLACES], sides,
        prices, qtys, work.shape[1], ids,
    )  # fmt: skip
    if k < 0:
        return FALLBACK
    r = apply_levels(lv, meta, head[_H_BOOK], ids[1], ids[2], ids[3], sides, prices, qtys, k)
    head[_H_EVENT_MS] = ids[0]
    return r


# The compiled body's own CPython entry, called without the dispatcher's per-call type resolution (about
# 0.14 us of a frame's 1.4 us). It unboxes its arguments as its signature says without checking them, so
# BookFeed checks the book's arrays once, when it is made, and does not let them be replaced.
_SCAN_AND_APPLY = scan_frame_and_apply.overloads[scan_frame_and_apply.signatures[0]].entry_point


class BookFeed:
    """One instrument's depth frames into one book of ``kernels.book``'s arrays (``lv``/``meta`` as
    ``kernels.book.new_books`` makes them; ``TypeError`` / ``ValueError`` otherwise)."""

    __slots__ = ("units", "_lv", "_meta", "_book", "_work", "_sides", "_prices", "_qtys")

    def __init__(self, units: DepthUnits, lv: np.ndarray, meta: np.ndarray, book: int) -> None:
        if typeof(lv) != _LV or typeof(meta) != _META:
            raise TypeError(f"book arrays must be {_LV} and {_META} (kernels.book.new_books), not {typeof(lv)}, "
                            f"{typeof(meta)}")  # fmt: skip
        if not (0 <= book < lv.shape[0] and book < meta.shape[0] and meta.shape[1] >= M_FIELDS):
            raise ValueError(f"book {book} is not in arrays of {lv.shape[0]} books")
        self.units = units
        self._lv, self._meta, self._book = lv, meta, int(book)
        symbol = units.venue_symbol.encode()
        self._work = np.zeros((4, max(units.max_levels, _H_SYMBOL + len(symbol))), dtype=np.int64)
        self._sides, self._prices, self._qtys = (self._work[r, : units.max_levels] for r in (_SIDES, _PRICES, _QTYS))
        head = self._work[_HEAD]
        head[_H_PPLACES], head[_H_QPLACES], head[_H_BOOK] = units.pplaces, units.qplaces, book
        head[_H_SYMBOL_LEN] = len(symbol)
        head[_H_SYMBOL : _H_SYMBOL + len(symbol)] = np.frombuffer(symbol, dtype=np.uint8)

    @property
    def lv(self) -> np.ndarray:
        return self._lv

    @property
    def meta(self) -> np.ndarray:
        return self._meta

    @property
    def book(self) -> int:
        return self._book

    @property
    def last_event_ms(self) -> int:
        """Event time of the last frame applied (0 before the first)."""
        return int(self._work[_HEAD, _H_EVENT_MS])

    def apply(self, frame: bytes | str) -> int:
        data = frame.encode() if type(frame) is str else frame
        if type(data) is bytes:
            r = _SCAN_AND_APPLY(data, self._work, self._lv, self._meta)
            if r != FALLBACK:
                return r
        u = self.units
        ev = u.envelope(frame)
        r = scan_and_apply(
            np.frombuffer(ev.b, dtype=np.uint8), np.frombuffer(ev.a, dtype=np.uint8), u.pplaces, u.qplaces,
            self._sides, self._prices, self._qtys, self.lv, self.meta, self.book, ev.U, ev.u, ev.pu,
        )  # fmt: skip
        if r < 0:
            raise u.error(r)
        self._work[_HEAD, _H_EVENT_MS] = ev.E
        return r
