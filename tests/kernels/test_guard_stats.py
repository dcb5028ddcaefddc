"""The portfolio-guard statistics (kernels/stats.py) against plain NumPy references, with hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kernels.fixed import PPM
from kernels.stats import correlated_entries, correlations, log_returns, volatilities, volatility_scales

marks = arrays(
    np.float64, st.tuples(st.integers(1, 5), st.integers(2, 40)), elements=st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0])
)


@settings(max_examples=60, deadline=None)
@given(marks)
def test_returns_vols_and_correlations_match_numpy(m):
    r = log_returns(m)
    for i in range(m.shape[0]):
        for k in range(m.shape[1] - 1):
            a, b = m[i, k], m[i, k + 1]
            assert (np.isnan(r[i, k]) and not (a > 0 and b > 0)) or np.isclose(r[i, k], np.log(b / a))
    vol = volatilities(r, 365.0, 3)
    corr = correlations(r, 3)
    for i in range(m.shape[0]):
        x = r[i][np.isfinite(r[i])]
        ref = np.std(x, ddof=1) * np.sqrt(365.0) if x.size >= 3 else np.nan
        assert np.isclose(vol[i], ref, equal_nan=True)
        for j in range(m.shape[0]):
            both = np.isfinite(r[i]) & np.isfinite(r[j])
            x, y = r[i][both], r[j][both]
            if i == j:
                assert corr[i, j] == 1.0
            elif both.sum() < 3 or np.std(x) == 0 or np.std(y) == 0:
                assert np.isnan(corr[i, j])
            else:
                assert np.isclose(corr[i, j], np.corrcoef(x, y)[0, 1])


def test_correlated_entries_block_the_same_direction_and_let_hedges_through():
    corr = np.array([[1.0, 0.9, -0.95], [0.9, 1.0, 0.1], [-0.95, 0.1, 1.0]])
    net = np.array([[100, 0, 0], [-100, 0, 0], [0, 0, 0]], dtype=np.int64)  # long 0 | short 0 | flat
    out = np.zeros((3, 3, 2), dtype=np.int8)
    assert correlated_entries(corr, net, 0.85, out) == 4
    assert out[0, 1].tolist() == [1, 0]  # long 0: buying 1 (corr +0.9) adds to it, selling 1 hedges
    assert out[0, 2].tolist() == [0, 1]  # long 0: selling 2 (corr -0.95) adds to it
    assert out[1, 1].tolist() == [0, 1] and out[1, 2].tolist() == [1, 0]  # short 0: the mirror image
    assert out[0, 0].tolist() == [0, 0] and not out[2].any()  # its own instrument, a flat account: free
    corr[0, 1] = corr[1, 0] = np.nan  # not enough data blocks nothing
    out[:] = 0
    correlated_entries(corr, net, 0.85, out)
    assert out[0, 1].tolist() == [0, 0]


def test_volatility_scales_never_scale_up_and_respect_the_floor():
    out = np.zeros(5, dtype=np.int64)
    volatility_scales(np.array([0.4, 1.6, 100.0, np.nan, 0.0]), 0.8, 100_000, out)
    assert out.tolist() == [PPM, 500_000, 100_000, PPM, PPM]
