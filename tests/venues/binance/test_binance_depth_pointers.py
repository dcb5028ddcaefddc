"""``depth_numbers.data_pointer`` (the depth scanners read the frame and write their outputs through it) reads
the bytes of ``bytes`` and the items of 1-d contiguous arrays, writes arrays' items, and refuses a strided
array (its items are not adjacent)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.errors import TypingError

from oms.venues.binance.depth_numbers import data_pointer, load_word


@njit
def _read(buf, n):
    p = data_pointer(buf)
    out = np.empty(n, dtype=np.int64)
    for j in range(n):
        out[j] = p[j]
    return out


@njit
def _word(buf, i):
    return load_word(data_pointer(buf), i), load_word(buf, i)


@njit
def _write(a, mark):
    p = data_pointer(a)
    for j in range(a.shape[0]):
        p[j] = mark - p[j]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=64), st.data())
def test_pointer_reads_bytes_and_words_as_indexing_does(raw, data):
    assert _read(raw, len(raw)).tolist() == list(raw)
    arr = np.frombuffer(raw, dtype=np.uint8)
    assert _read(arr, len(raw)).tolist() == list(raw)
    i = data.draw(st.integers(0, len(raw) - 8))
    through_pointer, through_bytes = _word(raw, i)
    assert through_pointer == through_bytes == int.from_bytes(raw[i : i + 8], "little")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20), st.integers(0, 5))
def test_pointer_writes_int64_items_of_a_row_view(values, row):
    a = np.zeros((6, len(values)), dtype=np.int64)
    a[row] = values
    _write(a[row], 7)
    want = np.zeros_like(a)
    want[row] = [7 - v for v in values]
    assert np.array_equal(a, want)


def test_strided_array_is_refused():
    with pytest.raises(TypingError):
        _read(np.arange(10, dtype=np.int64)[::2], 5)
