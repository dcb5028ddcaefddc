"""Accounts, fills and orders inside the engine: compiled helpers over int64 arrays (no strategy calls).

Money is int64 1e-8 USDT, prices and quantities int64 units (``kernels/instruments.py``).
- Spot: a buy pays ``price * qty * mult + fee`` from cash, a sell receives it; no shorting.
- Perps (linear, USDT-margined): ``cost`` is the signed entry notional of the open position; reducing
  removes cost proportionally (toward zero, as ``kernels.positions``) and realises
  ``exit notional - removed cost`` into cash; equity adds ``pos * mark * mult - cost``.
- Fees are ``ceil(notional * rate_ppm / 1e6)``: never under-charged.
"""

from __future__ import annotations

from backtest.codes import (
    I_KIND,
    I_LEVERAGE,
    I_MULT,
    K_FILLS,
    K_REJECTS,
    MONEY_LIMIT,
    R_CASH,
    R_MARGIN,
    R_OVERFLOW,
    R_POSITION,
    T_MAKER_PPM,
    T_TAKER_PPM,
    T_VOLUME,
)
from kernels.codes import PERP
from kernels.fixed import mul_div_floor, mul_div_trunc
from strategies.api import (
    A_CASH,
    A_EQUITY,
    A_FEES,
    A_MARGIN,
    A_REALISED,
    F_ACCOUNT,
    F_EVENT,
    F_FEE,
    F_FLAGS,
    F_INST,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_TAG,
    F_TS,
    REJECTED,
    kernel,
)

DAY_NS = 86_400_000_000_000
VOL_DAYS = 31  # ring of daily traded notional: the previous 30 days decide today's fee tier

# runtime scalars kept between calls: (RT_FIELDS,) int64
RT_NFILLS = 0
RT_NLOG = 1
RT_HI = 2  # order slots in use are below this
RT_NOPEN = 3
RT_DAY = 4  # current day number (ts // DAY_NS), -1 before the first event
RT_PERPS = 5  # number of non-zero perp positions (liquidation checks only when some exist)
RT_DELIVERED = 6  # fills delivered to on_fill so far
RT_NEXT_TIMER = 7
RT_PENDING = 8  # emulated intents (backtest.emulation) written and not taken yet: the loop returns to the driver
RT_FIELDS = 9


@kernel(inline="always")
def fee_of(notional, rate_ppm):
    """ceil(notional * rate / 1e6) for notional >= 0 (a negative rate is a rebate, floored toward zero)."""
    if rate_ppm >= 0:
        return -mul_div_floor(-notional, rate_ppm, 1_000_000)
    return mul_div_trunc(notional, rate_ppm, 1_000_000)


@kernel(inline="always")
def fee_rate(tiers, tier, maker):
    return tiers[tier, T_MAKER_PPM] if maker else tiers[tier, T_TAKER_PPM]


@kernel(inline="always")
def roll_day(rt, vol, tier, tiers, day):
    """Start day ``day``: clear the ring slots of the days skipped, pick each account's fee tier."""
    prev = rt[RT_DAY]
    if prev >= 0:
        steps = min(day - prev, VOL_DAYS)
        for k in range(1, steps + 1):
            for a in range(vol.shape[0]):
                vol[a, (prev + k) % VOL_DAYS] = 0
    else:
        vol[:, :] = 0
    rt[RT_DAY] = day
    if tiers.shape[0] == 1:  # one tier (the default): every account stays on it, no 30-day sums needed
        return
    for a in range(vol.shape[0]):
        total = 0
        for k in range(1, VOL_DAYS):
            total += vol[a, (day - k) % VOL_DAYS]
        t = 0
        for j in range(tiers.shape[0]):
            if total >= tiers[j, T_VOLUME]:
                t = j
        tier[a] = t


@kernel(inline="always")
def recompute_equity(acc, pos, cost, inst, last, a):
    """Equity and initial margin of account ``a`` at the last marks."""
    eq = acc[a, A_CASH]
    margin = 0
    for i in range(pos.shape[1]):
        q = pos[a, i]
        if q == 0:
            continue
        value = q * last[i] * inst[i, I_MULT]
        if inst[i, I_KIND] == PERP:
            eq += value - cost[a, i]
            margin += abs(value) // inst[i, I_LEVERAGE]
        else:
            eq += value
    acc[a, A_EQUITY] = eq
    acc[a, A_MARGIN] = margin


@kernel(inline="always")
def record_fill(fills, rt, counters, ts, a, i, side, price, qty, fee, tag, flags, k):
    """Append a fill (or a rejection) row; False when the buffer is full."""
    n = rt[RT_NFILLS]
    if n >= fills.shape[0]:
        return False
    fills[n, F_TS] = ts
    fills[n, F_ACCOUNT] = a
    fills[n, F_INST] = i
    fills[n, F_SIDE] = side
    fills[n, F_PRICE] = price
    fills[n, F_QTY] = qty
    fills[n, F_FEE] = fee
    fills[n, F_TAG] = tag
    fills[n, F_FLAGS] = flags
    fills[n, F_EVENT] = k
    rt[RT_NFILLS] = n + 1
    if flags & REJECTED:
        counters[K_REJECTS] += 1
    else:
        counters[K_FILLS] += 1
    return True


@kernel(inline="always")
def apply_fill(acc, pos, cost, inst, last, rt, vol, a, i, side, price, qty, fee):
    """Apply a fill to account ``a``, or return a rejection reason (0: applied) and change nothing."""
    mult = inst[i, I_MULT]
    q0 = pos[a, i]
    notional = price * qty * mult  # below MONEY_LIMIT: the matcher checked it (backtest.matching)
    if inst[i, I_KIND] != PERP:
        if side > 0:
            if acc[a, A_CASH] < notional + fee:
                return R_CASH
            acc[a, A_CASH] -= notional + fee
        else:
            if q0 < qty:
                return R_POSITION
            acc[a, A_CASH] += notional - fee
        pos[a, i] = q0 + side * qty
    else:
        q1 = q0 + side * qty
        if abs(q1) > abs(q0) or (q1 != 0 and (q1 > 0) != (q0 > 0)):
            # adds risk: the initial margin after the fill must fit in the equity after the fee
            mark = last[i] if last[i] > 0 else price
            margin = 0
            for j in range(pos.shape[1]):
                qj = q1 if j == i else pos[a, j]
                if qj != 0 and inst[j, I_KIND] == PERP:
                    mj = mark if j == i else last[j]
                    margin += abs(qj * mj * inst[j, I_MULT]) // inst[j, I_LEVERAGE]
            eq = acc[a, A_EQUITY] - fee + side * qty * (mark - price) * mult
            if margin > eq:
                return R_MARGIN
        if q0 == 0 or (q0 > 0) == (side > 0):
            cost[a, i] += side * notional
        else:
            closing = min(qty, abs(q0))
            removed = mul_div_trunc(cost[a, i], closing, abs(q0))
            realised = (-side) * closing * price * mult - removed
            cost[a, i] -= removed
            acc[a, A_CASH] += realised
            acc[a, A_REALISED] += realised
            rest = qty - closing
            if rest > 0:
                cost[a, i] = side * rest * price * mult
        acc[a, A_CASH] -= fee
        pos[a, i] = q1
        if (q0 == 0) != (q1 == 0):
            rt[RT_PERPS] += 1 if q1 != 0 else -1
    acc[a, A_FEES] += fee
    vol[a, rt[RT_DAY] % VOL_DAYS] += notional
    recompute_equity(acc, pos, cost, inst, last, a)
    if abs(acc[a, A_CASH]) >= MONEY_LIMIT:
        return R_OVERFLOW  # applied: the run stops here with OVERFLOW (cash), nothing after it counts
    return 0
