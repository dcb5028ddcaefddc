"""A depth level's decimal string into int64 units, eight bytes at a time: the depth scanners' number parser.

``number(buf, i, n, places)`` reads ``"digits[.digits]"`` at ``buf[i]`` (the opening quote) as an integer of
``10**-places`` units and returns (value, index after the closing quote), or (``BAD_JSON`` / ``TOO_PRECISE``,
-1): not that shape, more than 18 integer digits, or a nonzero digit past ``places`` (never rounded). It gives
exactly what ``number_ref`` (the byte-at-a-time parser it replaces) gives for every input, error codes
included (``tests/venues/binance/test_binance_depth_numbers.py`` checks them against each other).

Why: a byte loop's ``value = value * 10 + digit`` is a chain of dependent steps, one per digit (25 per Spot
level), and was most of a depth frame's cost. Here the integer part and the fraction are each read as one
unaligned 8-byte word: a few carry-free byte-wise tests find where the digits end, and three multiplies turn up
to eight digits into their value (Lemire's SWAR method), with no branch per digit. A number those words do not
cover (over 7 integer or 8 fraction digits, or near the buffer's end) goes to ``number_ref``.
"""

from __future__ import annotations

import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

# scanner results < 0
BAD_JSON = -1
TOO_PRECISE = -2
TOO_MANY = -3

_LITTLE_ENDIAN = sys.byteorder == "little"  # the word tricks read byte 0 as the low byte; else: number_ref
_U = np.uint64
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_HIGH = _U(0x8080808080808080)
_NIBBLES = _U(0x0F0F0F0F0F0F0F0F)
_AT_LEAST_0 = _U(0x5050505050505050)  # + byte & 0x7F: high bit set iff the byte is >= '0'
_AT_LEAST_10 = _U(0x4646464646464646)  # high bit set iff >= ':' (one past '9')
_ZEROS = _U(0x3030303030303030)
_M1 = _U(0x00FF00FF00FF00FF)
_M2 = _U(0x0000FFFF0000FFFF)
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the low k bytes' bits
_WORD_SPAN = 19  # quote + 7 digits + '.' + 8 digits + the byte after them + quote, rounded up: both words fit


@intrinsic
def load_word(typingctx, buf, i):
    """The 8 bytes ``buf[i:i+8]`` as one little-endian uint64 (an unaligned load; the caller checks bounds).
    ``buf``: a uint8 array, ``bytes`` or a ``data_pointer`` of one."""
    sig = types.uint64(buf, types.intp)

    def codegen(context, builder, signature, args):
        if isinstance(signature.args[0], types.CPointer):
            data = args[0]
        else:
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen


@intrinsic
def data_pointer(typingctx, buf):
    """The address of a 1-d contiguous array's (or ``bytes``') first item as a typed pointer (``p[i]`` reads and
    ``p[i] = v`` writes item i, no bounds or negative-index handling: the caller checks ``i`` against the
    length). The scanners read and write through these because a pointer is not reference counted: an array or
    ``bytes`` passed to a helper costs an ``NRT_incref``/``NRT_decref`` call pair per call and branch that
    Numba's pruning leaves (about half of a frame's scan time). Valid while ``buf`` is alive, i.e. within the
    compiled call that received it."""
    if not isinstance(buf, types.Buffer) or buf.ndim != 1 or buf.layout != "C":
        return None
    sig = types.CPointer(buf.dtype)(buf)

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return sig, codegen


@njit(cache=True, inline="always")
def _non_digits(w):
    """The high bit of each byte of ``w`` that is not an ASCII digit (no carry crosses bytes)."""
    low = w & _LOW7
    return ~((low + _AT_LEAST_0) & ~(low + _AT_LEAST_10) & ~w) & _HIGH


@njit(cache=True, inline="always")
def _digits_value(w, k):
    """The value of the first ``k`` (1..8) bytes of ``w``, all ASCII digits, the first the most significant."""
    d = (w & _NIBBLES) << _U(8 * (8 - k))  # the k digits to the top; the bytes below them are 0 digits
    d = (d * _U(2561)) >> _U(8)  # pairs: 10 * a + b in every other byte
    d = ((d & _M1) * _U(6553601)) >> _U(16)  # quads
    return np.int64(((d & _M2) * _U(42949672960001)) >> _U(32))


@njit(cache=True)
def number_ref(buf, i, n, places):
    """Parse ``"digits[.digits]"`` at ``buf[i]`` (the opening quote) one byte at a time (see the module)."""
    if i >= n or buf[i] != 34:
        return BAD_JSON, -1
    i += 1
    value = 0
    digits = 0
    while i < n and 48 <= buf[i] <= 57:
        value = value * 10 + (buf[i] - 48)
        digits += 1
        i += 1
    if digits == 0 or digits > 18:
        return BAD_JSON, -1
    used = 0
    if i < n and buf[i] == 46:  # '.'
        i += 1
        fdigits = 0
        while i < n and 48 <= buf[i] <= 57:
            d = buf[i] - 48
            if used < places:
                value = value * 10 + d
                used += 1
            elif d != 0:
                return TOO_PRECISE, -1
            fdigits += 1
            i += 1
        if fdigits == 0:
            return BAD_JSON, -1
    while used < places:
        value *= 10
        used += 1
    if i >= n or buf[i] != 34:
        return BAD_JSON, -1
    return value, i + 1


@njit(cache=True, inline="always")
def number(buf, i, n, places):
    """Parse ``"digits[.digits]"`` at ``buf[i]`` as ``number_ref`` does, a word at a time (see the module)."""
    if not _LITTLE_ENDIAN or i < 0 or n - i < _WORD_SPAN or places > 17:
        return number_ref(buf, i, n, places)
    if buf[i] != 34:
        return BAD_JSON, -1
    w = load_word(buf, i + 1)
    stops = _non_digits(w)
    if stops == _U(0):  # 8 or more integer digits
        return number_ref(buf, i, n, places)
    digits = np.int64(trailing_zeros(stops)) >> 3
    if digits == 0:
        return BAD_JSON, -1
    value = _digits_value(w, digits)
    j = i + 1 + digits
    if buf[j] == 46:  # '.': the fraction's word
        f = j + 1
        w = load_word(buf, f)
        stops = _non_digits(w)
        if stops == _U(0):
            if 48 <= buf[f + 8] <= 57:  # more than 8 fraction digits
                return number_ref(buf, i, n, places)
            fdigits = 8
        else:
            fdigits = np.int64(trailing_zeros(stops)) >> 3
        if fdigits == 0:
            return BAD_JSON, -1
        if fdigits <= places:
            value = (value * _POW10[fdigits] + _digits_value(w, fdigits)) * _POW10[places - fdigits]
        else:
            if (w ^ _ZEROS) & (_LOW_BYTES[fdigits] ^ _LOW_BYTES[places]) != _U(0):  # a nonzero digit past places
                return TOO_PRECISE, -1
            value = value * _POW10[places]
            if places > 0:
                value += _digits_value(w, places)
        j = f + fdigits
    else:
        value *= _POW10[places]
    if buf[j] != 34:
        return BAD_JSON, -1
    return value, j + 1
