"""Depth-diff frames straight into the book kernel's int64 arrays: the daemon's hot path for ``@depth``.

``DepthUnits(instrument).decode(frame)`` takes the raw frame bytes of a depth diff (bare or combined-stream),
validates its envelope with ``msgspec`` (event type, symbol, ``U``/``u``/``pu``) and converts its price levels
with a small Numba scanner, exactly: a price or quantity with more significant decimals than the instrument's
unit, or anything but ``[["price","qty"],...]``, is refused (``BadDecimal`` / ``msgspec.ValidationError``),
never rounded. The result's ``sides``/``prices``/``qtys`` are views into buffers reused by the next call:
pass them to ``kernels.book.apply_diff`` (or copy them) before decoding again.

The model path (``parse_to_depth_diff`` then ``Instrument.price``/``qty`` per level) gives the same numbers;
this one exists because it is several times faster (``tests/bench/test_binance_venue_bench.py``). Units must
be powers of ten (Binance's tick and step sizes are); anything else uses the model path.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import numpy as np
from numba import njit, types

from oms.model import Instrument
from oms.venues.binance.depth_numbers import (
    _LITTLE_ENDIAN,
    BAD_JSON,
    TOO_MANY,
    TOO_PRECISE,
    data_pointer,
    load_word,
    number,
)
from oms.venues.binance.symbols import BadDecimal

BID = 0
ASK = 1
MAX_LEVELS = 5000  # Binance sends at most 1000 per side; a frame with more is refused


class DepthUpdateRaw(msgspec.Struct, frozen=True):
    """``depthUpdate`` with its levels left as raw JSON for the scanner."""

    e: str
    E: int
    s: str
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    pu: int = -1


class CombinedDepthRaw(msgspec.Struct, frozen=True):
    stream: str
    data: DepthUpdateRaw


_BARE = msgspec.json.Decoder(DepthUpdateRaw)
_COMBINED = msgspec.json.Decoder(CombinedDepthRaw)


@njit(cache=True, inline="always")
def _skip_ws(buf, i, n):
    while i < n and buf[i] <= 32 and (buf[i] == 32 or buf[i] == 10 or buf[i] == 13 or buf[i] == 9):
        i += 1  # (the first test alone settles it for anything but blanks and control characters)
    return i


_BYTES = types.Array(types.uint8, 1, "C", readonly=True)  # np.frombuffer of the frame: read-only
_I64 = types.Array(types.int64, 1, "C")
_U16 = np.uint64(0xFFFF)
_U32 = np.uint64(0xFFFFFFFF)


_QUOTE_SEP = np.uint64(0x222C)  # ',"' read as a little-endian word: between a level's price and its quantity
_LEVEL_SEP = np.uint64(0x225B2C5D)  # '],["': from one level's quantity to the next level's price


_NEXT, _END, _UNCLOSED, _BAD_AFTER = range(4)  # how a level ends (``_level_close``)


@njit(cache=True, inline="always")
def _level_close(buf, i, n):
    """After a level's quantity: (index of the next level's ``[``, _NEXT), (index after the side's closing
    ``]``, _END), or (-1, _UNCLOSED / _BAD_AFTER)."""
    i = _skip_ws(buf, i, n)
    if i >= n or buf[i] != 93:
        return -1, _UNCLOSED
    i = _skip_ws(buf, i + 1, n)
    if i < n and buf[i] == 44:
        i = _skip_ws(buf, i + 1, n)
        if i < n and buf[i] == 91:
            return i, _NEXT
        return -1, _BAD_AFTER
    if i < n and buf[i] == 93:
        return i + 1, _END
    return -1, _BAD_AFTER


@njit(cache=True)
def scan_levels_at(buf, i, n, pplaces, qplaces, side, sides, prices, qtys, start, cap):
    """Append the levels of ``[["p","q"],...]`` at ``buf[i]`` (``buf``: ``n`` bytes) to ``sides``/``prices``/
    ``qtys`` (room for ``cap`` levels; arrays, or ``data_pointer`` s of them as the compiled callers pass): (new
    count, index after the closing ``]``), or (error < 0, -1). Separators without blanks (as Binance sends them)
    are each tested as one word."""
    k = start
    words = _LITTLE_ENDIAN and n >= 8
    i = _skip_ws(buf, i, n)
    if i >= n or buf[i] != 91:  # '['
        return BAD_JSON, -1
    i = _skip_ws(buf, i + 1, n)
    if i < n and buf[i] == 93:  # ']': no levels
        return k, i + 1
    if i >= n or buf[i] != 91:
        return BAD_JSON, -1
    while True:  # at the level's '['
        p, i = number(buf, _skip_ws(buf, i + 1, n), n, pplaces)
        if i < 0:
            return p, -1
        if words and i <= n - 8 and load_word(buf, i) & _U16 == _QUOTE_SEP:
            i += 1
        else:
            i = _skip_ws(buf, i, n)
            if i >= n or buf[i] != 44:  # ','
                return BAD_JSON, -1
            i = _skip_ws(buf, i + 1, n)
        q, i = number(buf, i, n, qplaces)
        if i < 0:
            return q, -1
        if words and i <= n - 8 and load_word(buf, i) & _U32 == _LEVEL_SEP:
            i, how = i + 2, _NEXT
        else:
            i, how = _level_close(buf, i, n)
        if how == _UNCLOSED:
            return BAD_JSON, -1
        if k >= cap:
            return TOO_MANY, -1
        sides[k] = side
        prices[k] = p
        qtys[k] = q
        k += 1
        if how == _NEXT:
            continue
        if how == _END:
            return k, i
        return BAD_JSON, -1


@njit(types.int64(_BYTES, types.int64, types.int64, types.int64, _I64, _I64, _I64, types.int64), cache=True)
def scan_levels(buf, pplaces, qplaces, side, sides, prices, qtys, start):
    """Append the levels of ``[["p","q"],...]`` in ``buf`` at ``start``; returns the new count or an error < 0."""
    cap = min(sides.shape[0], prices.shape[0], qtys.shape[0])
    k, _ = scan_levels_at(
        data_pointer(buf), 0, buf.shape[0], pplaces, qplaces, side, data_pointer(sides), data_pointer(prices),
        data_pointer(qtys), start, cap,
    )  # fmt: skip
    return k


def _power_of_ten_places(unit: Decimal, what: str) -> int:
    exp = unit.normalize().as_tuple()
    if exp.digits != (1,) or not isinstance(exp.exponent, int) or exp.exponent > 0:
        raise ValueError(f"{what} {unit} is not a power of ten: use the model path for this instrument")
    return max(0, -exp.exponent)


class DepthFrame:
    """One decoded diff: sequence numbers and the level arrays (views into reused buffers)."""

    __slots__ = ("first_id", "last_id", "prev_id", "sides", "prices", "qtys", "event_ms")

    def __init__(self, first_id: int, last_id: int, prev_id: int, sides, prices, qtys, event_ms: int) -> None:
        self.first_id = first_id
        self.last_id = last_id
        self.prev_id = prev_id
        self.sides = sides
        self.prices = prices
        self.qtys = qtys
        self.event_ms = event_ms


class DepthUnits:
    """Depth-diff frames of one instrument -> book-kernel arrays in the instrument's units."""

    def __init__(self, inst: Instrument, venue_symbol: str, max_levels: int = MAX_LEVELS) -> None:
        self.inst = inst
        self.venue_symbol = venue_symbol
        self.pplaces = _power_of_ten_places(inst.price_unit, f"{inst.symbol} price unit")
        self.qplaces = _power_of_ten_places(inst.qty_unit, f"{inst.symbol} quantity unit")
        self.max_levels = max_levels
        self._sides = np.zeros(max_levels, dtype=np.int64)
        self._prices = np.zeros(max_levels, dtype=np.int64)
        self._qtys = np.zeros(max_levels, dtype=np.int64)

    def envelope(self, frame: bytes | str) -> DepthUpdateRaw:
        """The frame's ``depthUpdate`` with its levels still raw (for ``scan_levels``), checked to be this
        symbol's; raises ``msgspec.ValidationError`` / ``DecodeError``."""
        head = frame[:12] if isinstance(frame, bytes) else frame[:12].encode()
        ev = _COMBINED.decode(frame).data if head.lstrip().startswith(b'{"stream"') else _BARE.decode(frame)
        if ev.e != "depthUpdate" or ev.s != self.venue_symbol:
            raise msgspec.ValidationError(f"not a {self.venue_symbol} depthUpdate (e={ev.e!r}, s={ev.s!r})")
        return ev

    def error(self, code: int) -> Exception:
        """The exception for a scanner error code < 0."""
        return self._error(code)

    def decode(self, frame: bytes | str) -> DepthFrame:
        """A bare ``depthUpdate`` or a combined-stream frame carrying one."""
        ev = self.envelope(frame)
        k = scan_levels(
            np.frombuffer(ev.b, dtype=np.uint8),
            self.pplaces,
            self.qplaces,
            BID,
            self._sides,
            self._prices,
            self._qtys,
            0,
        )
        if k >= 0:
            k = scan_levels(
                np.frombuffer(ev.a, dtype=np.uint8),
                self.pplaces,
                self.qplaces,
                ASK,
                self._sides,
                self._prices,
                self._qtys,
                k,
            )
        if k < 0:
            raise self._error(k)
        return DepthFrame(ev.U, ev.u, ev.pu, self._sides[:k], self._prices[:k], self._qtys[:k], ev.E)

    def _error(self, code: int) -> Exception:
        if code == TOO_PRECISE:
            return BadDecimal(f"{self.inst.symbol} depth level: more decimals than the instrument's units allow")
        if code == TOO_MANY:
            return msgspec.ValidationError(f"{self.inst.symbol} depth frame: more than {self._prices.shape[0]} levels")
        return msgspec.ValidationError(f'{self.inst.symbol} depth frame: levels are not [["price","qty"],...]')
