"""The word-at-a-time depth scanners decide exactly as the byte-at-a-time ones they replaced: ``number`` as
``number_ref`` (value, or the same error code) on decimal strings, their neighbours and random edits of them;
``scan_levels`` as the byte loop below (the scanner before the word tests) on level arrays, spaced or not,
edited or not, with every count, value and error code equal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from oms.venues.binance.depth_numbers import BAD_JSON, TOO_MANY, number, number_ref
from oms.venues.binance.depth_units import _skip_ws, scan_levels


@njit
def _fast(buf, i, places):
    return number(buf, i, buf.shape[0], places)


@njit
def _ref(buf, i, places):
    return number_ref(buf, i, buf.shape[0], places)


@njit
def ref_scan_levels(buf, pplaces, qplaces, side, sides, prices, qtys, k):
    """The level scanner as it was: one byte at a time."""
    n = buf.shape[0]
    cap = prices.shape[0]
    i = _skip_ws(buf, 0, n)
    if i >= n or buf[i] != 91:
        return BAD_JSON
    i = _skip_ws(buf, i + 1, n)
    if i < n and buf[i] == 93:
        return k
    while True:
        if i >= n or buf[i] != 91:
            return BAD_JSON
        p, i = number_ref(buf, _skip_ws(buf, i + 1, n), n, pplaces)
        if i < 0:
            return p
        i = _skip_ws(buf, i, n)
        if i >= n or buf[i] != 44:
            return BAD_JSON
        q, i = number_ref(buf, _skip_ws(buf, i + 1, n), n, qplaces)
        if i < 0:
            return q
        i = _skip_ws(buf, i, n)
        if i >= n or buf[i] != 93:
            return BAD_JSON
        if k >= cap:
            return TOO_MANY
        sides[k] = side
        prices[k] = p
        qtys[k] = q
        k += 1
        i = _skip_ws(buf, i + 1, n)
        if i < n and buf[i] == 44:
            i = _skip_ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == 93:
            return k
        return BAD_JSON


DIGITS = st.text("0123456789", min_size=0, max_size=22)
# bytes next to the digits ('/' ':'), blanks, JSON punctuation, a high byte: where word tests could slip
ODD = b'0123456789./:"-+eE ,]\t\x00\x7f\x80\xb0\xff'


def _decimal(whole: str, frac: str | None) -> bytes:
    return ('"' + whole + ("" if frac is None else "." + frac) + '"').encode()


def _edit(data: bytes, edits: list[tuple[float, int, int]]) -> bytes:
    out = bytearray(data)
    for where, op, byte in edits:
        i = min(int(where * len(out)), max(len(out) - 1, 0))
        if op == 0 and out:
            out[i] = byte
        elif op == 1:
            out.insert(i, byte)
        elif out:
            del out[i]
    return bytes(out)


# a number near a buffer's end takes the byte loop: padded, the word path is the one tested
PADS = st.sampled_from([b"", b" " * 24, b'"' * 24, b"0" * 24, b"9" * 24, b"\xff" * 24])
edits = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 2), st.sampled_from(ODD)), max_size=3)


@settings(max_examples=3000, deadline=None)
@given(
    st.binary(max_size=4),
    DIGITS,
    st.none() | DIGITS,
    st.binary(max_size=24) | st.just(b"],[") | st.just(b'","0.1"]]'),
    st.integers(0, 19),
    edits,
    PADS,
)
def test_number_equals_the_byte_loop(head, whole, frac, tail, places, changes, pad):
    data = _edit(head + _decimal(whole, frac) + tail, changes) + pad
    buf = np.frombuffer(data, dtype=np.uint8)
    for i in range(min(len(head) + 1, len(data))):  # at the quote, and at the bytes before it
        assert _fast(buf, i, places) == _ref(buf, i, places), (data, i, places)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(DIGITS, st.none() | DIGITS, DIGITS, st.none() | DIGITS), max_size=12),
    st.sampled_from([",", ", ", " , ", ",\n "]),
    st.integers(0, 9),
    st.integers(0, 9),
    st.integers(1, 14),
    edits,
    PADS,
)
def test_scan_levels_equals_the_byte_loop(rows, sep, pplaces, qplaces, cap, changes, pad):
    body = sep.encode().join(b"[" + _decimal(a, b) + sep.encode() + _decimal(c, d) + b"]" for a, b, c, d in rows)
    data = _edit(b"[" + body + b"]", changes) + pad
    buf = np.frombuffer(data, dtype=np.uint8)
    got, want = (tuple(np.full(cap, -7, dtype=np.int64) for _ in range(3)) for _ in range(2))
    k_got = scan_levels(buf, pplaces, qplaces, 1, *got, 0)
    k_want = ref_scan_levels(buf, pplaces, qplaces, 1, *want, 0)
    assert k_got == k_want, data
    if k_want >= 0:
        assert all((g[:k_want] == w[:k_want]).all() for g, w in zip(got, want, strict=True)), data


def test_the_word_parser_is_used_and_exact_on_long_and_short_numbers():
    pad = b" " * 24  # room for both words: the word path, not the byte loop's fallback
    cases = [
        (b'"7336.28000000"', 2, (733628, 15)),
        (b'"0.98916000"', 5, (98916, 12)),
        (b'"1234567.12345678"', 8, (123456712345678, 18)),
        (b'"12345678.5"', 1, (123456785, 12)),  # 8 integer digits: the byte loop
        (b'"1.123456789"', 9, (1123456789, 13)),  # 9 fraction digits: the byte loop
        (b'"1.00000001"', 7, (-2, -1)),  # a nonzero digit past the places
        (b'"1.10"', 0, (-2, -1)),
        (b'"1.00"', 0, (1, 6)),
        (b'"5"', 3, (5000, 3)),
        (b'"."', 2, (-1, -1)),
        (b'"1:"', 2, (-1, -1)),  # ':' and '/' are next to the digits
        (b'"1/"', 2, (-1, -1)),
        (b'"1.2:"', 2, (-1, -1)),
        (b'"1.2/"', 2, (-1, -1)),
        (b'"1."', 2, (-1, -1)),
        (b'"1.5', 2, (-1, -1)),
    ]
    for text, places, want in cases:
        buf = np.frombuffer(text + pad, dtype=np.uint8)
        assert _fast(buf, 0, places) == want == _ref(buf, 0, places), text
