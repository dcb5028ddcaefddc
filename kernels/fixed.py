"""Exact int64 fixed-point arithmetic used by every kernel.

Kernels hold prices as int64 counts of price units, quantities as int64 counts of quantity units and
money as int64 counts of ``MONEY_UNIT`` (1e-8 of the quote currency, USDT). Products such as
price x quantity x multiplier can exceed int64, and ratios (fees, leverage, price bands) need a
multiply-then-divide; the helpers here do both exactly:

* ``mul3_sat`` multiplies three non-negative numbers and saturates at ``INT64_MAX`` instead of
  wrapping, so an absurd order is rejected as too large rather than wrapping to a small number.
* ``mul_div_floor`` returns ``floor(a * b / d)`` exactly for any int64 ``a``, ``b`` and positive
  ``d`` whose true result fits in int64, using a 128-bit intermediate only when the product does not
  fit in 64 bits (rare: only huge positions or balances take that path).

Every function is ``@njit(cache=True)`` and is inlined into the kernels that call it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INT64_MAX = np.int64(2**63 - 1)
MONEY_DECIMALS = 8
MONEY_SCALE = 10**MONEY_DECIMALS  # money units per 1 USDT
PPM = 1_000_000  # ratios (leverage, percentages, fee rates) are int64 parts per million

# A float product below this bound is certainly below 2**63 for the exact integer product: doubles
# carry 53 bits, so three roundings change the value by far less than the 2x margin kept here.
_SAFE_FLOAT = 4.0e18

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


@njit(cache=True, inline="always")
def mul3_sat(a, b, c):
    """a * b * c for non-negative int64 inputs, saturating at INT64_MAX."""
    if a == 0 or b == 0 or c == 0:
        return np.int64(0)
    if float(a) * float(b) * float(c) < _SAFE_FLOAT:
        return a * b * c
    if b > INT64_MAX // c:
        return INT64_MAX
    bc = b * c
    if a > INT64_MAX // bc:
        return INT64_MAX
    return a * bc


@njit(cache=True, inline="always")
def add_sat(a, b):
    """a + b for non-negative int64 inputs, saturating at INT64_MAX."""
    if a > INT64_MAX - b:
        return INT64_MAX
    return a + b


@njit(cache=True)
def _mul_u128(a, b):
    """Full 128-bit product of two uint64 values as (high, low) uint64 words."""
    a_lo = a & _U32
    a_hi = a >> _S32
    b_lo = b & _U32
    b_hi = b >> _S32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> _S32) + (hi_lo & _U32) + lo_hi
    high = hi_hi + (hi_lo >> _S32) + (cross >> _S32)
    low = (cross << _S32) | (lo_lo & _U32)
    return high, low


@njit(cache=True)
def _div_u128(high, low, d):
    """(high:low) // d and remainder, for d < 2**63 and a quotient that fits in 64 bits."""
    quotient = np.uint64(0)
    rem = np.uint64(0)
    for k in range(127, -1, -1):
        if k >= 64:
            bit = (high >> np.uint64(k - 64)) & _ONE
        else:
            bit = (low >> np.uint64(k)) & _ONE
        rem = (rem << _ONE) | bit
        if rem >= d:
            rem -= d
            if k < 64:
                quotient |= _ONE << np.uint64(k)
    return quotient, rem


@njit(cache=True)
def _mul_div_u(a, b, d):
    """floor(a * b / d) and whether the division left a remainder, for a, b >= 0 and d > 0."""
    if a == 0 or b == 0:
        return np.int64(0), False
    if float(a) * float(b) < _SAFE_FLOAT:
        p = a * b
        return p // d, p % d != 0
    # a*b/d = (a//d)*b + (a%d)*b/d; the second product is below d*b and usually fits in int64.
    q = a // d
    r = a % d
    whole = q * b
    if r == 0:
        return whole, False
    if float(r) * float(b) < _SAFE_FLOAT:
        p = r * b
        return whole + p // d, p % d != 0
    high, low = _mul_u128(np.uint64(r), np.uint64(b))
    part, rem = _div_u128(high, low, np.uint64(d))
    return whole + np.int64(part), rem != np.uint64(0)


@njit(cache=True, inline="always")
def mul_div_floor(a, b, d):
    """Exact floor(a * b / d) for int64 a, b and d > 0 (the result must fit in int64)."""
    neg = (a < 0) != (b < 0)
    value, inexact = _mul_div_u(abs(a), abs(b), d)
    if neg:
        return -value - 1 if inexact else -value
    return value


@njit(cache=True, inline="always")
def mul_div_trunc(a, b, d):
    """Exact a * b / d rounded toward zero, for int64 a, b and d > 0."""
    neg = (a < 0) != (b < 0)
    value, _ = _mul_div_u(abs(a), abs(b), d)
    return -value if neg else value


@njit(cache=True, inline="always")
def mul_div_ceil(a, b, d):
    """Exact ceil(a * b / d) for int64 a, b and d > 0."""
    return -mul_div_floor(-a, b, d)


@njit(cache=True, inline="always")
def mul_ppm_sat(x, ppm):
    """floor(x * ppm / 1e6) for x, ppm >= 0, saturating at INT64_MAX (an UNLIMITED ratio stays so)."""
    xq = x // PPM
    xr = x % PPM
    pq = ppm // PPM
    pr = ppm % PPM
    # x*ppm/P = xq*pq*P + xq*pr + xr*pq + xr*pr/P, every term non-negative
    total = add_sat(mul3_sat(xq, pq, PPM), mul3_sat(xq, pr, 1))
    return add_sat(add_sat(total, mul3_sat(xr, pq, 1)), xr * pr // PPM)


@njit(cache=True)
def mul_div_rem(a, b, d):
    """(a * b // d, a * b % d) exactly, for a, b >= 0, d > 0 and a quotient that fits in int64."""
    if float(a) * float(b) < _SAFE_FLOAT:
        p = a * b
        return p // d, p % d
    high, low = _mul_u128(np.uint64(a), np.uint64(b))
    q, r = _div_u128(high, low, np.uint64(d))
    return np.int64(q), np.int64(r)
