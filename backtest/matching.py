"""Orders against market events: intents in, fills out (compiled; no strategy calls).

- **Market orders** trade at the first eligible event's open (a trade event: its price) plus slippage.
- **Limit orders** marketable on arrival (a buy at or above the open) take liquidity at the open,
  never worse than their limit; otherwise they rest and fill at their price, as maker, when the price
  trades through them (``QUEUE_CONSERVATIVE``: low strictly below a buy, high strictly above a sell)
  or touches them (``QUEUE_OPTIMISTIC``).
- **Slippage** (taker fills only): ``fixed_ppm + impact_ppm * fill / event volume``, rounded to whole
  ticks against the taker.
- **Partial fills**: with ``participation_ppm`` an order takes at most that share of each event's volume
  (whole lots) and the rest waits for later events.
- An order is eligible against an event when it arrived (``decision ts + latency``) by the event's open
  time; orders are matched in the order of their slots in the order table.
"""

from __future__ import annotations

from backtest.book import (
    RT_HI,
    RT_NFILLS,
    RT_NLOG,
    RT_NOPEN,
    RT_PENDING,
    RT_PERPS,
    apply_fill,
    fee_of,
    fee_rate,
    record_fill,
)
from backtest.book import recompute_equity as _recompute
from backtest.codes import (
    BAD_ACCOUNT,
    BAD_FLAGS,
    BAD_INSTRUMENT,
    BAD_PRICE,
    BAD_QTY,
    BAD_SIDE,
    BAD_TAG,
    BAD_TYPE,
    C_LATENCY_NS,
    C_PARTICIPATION_PPM,
    C_QUEUE,
    C_SLIP_FIXED_PPM,
    C_SLIP_IMPACT_PPM,
    ERR_ACCOUNT,
    ERR_CODE,
    ERR_EVENT,
    ERR_ROW,
    ERR_WHAT,
    FILLS_FULL,
    I_KIND,
    I_LIQ_FEE_PPM,
    I_LOT,
    I_MAINT_PPM,
    I_MULT,
    I_TICK,
    K_CANCELS,
    K_INTENTS,
    K_LIQUIDATIONS,
    K_ORDERS,
    MONEY_LIMIT_F,
    O_ACCOUNT,
    O_ACTIVE,
    O_ARRIVE,
    O_FLAGS,
    O_INST,
    O_PRICE,
    O_QTY,
    O_RESTING,
    O_SIDE,
    O_TAG,
    O_TYPE,
    OV_CASH,
    OV_NOTIONAL,
    OVERFLOW,
    QUEUE_OPTIMISTIC,
    R_LIQUIDATED,
    R_ORDERS_FULL,
    R_OVERFLOW,
    R_POST_ONLY,
    R_QTY_ZERO,
    R_REDUCE_ONLY,
    TOO_MANY_INTENTS,
)
from kernels.codes import LIMIT, MARKET, PERP
from kernels.fixed import mul_div_floor
from strategies.api import (
    A_CASH,
    A_EQUITY,
    A_FEES,
    A_LIQUIDATED,
    A_OPEN_ORDERS,
    A_REALISED,
    CANCEL,
    CANCEL_ALL,
    CLOSE,
    EMULATED_FIRST,
    EMULATED_LAST,
    EV_HIGH,
    EV_INST,
    EV_LOW,
    EV_OPEN,
    EV_T0,
    EV_TS,
    EV_VOLUME,
    IN_ACCOUNT,
    IN_FLAGS,
    IN_INST,
    IN_PRICE,
    IN_QTY,
    IN_SIDE,
    IN_TAG,
    IN_TYPE,
    IOC,
    LIQUIDATION,
    MAKER,
    PARTIAL,
    POST_ONLY,
    QUOTE_QTY,
    REDUCE_ONLY,
    REJECTED,
    kernel,
)

ALL_FLAGS = REDUCE_ONLY | POST_ONLY | IOC | QUOTE_QTY | CLOSE
PENDING = 2  # O_ACTIVE of an emulated intent's row (a parent, an exit rule) waiting for backtest.emulation
PPM = 1_000_000


@kernel(inline="always")
def _deactivate(orders, s, acc, rt):
    orders[s, O_ACTIVE] = 0
    rt[RT_NOPEN] -= 1
    acc[orders[s, O_ACCOUNT], A_OPEN_ORDERS] -= 1
    hi = rt[RT_HI]
    while hi > 0 and orders[hi - 1, O_ACTIVE] == 0:
        hi -= 1
    rt[RT_HI] = hi


@kernel(inline="always")
def _invalid(row, out, inst, n_acc):
    a = out[row, IN_ACCOUNT]
    if a < 0 or a >= n_acc:
        return BAD_ACCOUNT
    i = out[row, IN_INST]
    if i < 0 or i >= inst.shape[0]:
        return BAD_INSTRUMENT
    t = out[row, IN_TYPE]
    if t == CANCEL or t == CANCEL_ALL:
        return BAD_TAG if out[row, IN_TAG] < 0 else 0
    if EMULATED_FIRST <= t <= EMULATED_LAST:  # checked by backtest.emulation, which works it
        return BAD_TAG if out[row, IN_TAG] < 0 else 0
    if t != LIMIT and t != MARKET:
        return BAD_TYPE
    side = out[row, IN_SIDE]
    if side != 1 and side != -1:
        return BAD_SIDE
    flags = out[row, IN_FLAGS]
    if flags & ~ALL_FLAGS or (flags & QUOTE_QTY and (flags & CLOSE or t == LIMIT)):
        return BAD_FLAGS
    q = out[row, IN_QTY]
    if not flags & CLOSE and (q <= 0 or (not flags & QUOTE_QTY and q % inst[i, I_LOT] != 0)):
        return BAD_QTY
    if t == LIMIT and (out[row, IN_PRICE] <= 0 or out[row, IN_PRICE] % inst[i, I_TICK] != 0):
        return BAD_PRICE
    if out[row, IN_TAG] < 0:
        return BAD_TAG
    return 0


@kernel(inline="always")
def add_intents(  # noqa: C901
    out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err
):
    """Validate and apply ``m`` intents written in ``out``; False (and ``err`` set) on an invalid one."""
    if m < 0 or m > out.shape[0]:
        err[ERR_CODE] = TOO_MANY_INTENTS
        err[ERR_EVENT] = k
        err[ERR_ROW] = m
        return False
    for r in range(m):
        code = _invalid(r, out, inst, acc.shape[0])
        if code != 0:
            err[ERR_CODE] = code
            err[ERR_EVENT] = k
            err[ERR_ROW] = r
            return False
        counters[K_INTENTS] += 1
        if log.shape[0] > 0:
            nl = rt[RT_NLOG]
            if nl >= log.shape[0]:
                err[ERR_CODE] = FILLS_FULL
                err[ERR_EVENT] = k
                return False
            log[nl, 0] = k
            for f in range(out.shape[1]):
                log[nl, 1 + f] = out[r, f]
            rt[RT_NLOG] = nl + 1
        a = out[r, IN_ACCOUNT]
        i = out[r, IN_INST]
        t = out[r, IN_TYPE]
        if t == CANCEL or t == CANCEL_ALL:
            for s in range(rt[RT_HI]):
                if orders[s, O_ACTIVE] == 1 and orders[s, O_ACCOUNT] == a and orders[s, O_INST] == i:
                    if t == CANCEL_ALL or orders[s, O_TAG] == out[r, IN_TAG]:
                        _deactivate(orders, s, acc, rt)
                        counters[K_CANCELS] += 1
            continue
        slot = -1
        for s in range(rt[RT_HI]):
            if orders[s, O_ACTIVE] == 0:
                slot = s
                break
        if slot < 0:
            if rt[RT_HI] >= orders.shape[0]:
                ok = record_fill(
                    fills, rt, counters, ts, a, i, out[r, IN_SIDE], 0, 0, R_ORDERS_FULL, out[r, IN_TAG], REJECTED, k
                )
                if not ok:
                    err[ERR_CODE] = FILLS_FULL
                    err[ERR_EVENT] = k
                    return False
                continue
            slot = rt[RT_HI]
            rt[RT_HI] = slot + 1
        emulated = EMULATED_FIRST <= t <= EMULATED_LAST
        orders[slot, O_ACTIVE] = PENDING if emulated else 1
        orders[slot, O_ACCOUNT] = a
        orders[slot, O_INST] = i
        orders[slot, O_SIDE] = out[r, IN_SIDE]
        orders[slot, O_TYPE] = t
        orders[slot, O_PRICE] = out[r, IN_PRICE]
        orders[slot, O_QTY] = out[r, IN_QTY]
        orders[slot, O_FLAGS] = out[r, IN_FLAGS]
        orders[slot, O_TAG] = out[r, IN_TAG]
        orders[slot, O_RESTING] = 0
        if emulated:  # for backtest.emulation to take: the loop returns before its next event
            orders[slot, O_ARRIVE] = ts  # when it was decided
            orders[slot, O_RESTING] = k
            rt[RT_PENDING] += 1
            continue
        orders[slot, O_ARRIVE] = ts + cfg[C_LATENCY_NS]
        rt[RT_NOPEN] += 1
        acc[a, A_OPEN_ORDERS] += 1
        counters[K_ORDERS] += 1
    return True


@kernel
def add_intents_called(out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err):
    """``add_intents`` as a call, for the engine's rarer paths (timers, answers to fills): inlining it at every
    call site of the loop would double the loop's compile time for no measurable gain."""
    return add_intents(out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err)


@kernel
def _slipped(px, side, slip_ppm, tick, limit):
    """``px`` moved ``slip_ppm`` against a taker, to whole ticks (never past ``limit`` when > 0)."""
    if slip_ppm <= 0:
        return px
    if side > 0:
        p = -mul_div_floor(-px, PPM + slip_ppm, PPM)  # ceil
        p = (p + tick - 1) // tick * tick
        return min(p, limit) if limit > 0 else p
    p = mul_div_floor(px, PPM - slip_ppm, PPM) // tick * tick
    return max(p, limit) if limit > 0 else max(p, tick)


@kernel
def _size_budget(budget, px, mult, lot, rate):
    """Most whole lots whose notional plus fee fits in ``budget`` money units at ``px``."""
    unit = px * mult
    q = mul_div_floor(budget, PPM, unit * (PPM + max(rate, 0))) // lot * lot
    while q > 0 and q * unit + fee_of(q * unit, rate) > budget:
        q -= lot
    return q


@kernel(inline="always")
def overflow(err, k, what, a):
    """Stop the run: money ``what`` (OV_*) of account ``a`` would pass MONEY_LIMIT at event ``k``."""
    err[ERR_CODE] = OVERFLOW
    err[ERR_EVENT] = k
    err[ERR_WHAT] = what
    err[ERR_ACCOUNT] = a


@kernel(inline="always")
def too_big(px, mult, units):
    """Whether ``px * mult * units`` (money, all >= 0) would reach MONEY_LIMIT (float bound, no int64 wrap)."""
    return float(px) * float(mult) * float(units) >= MONEY_LIMIT_F


@kernel(inline="always")
def match_instrument(  # noqa: C901
    k, events, inst, cfg, tiers, tier, acc, pos, cost, last, orders, fills, rt, vol, counters, err
):
    """Trade the open orders of the event's instrument against it (stops at an OVERFLOW, ``err`` set)."""
    i = events[EV_INST, k]
    t0 = events[EV_T0, k]
    ts = events[EV_TS, k]
    opn = events[EV_OPEN, k]
    volume = events[EV_VOLUME, k]
    tick = inst[i, I_TICK]
    lot = inst[i, I_LOT]
    mult = inst[i, I_MULT]
    part = cfg[C_PARTICIPATION_PPM]
    for s in range(rt[RT_HI]):
        if orders[s, O_ACTIVE] != 1 or orders[s, O_INST] != i or orders[s, O_ARRIVE] > t0:
            continue
        a = orders[s, O_ACCOUNT]
        side = orders[s, O_SIDE]
        flags = orders[s, O_FLAGS]
        limit = orders[s, O_PRICE] if orders[s, O_TYPE] == LIMIT else 0
        first = orders[s, O_RESTING] == 0
        maker = False
        if limit == 0:
            px = opn
        elif first and (opn <= limit if side > 0 else opn >= limit):
            if flags & POST_ONLY:
                record_fill(fills, rt, counters, ts, a, i, side, 0, 0, R_POST_ONLY, orders[s, O_TAG], REJECTED, k)
                _deactivate(orders, s, acc, rt)
                continue
            px = opn
        else:
            orders[s, O_RESTING] = 1
            if side > 0:
                through = events[EV_LOW, k] <= limit if cfg[C_QUEUE] == QUEUE_OPTIMISTIC else events[EV_LOW, k] < limit
            else:
                through = (
                    events[EV_HIGH, k] >= limit if cfg[C_QUEUE] == QUEUE_OPTIMISTIC else events[EV_HIGH, k] > limit
                )
            if not through:
                if flags & IOC:
                    _deactivate(orders, s, acc, rt)
                    counters[K_CANCELS] += 1
                continue
            px = limit
            maker = True
        rate = fee_rate(tiers, tier[a], maker)
        held = pos[a, i]
        # the quantity this order wants now
        if flags & (CLOSE | REDUCE_ONLY):
            if held == 0 or (held > 0) == (side > 0):
                record_fill(fills, rt, counters, ts, a, i, side, 0, 0, R_REDUCE_ONLY, orders[s, O_TAG], REJECTED, k)
                _deactivate(orders, s, acc, rt)
                continue
            want = abs(held) if flags & CLOSE else min(orders[s, O_QTY], abs(held))
        elif flags & QUOTE_QTY:
            p0 = px if maker else _slipped(px, side, cfg[C_SLIP_FIXED_PPM], tick, limit)
            if too_big(p0, mult, PPM + max(rate, 0)):  # the sizing's divisor
                overflow(err, k, OV_NOTIONAL, a)
                return
            want = _size_budget(orders[s, O_QTY], p0, mult, lot, rate)
        else:
            want = orders[s, O_QTY]
        q = want
        if part > 0:
            q = min(q, mul_div_floor(volume, part, PPM) // lot * lot)
        if q <= 0:
            if want <= 0:
                record_fill(fills, rt, counters, ts, a, i, side, 0, 0, R_QTY_ZERO, orders[s, O_TAG], REJECTED, k)
                _deactivate(orders, s, acc, rt)
            elif flags & IOC:
                _deactivate(orders, s, acc, rt)
                counters[K_CANCELS] += 1
            continue
        if not maker:
            slip = cfg[C_SLIP_FIXED_PPM]
            if cfg[C_SLIP_IMPACT_PPM] > 0 and volume > 0:
                slip += mul_div_floor(cfg[C_SLIP_IMPACT_PPM], q, volume)
            px = _slipped(px, side, slip, tick, limit)
            if flags & QUOTE_QTY:
                if too_big(px, mult, PPM + max(rate, 0)):
                    overflow(err, k, OV_NOTIONAL, a)
                    return
                q = min(q, _size_budget(orders[s, O_QTY], px, mult, lot, rate))
                if q <= 0:
                    record_fill(fills, rt, counters, ts, a, i, side, 0, 0, R_QTY_ZERO, orders[s, O_TAG], REJECTED, k)
                    _deactivate(orders, s, acc, rt)
                    continue
        # the fill's notional, and the position after it at this price and at the last mark (its equity)
        if too_big(max(px, last[i]), mult, q + abs(held)):
            overflow(err, k, OV_NOTIONAL, a)
            return
        fee = fee_of(px * q * mult, rate)
        reason = apply_fill(acc, pos, cost, inst, last, rt, vol, a, i, side, px, q, fee)
        if reason == R_OVERFLOW:
            overflow(err, k, OV_CASH, a)
            return
        if reason != 0:
            record_fill(fills, rt, counters, ts, a, i, side, px, 0, reason, orders[s, O_TAG], REJECTED, k)
            _deactivate(orders, s, acc, rt)
            continue
        if flags & QUOTE_QTY:
            orders[s, O_FLAGS] = flags & ~QUOTE_QTY
            orders[s, O_QTY] = want
        left = orders[s, O_QTY] - q if not flags & CLOSE else 0
        orders[s, O_QTY] = left
        fl = (MAKER if maker else 0) | (PARTIAL if left > 0 else 0)
        record_fill(fills, rt, counters, ts, a, i, side, px, q, fee, orders[s, O_TAG], fl, k)
        if left <= 0:
            _deactivate(orders, s, acc, rt)
        elif flags & IOC:
            _deactivate(orders, s, acc, rt)
            counters[K_CANCELS] += 1
        if rt[RT_NFILLS] >= fills.shape[0]:
            return


@kernel
def check_liquidation(k, events, inst, cfg, tiers, tier, acc, pos, cost, last, orders, fills, rt, vol, counters):
    """Liquidate every account whose equity at this event's adverse extreme is below maintenance margin."""
    i = events[EV_INST, k]
    mult = inst[i, I_MULT]
    for a in range(pos.shape[0]):
        q = pos[a, i]
        if q == 0:
            continue
        adverse = events[EV_LOW, k] if q > 0 else events[EV_HIGH, k]
        eq = acc[a, A_EQUITY] + q * (adverse - last[i]) * mult
        maint = 0
        for j in range(pos.shape[1]):
            qj = pos[a, j]
            if qj != 0 and inst[j, I_KIND] == PERP:
                mj = adverse if j == i else last[j]
                maint += mul_div_floor(abs(qj * mj * inst[j, I_MULT]), inst[j, I_MAINT_PPM], PPM)
        if eq >= maint:
            continue
        for j in range(pos.shape[1]):
            qj = pos[a, j]
            if qj == 0 or inst[j, I_KIND] != PERP:
                continue
            px = adverse if j == i else last[j]
            side = -1 if qj > 0 else 1
            size = abs(qj)
            notional = px * size * inst[j, I_MULT]
            fee = fee_of(notional, inst[j, I_LIQ_FEE_PPM])
            realised = qj * px * inst[j, I_MULT] - cost[a, j]
            acc[a, A_CASH] += realised - fee
            acc[a, A_REALISED] += realised
            acc[a, A_FEES] += fee
            cost[a, j] = 0
            pos[a, j] = 0
            rt[RT_PERPS] -= 1
            record_fill(fills, rt, counters, events[EV_TS, k], a, j, side, px, size, fee, -1, LIQUIDATION, k)
        for s in range(rt[RT_HI]):
            if orders[s, O_ACTIVE] == 1 and orders[s, O_ACCOUNT] == a and inst[orders[s, O_INST], I_KIND] == PERP:
                record_fill(
                    fills, rt, counters, events[EV_TS, k], a, orders[s, O_INST], orders[s, O_SIDE], 0, 0,
                    R_LIQUIDATED, orders[s, O_TAG], REJECTED, k,
                )  # fmt: skip
                _deactivate(orders, s, acc, rt)
        acc[a, A_LIQUIDATED] += 1
        counters[K_LIQUIDATIONS] += 1
        _recompute(acc, pos, cost, inst, last, a)
