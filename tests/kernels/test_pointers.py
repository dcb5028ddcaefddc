"""``kernels.pointers.item_pointer`` addresses the item numpy's indexing does, for reads and writes, on
C-contiguous arrays and on views whose outer axes are strided (the book kernel's rows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.errors import TypingError

from kernels.pointers import item_pointer


@njit
def _row_through_pointer(a, i, j, k, out, mark):
    """Reads a[i, j, k, :] into out through a pointer, then writes mark + column into that row."""
    p = item_pointer(a, (i, j, k, 0))
    for c in range(a.shape[3]):
        out[c] = p[c]
        p[c] = mark + c


@st.composite
def arrays_and_rows(draw):
    shape = tuple(draw(st.integers(1, 4)) for _ in range(4))
    step = draw(st.integers(1, 3))  # view of every step-th block of the first axis: strided outer axis
    base = np.arange(np.prod(shape) * step, dtype=np.int64).reshape((shape[0] * step, *shape[1:]))
    a = base[::step]
    idx = tuple(draw(st.integers(0, n - 1)) for n in shape[:3])
    return base, a, idx


@settings(max_examples=200, deadline=None)
@given(arrays_and_rows())
def test_item_pointer_reads_and_writes_the_indexed_row(case):
    base, a, (i, j, k) = case
    before = base.copy()
    out = np.zeros(a.shape[3], dtype=np.int64)
    _row_through_pointer(a, i, j, k, out, -1000)
    assert out.tolist() == before[:: base.shape[0] // a.shape[0]][i, j, k].tolist()
    want = before.copy()
    want[:: base.shape[0] // a.shape[0]][i, j, k] = -1000 + np.arange(a.shape[3])
    assert np.array_equal(base, want)  # that row written, nothing else


def test_item_pointer_wants_one_integer_per_axis():
    @njit
    def two_of_four(a):
        return item_pointer(a, (0, 0))[0]

    with pytest.raises(TypingError):
        two_of_four(np.zeros((2, 2, 2, 2), dtype=np.int64))
