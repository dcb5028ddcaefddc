"""An instrument's money in the limits' currency: exact conversion of a BTC-quoted amount into 1e-8 USDT.

The risk limits and the account caches (cash, value, gross exposure, perpetual cost, day-start equity and peak)
are in 1e-8 USDT; an instrument quoted in another asset keeps its own money unit (ETH/BTC: 1e-12 BTC). Each
instrument carries a rate ``ins[I_RATE_NUM, i] / ins[I_RATE_DEN, i]`` (1e-8 USDT per money unit): 1/1 for
USDT-quoted instruments (the default, and then nothing is converted), the quote's USDT pair's mark times the
two units' ratio otherwise, pushed by the daemon on a timer (``stream.risk.quotes.QuoteLimits.push_rates``),
or 0 while no rate is known.

Every conversion is exact integer arithmetic (a 128-bit intermediate where needed) and rounds against the
account: ``to_limit_floor`` for what the account has (value, cash received), ``to_limit_ceil`` for what it owes
or risks (exposure, cost basis, an order's notional). ``set_quote_rate`` changes an instrument's rate and
moves the caches of every account holding it by the difference, so the caches always equal the sum over
position slots of the converted amounts (``positions.recompute_caches`` rebuilds the same numbers); a slot
in an instrument without a rate counts in ``acc[A_UNPRICED]`` / ``glob[G_UNPRICED]``, and the risk check
refuses entries while an account (or any account, for the global limits) holds one.
"""

from __future__ import annotations

from numba import njit

from kernels.codes import PERP
from kernels.fixed import INT64_MAX, mul_div_ceil, mul_div_floor
from kernels.state import (
    A_CASH,
    A_COST_PERP,
    A_GROSS,
    A_PEAK_EQUITY,
    A_UNPRICED,
    A_VALUE,
    G_COST_PERP,
    G_GROSS,
    G_UNPRICED,
    G_VALUE,
    I_KIND,
    I_MARK,
    I_MULT,
    I_RATE_DEN,
    I_RATE_NUM,
    P_COST,
    P_QTY,
)

LIMIT_CURRENCY = "USDT"  # the currency of risk.yaml's limits and of the account caches
_BLOCKS = "int64[:, ::1], int64[:, ::1], int64[:, ::1], int64[:, :, :, ::1], int64[::1]"
_SAFE_FLOAT = 4.0e18


@njit(cache=True, inline="always")
def to_limit_floor(x, num, den):
    """floor(x * num / den): an amount the account holds, in the limits' unit (identity for a 1/1 rate)."""
    if num == den:
        return x
    if num == 0:
        return 0
    return mul_div_floor(x, num, den)


@njit(cache=True, inline="always")
def to_limit_ceil(x, num, den):
    """ceil(x * num / den): an amount the account owes or risks, in the limits' unit."""
    if num == den:
        return x
    if num == 0:
        return 0
    return mul_div_ceil(x, num, den)


@njit(cache=True, inline="always")
def to_limit_ceil_sat(x, num, den):
    """``to_limit_ceil`` for x >= 0 that saturates at INT64_MAX (an absurd notional stays absurd)."""
    if num == den or x >= INT64_MAX:
        return x
    if float(x) * float(num) / float(den) >= _SAFE_FLOAT:
        return INT64_MAX
    return mul_div_ceil(x, num, den)


@njit(f"void({_BLOCKS}, int64, int64, int64)", cache=True)
def set_quote_rate(ins, lim, acc, pos, glob, i, num, den):
    """Set instrument i's rate (``num / den`` limit units per money unit; num 0: unknown) and move the value,
    gross and perpetual-cost caches of every account holding it by the change (O(accounts))."""
    old_num = ins[I_RATE_NUM, i]
    old_den = ins[I_RATE_DEN, i]
    if den <= 0:
        den = 1
        num = 0
    if num == old_num and den == old_den:
        return
    ins[I_RATE_NUM, i] = num
    ins[I_RATE_DEN, i] = den
    mark_unit = ins[I_MARK, i] * ins[I_MULT, i]
    perp = ins[I_KIND, i] == PERP
    unpriced = 0
    if old_num == 0 and num != 0:
        unpriced = -1
    elif old_num != 0 and num == 0:
        unpriced = 1
    dv_total = 0
    dg_total = 0
    dc_total = 0
    for a in range(acc.shape[1]):
        held = False
        for slot in range(2):
            q = pos[P_QTY, a, i, slot]
            if q == 0:
                continue
            held = True
            v = q * mark_unit
            g = abs(q) * mark_unit
            dv = to_limit_floor(v, num, den) - to_limit_floor(v, old_num, old_den)
            dg = to_limit_ceil(g, num, den) - to_limit_ceil(g, old_num, old_den)
            acc[A_VALUE, a] += dv
            acc[A_GROSS, a] += dg
            dv_total += dv
            dg_total += dg
            if perp:
                c = pos[P_COST, a, i, slot]
                dc = to_limit_ceil(c, num, den) - to_limit_ceil(c, old_num, old_den)
                acc[A_COST_PERP, a] += dc
                dc_total += dc
            acc[A_UNPRICED, a] += unpriced
            glob[G_UNPRICED] += unpriced
        e = acc[A_CASH, a] + acc[A_VALUE, a] - acc[A_COST_PERP, a]
        if held and e > acc[A_PEAK_EQUITY, a]:
            acc[A_PEAK_EQUITY, a] = e
    glob[G_VALUE] += dv_total
    glob[G_GROSS] += dg_total
    glob[G_COST_PERP] += dc_total
