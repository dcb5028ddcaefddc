"""A whole depth-diff frame scanned in one compiled pass: its envelope and both sides' levels.

``scan_frame(buf, symbol, pplaces, qplaces, sides, prices, qtys, ids)`` reads the bytes of a bare ``depthUpdate``
or of a combined-stream frame carrying one, checks its event type and symbol, writes ``E``, ``U``, ``u`` and
``pu`` (-1 when absent) to ``ids[0..3]`` and the levels (bids, then asks) to the three arrays, and returns the
number of levels. It accepts a strict subset of what ``DepthUnits.envelope`` + ``scan_levels`` accept: the
frames Binance sends (keys without escapes, each once, ``b`` before ``a``, integers without fraction or
exponent, unknown keys with scalar values). Anything else, a bad level or a wrong symbol included, returns
``FALLBACK``: the caller then takes that exact path, which accepts what it accepts and raises what it raises,
so the scanner makes no decision of its own about a frame. It exists because msgspec's decode of the envelope
plus a buffer per side cost more than the levels themselves (``tests/bench/test_binance_venue_bench.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from oms.venues.binance.depth_numbers import data_pointer
from oms.venues.binance.depth_units import ASK, BID, _skip_ws, scan_levels_at

FALLBACK = -100  # not in the scanner's subset: use DepthUnits.envelope + scan_levels

_DEPTH_UPDATE = np.frombuffer(b"depthUpdate", dtype=np.uint8)
_COMBINED_HEAD = np.frombuffer(b'{"stream"', dtype=np.uint8)
_STREAM = np.frombuffer(b"stream", dtype=np.uint8)
_DATA = np.frombuffer(b"data", dtype=np.uint8)
_TRUE = np.frombuffer(b"true", dtype=np.uint8)
_FALSE = np.frombuffer(b"false", dtype=np.uint8)
_NULL = np.frombuffer(b"null", dtype=np.uint8)
_HAVE_ALL = 0b1111111  # e E s U u b a
_BYTES = types.Array(types.uint8, 1, "C", readonly=True)
FRAME_BYTES = types.Bytes(types.uint8, 1, "C", readonly=True)  # a Python bytes object, passed as it is
_I64 = types.Array(types.int64, 1, "C")


@njit(cache=True)
def _string(buf, i, n):
    """The span of an ASCII JSON string without escapes at ``buf[i]`` (the quote): (start, end, next) or -1s."""
    if i >= n or buf[i] != 34:
        return -1, -1, -1
    j = i + 1
    while j < n and buf[j] != 34:
        if buf[j] == 92 or buf[j] < 32 or buf[j] > 126:  # an escape, a control character, not ASCII
            return -1, -1, -1
        j += 1
    if j >= n:
        return -1, -1, -1
    return i + 1, j, j + 1


@njit(cache=True)
def _digits(buf, i, n):
    while i < n and 48 <= buf[i] <= 57:
        i += 1
    return i


@njit(cache=True)
def _integer(buf, i, n):
    """A JSON integer at ``buf[i]`` of at most 18 digits: (value, next) or (0, -1)."""
    neg = i < n and buf[i] == 45
    if neg:
        i += 1
    start = i
    v = 0
    while i < n and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        i += 1
    digits = i - start
    if digits == 0 or digits > 18 or (digits > 1 and buf[start] == 48):
        return 0, -1
    if i < n and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69):  # a fraction or an exponent
        return 0, -1
    return (-v if neg else v), i


@njit(cache=True)
def _equal(buf, start, end, want):
    return _equal_n(buf, start, end, want, want.shape[0])


@njit(cache=True)
def _equal_n(buf, start, end, want, size):
    """``buf[start:end]`` equals the ``size`` items of ``want`` (an array or a pointer)."""
    if end - start != size:
        return False
    for j in range(size):
        if buf[start + j] != want[j]:
            return False
    return True


@njit(cache=True)
def _skip_scalar(buf, i, n):
    """Past a string (as ``_string``), a JSON number, true, false or null at ``buf[i]``; -1 for anything else."""
    if i >= n:
        return -1
    c = buf[i]
    if c == 34:
        _, _, j = _string(buf, i, n)
        return j
    if c == 45 or 48 <= c <= 57:  # -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        if c == 45:
            i += 1
        if i >= n or not 48 <= buf[i] <= 57:
            return -1
        i = i + 1 if buf[i] == 48 else _digits(buf, i, n)
        if i < n and buf[i] == 46:
            j = _digits(buf, i + 1, n)
            if j == i + 1:
                return -1
            i = j
        if i < n and (buf[i] == 101 or buf[i] == 69):
            i += 1
            if i < n and (buf[i] == 43 or buf[i] == 45):
                i += 1
            j = _digits(buf, i, n)
            if j == i:
                return -1
            i = j
        return i
    if _equal(buf, i, min(i + 4, n), _TRUE) or _equal(buf, i, min(i + 4, n), _NULL):
        return i + 4
    if _equal(buf, i, min(i + 5, n), _FALSE):
        return i + 5
    return -1


@njit(cache=True)
def _depth_field(buf, i, n, ks, ke, have, symbol, symbol_len, pplaces, qplaces, sides, prices, qtys, cap, ids, k):
    """The value at ``buf[i]`` of the field named ``buf[ks:ke]``: (its bit in ``have``, level count, next index);
    next index -1 to fall back."""
    size = ke - ks
    c = buf[ks]
    if size == 1 and (c == 101 or c == 115):  # e, s: strings that must match
        vs, ve, i = _string(buf, i, n)
        if i < 0 or not (_equal(buf, vs, ve, _DEPTH_UPDATE) if c == 101 else _equal_n(buf, vs, ve, symbol, symbol_len)):
            return 0, k, -1
        return (1 if c == 101 else 4), k, i
    if size == 1 and (c == 69 or c == 85 or c == 117):  # E U u
        v, i = _integer(buf, i, n)
        slot = 0 if c == 69 else 1 if c == 85 else 2
        ids[slot] = v
        return (2, 8, 16)[slot], k, i
    if size == 2 and c == 112 and buf[ks + 1] == 117:  # pu
        v, i = _integer(buf, i, n)
        ids[3] = v
        return 128, k, i
    if size == 1 and c == 98:  # b
        k, i = scan_levels_at(buf, i, n, pplaces, qplaces, BID, sides, prices, qtys, 0, cap)
        return 32, k, i
    if size == 1 and c == 97:  # a: after b, so that bids come first as in DepthUnits.decode
        if not have & 32:
            return 64, k, -1
        k, i = scan_levels_at(buf, i, n, pplaces, qplaces, ASK, sides, prices, qtys, k, cap)
        return 64, k, i
    return 0, k, _skip_scalar(buf, i, n)


@njit(cache=True)
def _depth_object(buf, i, n, symbol, symbol_len, pplaces, qplaces, sides, prices, qtys, cap, ids):
    """The ``depthUpdate`` object at ``buf[i]`` (its ``{``): (level count, index after its ``}``), or
    (FALLBACK, -1)."""
    if i >= n or buf[i] != 123:
        return FALLBACK, -1
    i = _skip_ws(buf, i + 1, n)
    have = 0
    k = 0
    ids[3] = -1
    while True:
        ks, ke, i = _string(buf, i, n)
        if i < 0:
            return FALLBACK, -1
        i = _skip_ws(buf, i, n)
        if i >= n or buf[i] != 58:  # ':'
            return FALLBACK, -1
        bit, k, i = _depth_field(
            buf, _skip_ws(buf, i + 1, n), n, ks, ke, have, symbol, symbol_len, pplaces, qplaces, sides, prices, qtys,
            cap, ids, k,
        )  # fmt: skip
        if i < 0 or have & bit:  # refused, or a key twice
            return FALLBACK, -1
        have |= bit
        i = _skip_ws(buf, i, n)
        if i < n and buf[i] == 44:  # ','
            i = _skip_ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == 125:  # '}'
            break
        return FALLBACK, -1
    if have & _HAVE_ALL != _HAVE_ALL:
        return FALLBACK, -1
    return k, i + 1


@njit(cache=True)
def scan_frame_into(frame, symbol, pplaces, qplaces, sides, prices, qtys, ids):
    """``scan_frame`` for compiled callers, any integer arrays (``symbol``: the venue symbol's byte values)."""
    return scan_frame_at(
        data_pointer(frame), len(frame), data_pointer(symbol), symbol.shape[0], pplaces, qplaces,
        data_pointer(sides), data_pointer(prices), data_pointer(qtys), min(sides.shape[0], prices.shape[0],
        qtys.shape[0]), data_pointer(ids),
    )  # fmt: skip


@njit(cache=True)
def scan_frame_at(buf, n, sym, symbol_len, pplaces, qplaces, sides_p, prices_p, qtys_p, cap, ids_p):
    """``scan_frame_into`` on pointers (``depth_numbers.data_pointer``, or ``kernels.pointers.item_pointer`` for
    rows of a 2-d array): the frame's ``n`` bytes, the symbol's ``symbol_len`` byte values, room for ``cap``
    levels. The helpers get pointers, not arrays: no reference counting in them (see ``data_pointer``)."""
    # combined iff the frame starts with '{"stream"' (DepthUnits.envelope's test; leading blanks: fall back)
    if n == 0 or buf[0] != 123:
        return FALLBACK
    if not _equal(buf, 0, min(9, n), _COMBINED_HEAD):
        k, i = _depth_object(buf, 0, n, sym, symbol_len, pplaces, qplaces, sides_p, prices_p, qtys_p, cap, ids_p)
    else:  # {"stream": "...", "data": {...}}: those two keys, once each
        k = FALLBACK
        have = 0
        i = 1
        while True:
            ks, ke, i = _string(buf, i, n)
            if i < 0:
                return FALLBACK
            i = _skip_ws(buf, i, n)
            if i >= n or buf[i] != 58:
                return FALLBACK
            i = _skip_ws(buf, i + 1, n)
            if ke - ks == 6 and _equal(buf, ks, ke, _STREAM) and not have & 1:
                have |= 1
                _, _, i = _string(buf, i, n)
            elif ke - ks == 4 and _equal(buf, ks, ke, _DATA) and not have & 2:
                have |= 2
                k, i = _depth_object(
                    buf, i, n, sym, symbol_len, pplaces, qplaces, sides_p, prices_p, qtys_p, cap, ids_p
                )
            else:
                return FALLBACK
            if i < 0:
                return FALLBACK
            i = _skip_ws(buf, i, n)
            if i < n and buf[i] == 44:
                i = _skip_ws(buf, i + 1, n)
                continue
            if i < n and buf[i] == 125 and have == 3:
                i += 1
                break
            return FALLBACK
    if i < 0 or _skip_ws(buf, i, n) != n:
        return FALLBACK
    return k


@njit(
    [types.int64(frame, _BYTES, types.int64, types.int64, _I64, _I64, _I64, _I64) for frame in (_BYTES, FRAME_BYTES)],
    cache=True,
)
def scan_frame(buf, symbol, pplaces, qplaces, sides, prices, qtys, ids):
    """The levels of a bare or combined-stream depth frame (count), its ids in ``ids``; or ``FALLBACK``.
    ``buf`` is the frame's ``bytes`` themselves (no array to make) or a uint8 array of them."""
    return scan_frame_into(buf, symbol, pplaces, qplaces, sides, prices, qtys, ids)
