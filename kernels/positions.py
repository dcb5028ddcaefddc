"""Positions and PnL: fills, marks, funding and transfers applied to the state blocks, exactly.

A position slot holds a signed quantity ``q`` and a signed cost basis ``c`` (the money paid for the
open quantity, sum of price x qty x mult, negative for shorts). Average entry price is
``c / (q * mult)``, derived, never stored. A fill that opens or adds adds its notional to ``c``; a fill
that closes ``k`` of ``|q|`` removes the proportional cost ``c * k / |q|`` (rounded toward zero, the
remainder stays in the position) and realises ``sign(q) * price * k * mult - removed``. A fill larger
than the position closes it and opens the rest on the other side (netting mode); in hedge mode the
slot is chosen by the fill's position side and a slot never flips.

Cash (the account's USDT balance, ``acc[A_CASH]``):

* perpetual fills move cash by ``realised - fee``; funding moves it by the funding amount;
* spot fills move cash by ``-(signed notional) - fee`` (the asset is paid for).

So, exactly: change in cash == realised - fees + funding - change in spot cost basis, and after a
position returns to flat its realised PnL equals the sum of its fills' signed proceeds. For an instrument
quoted in another asset (ETH/BTC) the position's fields stay in its money (1e-12 BTC) and what reaches the
account (cash, realised, fees, value, gross, perp cost) is converted into 1e-8 USDT at the instrument's rate
(``kernels.quote_rates``), rounded against the account: a cash move at the rate of the moment of the fill.

Every kernel keeps the account and global caches (value, gross exposure, perp cost basis, cash) and
the equity peak up to date; ``recompute_caches`` rebuilds the caches from positions.

The fill and mark kernels have explicit signatures (compiled at import, cached on disk); reporting
kernels compile lazily on first use (cached on disk too).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.codes import (
    BAD_POSITION_SIDE,
    BAD_SIDE,
    BUY,
    HEDGE,
    HEDGE_OVERCLOSE,
    OK,
    PERP,
    POS_BOTH,
    POS_LONG,
    POS_SHORT,
    PRICE_NOT_POSITIVE,
    QTY_NOT_POSITIVE,
    SELL,
    UNKNOWN_ACCOUNT,
    UNKNOWN_INSTRUMENT,
)
from kernels.fixed import PPM, mul_div_ceil, mul_div_floor, mul_div_trunc
from kernels.quote_rates import to_limit_ceil, to_limit_floor
from kernels.state import (
    A_CASH,
    A_COST_PERP,
    A_DAY_START_EQUITY,
    A_EXCHANGE,
    A_FEES,
    A_FUNDING,
    A_GROSS,
    A_PEAK_EQUITY,
    A_POS_MODE,
    A_REALISED,
    A_UNPRICED,
    A_VALUE,
    G_CASH,
    G_COST_PERP,
    G_DAY_START_EQUITY,
    G_GROSS,
    G_UNPRICED,
    G_VALUE,
    I_KIND,
    I_MARK,
    I_MULT,
    I_RATE_DEN,
    I_RATE_NUM,
    P_COST,
    P_FEES,
    P_FUNDING,
    P_QTY,
    P_REALISED,
)

# fills block for the batch form: fills[F_*, k]
F_ACCOUNT, F_INSTRUMENT, F_SIDE, F_POS_SIDE, F_PRICE, F_QTY, F_FEE = range(7)
F_FIELDS = 7

# account summary rows (account_summary / aggregate_summary)
S_EQUITY, S_CASH, S_UNREALISED, S_REALISED, S_FEES, S_FUNDING, S_GROSS, S_NET_VALUE = range(8)
S_FIELDS = 8
SUMMARY_NAMES = ("equity", "cash", "unrealised", "realised", "fees", "funding", "gross", "net_value")

FUNDING_RATE_SCALE = 100_000_000  # funding rates are int64 units of 1e-8 (Binance quotes 8 decimals)

_BLOCKS = "int64[:, ::1], int64[:, ::1], int64[:, ::1], int64[:, :, :, ::1], int64[::1]"


@njit(cache=True, inline="always")
def _equity(acc, a):
    return acc[A_CASH, a] + acc[A_VALUE, a] - acc[A_COST_PERP, a]


@njit(cache=True, inline="always")
def _raise_peak(acc, a):
    e = _equity(acc, a)
    if e > acc[A_PEAK_EQUITY, a]:
        acc[A_PEAK_EQUITY, a] = e


@njit(cache=True, inline="always")
def _move_cash(acc, glob, a, amount):
    acc[A_CASH, a] += amount
    glob[G_CASH] += amount


@njit(cache=True)
def _set_mark(ins, acc, pos, glob, i, mark):
    old = ins[I_MARK, i]
    if mark == old:
        return
    dm = mark - old
    m = ins[I_MULT, i]
    ins[I_MARK, i] = mark
    num = ins[I_RATE_NUM, i]
    den = ins[I_RATE_DEN, i]
    same = num == den  # quoted in the limits' currency: nothing to convert
    dv_total = 0
    dg_total = 0
    for a in range(acc.shape[1]):
        q0 = pos[P_QTY, a, i, 0]
        q1 = pos[P_QTY, a, i, 1]
        if q0 == 0 and q1 == 0:
            continue
        if same:
            dv = (q0 + q1) * dm * m
            dg = (abs(q0) + abs(q1)) * dm * m
        else:  # each slot's converted value at the new mark minus at the old one (the caches' own rounding)
            dv = 0
            dg = 0
            for q in (q0, q1):
                if q != 0:
                    dv += to_limit_floor(q * mark * m, num, den) - to_limit_floor(q * old * m, num, den)
                    dg += to_limit_ceil(abs(q) * mark * m, num, den) - to_limit_ceil(abs(q) * old * m, num, den)
        acc[A_VALUE, a] += dv
        acc[A_GROSS, a] += dg
        dv_total += dv
        dg_total += dg
        _raise_peak(acc, a)
    glob[G_VALUE] += dv_total
    glob[G_GROSS] += dg_total


@njit(cache=True, inline="always")
def _apply_fill(ins, acc, pos, glob, a, i, side, pos_side, price, qty, fee):  # noqa: C901 - one flat kernel
    if a < 0 or a >= acc.shape[1]:
        return UNKNOWN_ACCOUNT
    if i < 0 or i >= ins.shape[1]:
        return UNKNOWN_INSTRUMENT
    if side != BUY and side != SELL:
        return BAD_SIDE
    hedge = acc[A_POS_MODE, a] == HEDGE
    if hedge:
        if pos_side != POS_LONG and pos_side != POS_SHORT:
            return BAD_POSITION_SIDE
    elif pos_side != POS_BOTH:
        return BAD_POSITION_SIDE
    if qty <= 0:
        return QTY_NOT_POSITIVE
    if price <= 0:
        return PRICE_NOT_POSITIVE
    slot = 1 if pos_side == POS_SHORT else 0
    q = pos[P_QTY, a, i, slot]
    if hedge and ((pos_side == POS_LONG) == (side == SELL)) and qty > abs(q):
        return HEDGE_OVERCLOSE
    if ins[I_MARK, i] <= 0:
        _set_mark(ins, acc, pos, glob, i, price)

    m = ins[I_MULT, i]
    c = pos[P_COST, a, i, slot]
    unit = price * m  # money per quantity unit at the fill price
    realised = 0
    if q == 0 or (q > 0) == (side == BUY):
        q_new = q + side * qty
        c_new = c + side * qty * unit
    else:
        k = qty if qty < abs(q) else abs(q)
        removed = mul_div_trunc(c, k, abs(q))
        realised = (unit * k if q > 0 else -unit * k) - removed
        q_new = q + side * k
        c_new = c - removed
        rest = qty - k
        if rest > 0:
            q_new += side * rest
            c_new += side * rest * unit
    pos[P_QTY, a, i, slot] = q_new
    pos[P_COST, a, i, slot] = c_new
    pos[P_REALISED, a, i, slot] += realised
    pos[P_FEES, a, i, slot] += fee
    # the account's fields are in the limits' unit: an instrument quoted in another asset converts at its rate
    num = ins[I_RATE_NUM, i]
    den = ins[I_RATE_DEN, i]
    acc[A_REALISED, a] += to_limit_floor(realised, num, den)
    acc[A_FEES, a] += to_limit_ceil(fee, num, den)

    mark_unit = ins[I_MARK, i] * m
    if num == den:
        dv = (q_new - q) * mark_unit
        dg = (abs(q_new) - abs(q)) * mark_unit
    else:
        dv = to_limit_floor(q_new * mark_unit, num, den) - to_limit_floor(q * mark_unit, num, den)
        dg = to_limit_ceil(abs(q_new) * mark_unit, num, den) - to_limit_ceil(abs(q) * mark_unit, num, den)
        if num == 0:
            dn = (1 if q_new != 0 else 0) - (1 if q != 0 else 0)
            acc[A_UNPRICED, a] += dn
            glob[G_UNPRICED] += dn
    acc[A_VALUE, a] += dv
    acc[A_GROSS, a] += dg
    glob[G_VALUE] += dv
    glob[G_GROSS] += dg
    if ins[I_KIND, i] == PERP:
        dc = to_limit_ceil(c_new, num, den) - to_limit_ceil(c, num, den)
        acc[A_COST_PERP, a] += dc
        glob[G_COST_PERP] += dc
        _move_cash(acc, glob, a, to_limit_floor(realised - fee, num, den))
    else:
        _move_cash(acc, glob, a, to_limit_floor(-side * qty * unit - fee, num, den))
    _raise_peak(acc, a)
    return OK


@njit(f"int64({_BLOCKS}, int64, int64, int64, int64, int64, int64, int64)", cache=True)
def apply_fill(ins, lim, acc, pos, glob, a, i, side, pos_side, price, qty, fee):
    """Apply one fill (price and qty in kernel units, fee in money units). Returns 0 or a reason code;
    a fill that is refused changes nothing."""
    return _apply_fill(ins, acc, pos, glob, a, i, side, pos_side, price, qty, fee)


@njit(f"int64({_BLOCKS}, int64[:, ::1], int64[::1])", cache=True)
def apply_fills(ins, lim, acc, pos, glob, fills, out):
    """Apply fills[:, k] in order; writes each status to out[k] and returns the number applied."""
    applied = 0
    for k in range(fills.shape[1]):
        r = _apply_fill(
            ins,
            acc,
            pos,
            glob,
            fills[F_ACCOUNT, k],
            fills[F_INSTRUMENT, k],
            fills[F_SIDE, k],
            fills[F_POS_SIDE, k],
            fills[F_PRICE, k],
            fills[F_QTY, k],
            fills[F_FEE, k],
        )
        out[k] = r
        if r == OK:
            applied += 1
    return applied


@njit(f"void({_BLOCKS}, int64, int64)", cache=True)
def update_mark(ins, lim, acc, pos, glob, i, mark):
    """Set instrument i's mark price and revalue every account holding it (O(accounts))."""
    _set_mark(ins, acc, pos, glob, i, mark)


@njit(f"void({_BLOCKS}, int64[::1], int64[::1])", cache=True)
def update_marks(ins, lim, acc, pos, glob, instruments, marks):
    for k in range(instruments.shape[0]):
        _set_mark(ins, acc, pos, glob, instruments[k], marks[k])


@njit(f"void({_BLOCKS}, int64, int64, int64, int64)", cache=True)
def apply_funding(ins, lim, acc, pos, glob, a, i, pos_side, amount):
    """Book a funding payment (money units, positive = received) on one position slot."""
    slot = 1 if pos_side == POS_SHORT else 0
    pos[P_FUNDING, a, i, slot] += amount
    acc[A_FUNDING, a] += amount
    _move_cash(acc, glob, a, amount)
    _raise_peak(acc, a)


@njit(f"int64({_BLOCKS}, int64, int64)", cache=True)
def apply_funding_rate(ins, lim, acc, pos, glob, i, rate_e8):
    """Charge a funding rate (units of 1e-8) to every position in instrument i at its mark:
    a long pays value x rate when the rate is positive, a short receives it (each payment is rounded
    down, i.e. against the account; an instrument quoted in another asset books it at its rate). Returns the net
    amount booked across accounts, in the limits' unit."""
    mark_unit = ins[I_MARK, i] * ins[I_MULT, i]
    total = 0
    for a in range(acc.shape[1]):
        for slot in range(2):
            q = pos[P_QTY, a, i, slot]
            if q == 0:
                continue
            amount = mul_div_floor(-q * mark_unit, rate_e8, FUNDING_RATE_SCALE)
            pos[P_FUNDING, a, i, slot] += amount
            booked = to_limit_floor(amount, ins[I_RATE_NUM, i], ins[I_RATE_DEN, i])
            acc[A_FUNDING, a] += booked
            _move_cash(acc, glob, a, booked)
            _raise_peak(acc, a)
            total += booked
    return total


@njit(f"void({_BLOCKS}, int64, int64)", cache=True)
def transfer(ins, lim, acc, pos, glob, a, amount):
    """Deposit (amount > 0) or withdraw cash. Not PnL: day start and peak move with it."""
    _move_cash(acc, glob, a, amount)
    acc[A_DAY_START_EQUITY, a] += amount
    acc[A_PEAK_EQUITY, a] += amount
    glob[G_DAY_START_EQUITY] += amount


@njit(f"void({_BLOCKS})", cache=True)
def start_day(ins, lim, acc, pos, glob):
    """Start a new trading day: day-start equity := current equity, per account and globally."""
    for a in range(acc.shape[1]):
        acc[A_DAY_START_EQUITY, a] = _equity(acc, a)
    glob[G_DAY_START_EQUITY] = glob[G_CASH] + glob[G_VALUE] - glob[G_COST_PERP]


@njit(cache=True)
def recompute_caches(ins, lim, acc, pos, glob):
    """Rebuild value, gross and perp cost per account and the global sums from the positions
    (after loading positions from a snapshot, or to check the incremental caches)."""
    g_cash = 0
    g_value = 0
    g_gross = 0
    g_cost = 0
    g_unpriced = 0
    for a in range(acc.shape[1]):
        value = 0
        gross = 0
        cost = 0
        unpriced = 0
        for i in range(ins.shape[1]):
            mark_unit = ins[I_MARK, i] * ins[I_MULT, i]
            num = ins[I_RATE_NUM, i]
            den = ins[I_RATE_DEN, i]
            for slot in range(2):
                q = pos[P_QTY, a, i, slot]
                if q == 0:
                    continue
                value += to_limit_floor(q * mark_unit, num, den)
                gross += to_limit_ceil(abs(q) * mark_unit, num, den)
                if ins[I_KIND, i] == PERP:
                    cost += to_limit_ceil(pos[P_COST, a, i, slot], num, den)
                if num == 0:
                    unpriced += 1
        acc[A_VALUE, a] = value
        acc[A_GROSS, a] = gross
        acc[A_COST_PERP, a] = cost
        acc[A_UNPRICED, a] = unpriced
        g_cash += acc[A_CASH, a]
        g_value += value
        g_gross += gross
        g_cost += cost
        g_unpriced += unpriced
    glob[G_CASH] = g_cash
    glob[G_VALUE] = g_value
    glob[G_GROSS] = g_gross
    glob[G_COST_PERP] = g_cost
    glob[G_UNPRICED] = g_unpriced


@njit(cache=True)
def account_summary(ins, lim, acc, pos, glob, out):
    """Fill out[S_*, a] for every account: equity, cash, unrealised, realised, fees, funding, gross and
    net value (money units). Unrealised is value at the mark minus cost basis, spot and perp alike (converted at
    each instrument's rate, rounded down)."""
    for a in range(acc.shape[1]):
        unrealised = 0
        for i in range(ins.shape[1]):
            mark_unit = ins[I_MARK, i] * ins[I_MULT, i]
            for slot in range(2):
                q = pos[P_QTY, a, i, slot]
                if q != 0:
                    u = q * mark_unit - pos[P_COST, a, i, slot]
                    unrealised += to_limit_floor(u, ins[I_RATE_NUM, i], ins[I_RATE_DEN, i])
        out[S_EQUITY, a] = _equity(acc, a)
        out[S_CASH, a] = acc[A_CASH, a]
        out[S_UNREALISED, a] = unrealised
        out[S_REALISED, a] = acc[A_REALISED, a]
        out[S_FEES, a] = acc[A_FEES, a]
        out[S_FUNDING, a] = acc[A_FUNDING, a]
        out[S_GROSS, a] = acc[A_GROSS, a]
        out[S_NET_VALUE, a] = acc[A_VALUE, a]


@njit(cache=True)
def aggregate_summary(summary, acc, n_exchanges):
    """Sum an account summary per exchange (rows 0..n_exchanges-1) and over all accounts (last row)."""
    out = np.zeros((n_exchanges + 1, summary.shape[0]), dtype=np.int64)
    for a in range(summary.shape[1]):
        ex = acc[A_EXCHANGE, a]
        for f in range(summary.shape[0]):
            out[ex, f] += summary[f, a]
            out[n_exchanges, f] += summary[f, a]
    return out


@njit(cache=True, inline="always")
def fee_for(notional, rate_ppm):
    """Fee in money units for a notional at a rate in ppm (1000 = 0.1%), rounded up (against us)."""
    return mul_div_ceil(notional, rate_ppm, PPM)


def new_fills(n: int) -> np.ndarray:
    """An empty fills block for ``apply_fills`` (fields on the first axis)."""
    return np.zeros((F_FIELDS, n), dtype=np.int64)


def summary(state, n_exchanges: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(per-account summary [S_FIELDS, n_accounts], per-exchange and total rows [n_exchanges + 1, S_FIELDS])."""
    out = np.zeros((S_FIELDS, state.acc.shape[1]), dtype=np.int64)
    account_summary(*state.blocks, out)
    return out, aggregate_summary(out, state.acc, n_exchanges)
