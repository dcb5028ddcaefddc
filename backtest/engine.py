"""The event-driven core: one compiled loop that replays market events through a strategy.

Per event, in this order:
1. the timer (``on_timer`` once per ``timer_ns`` boundary crossed) and the day roll (fee tiers);
2. orders of the event's instrument that have arrived by its open time trade against it
   (``backtest.matching``); each fill and rejection is delivered to ``on_fill`` at once;
3. funding events charge or pay every open perp position (``pos * mark * mult * rate / 1e8``);
4. the mark moves to the close; equity follows; perp accounts below maintenance margin at the event's
   adverse extreme (low for longs, high for shorts) are liquidated there;
5. equity is recorded, then ``on_market`` sees the event; its intents become orders that arrive at
   ``ts + latency`` (so a bar's decision trades at the next bar's open at the earliest).
The same inputs give the same outputs bit for bit: no clocks, no randomness, integer arithmetic only.

Most events of a bar strategy are quiet: one account, no timer, no order open, no perp position, nothing to
deliver. There steps 1-4 reduce to the day roll and the mark, so the loop runs them in an inner loop of their
own (the day roll, the mark, the curve, the strategy) and returns to the full steps at the first event that
needs them (funding, or intents from the strategy). Same results bit for bit (the pinned fingerprint); on the
2M-bar tape about a quarter less CPU time than the full steps for every event (tests/bench/test_backtest_bench.py).

``loop`` is plain Python here: ``backtest.compiled.engine_for(strategy)`` compiles it once per strategy
(and Numba caches that on disk).
"""

from __future__ import annotations

from backtest.book import (
    DAY_NS,
    RT_DAY,
    RT_DELIVERED,
    RT_NEXT_TIMER,
    RT_NFILLS,
    RT_NOPEN,
    RT_PENDING,
    RT_PERPS,
    roll_day,
)
from backtest.codes import (
    C_RECORD,
    C_TIMER_NS,
    ERR_CODE,
    FILLS_FULL,
    I_KIND,
    I_MULT,
    K_EVENTS,
    K_FUNDING_EVENTS,
    MONEY_LIMIT,
    MONEY_LIMIT_F,
    OV_CASH,
    OV_EQUITY,
    OV_POSITION,
)
from backtest.hints import assume, prefetch
from backtest.matching import add_intents, add_intents_called, check_liquidation, match_instrument, overflow
from kernels.codes import PERP
from kernels.fixed import mul_div_floor
from strategies.api import (
    A_CASH,
    A_EQUITY,
    A_FUNDING,
    EV_AUX,
    EV_CLOSE,
    EV_HIGH,
    EV_INST,
    EV_KIND,
    EV_LOW,
    EV_OPEN,
    EV_T0,
    EV_TS,
    EV_VOLUME,
    FUNDING,
    TRADE,
    kernel,
)

FUNDING_SCALE = 100_000_000
PREFETCH_AHEAD = 64  # events: far enough for a line to arrive from memory before the loop gets there


@kernel
def _funding(events, k, inst, acc, pos, cost, last, err):
    """Funding on every open position of the event's perp; False (OVERFLOW set) past MONEY_LIMIT."""
    i = events[EV_INST, k]
    if inst[i, I_KIND] != PERP:
        return True
    mark = events[EV_CLOSE, k]
    rate = events[EV_AUX, k]
    for a in range(pos.shape[0]):
        q = pos[a, i]
        if q == 0:
            continue
        if abs(float(q) * float(mark) * float(inst[i, I_MULT])) >= MONEY_LIMIT_F:
            overflow(err, k, OV_POSITION, a)
            return False
        # longs pay a positive rate; floor toward the payer so the venue never pays out a fraction it lacks
        amount = -mul_div_floor(q * mark * inst[i, I_MULT], rate, FUNDING_SCALE)
        if abs(acc[a, A_CASH] + amount) >= MONEY_LIMIT or abs(acc[a, A_EQUITY] + amount) >= MONEY_LIMIT:
            overflow(err, k, OV_CASH, a)
            return False
        acc[a, A_CASH] += amount
        acc[a, A_FUNDING] += amount
        acc[a, A_EQUITY] += amount
    return True


@kernel(inline="always")
def _mark(acc, pos, a, mi, new, mult, step, err, k):
    """Account ``a``'s equity follows instrument ``mi`` to ``new``; False (OVERFLOW set) past MONEY_LIMIT."""
    q = pos[a, mi]
    if q == 0:
        return True
    # the position's value stays below MONEY_LIMIT, so neither the step nor the sum can wrap
    if abs(float(q) * float(new) * float(mult)) >= MONEY_LIMIT_F:
        overflow(err, k, OV_POSITION, a)
        return False
    eq = acc[a, A_EQUITY] + q * step
    if abs(eq) >= MONEY_LIMIT:
        overflow(err, k, OV_EQUITY, a)
        return False
    acc[a, A_EQUITY] = eq
    return True


# The strategy's callbacks: ``loop`` reads them as globals, which ``backtest.compiled`` binds per strategy
# (a fresh function over this code with its own globals), so Numba calls them directly and can cache the
# compiled loop on disk. Passed as arguments instead, a dispatcher is part of the type signature and
# Numba never finds the loop in its cache (measured: a 4-6 s compile in every process).
on_market = on_fill = on_timer = None


def loop(  # noqa: C901 (one flat loop: a call per step costs more than the step)
    params,
    state,
    events,
    inst,
    cfg,
    tiers,
    acc,
    pos,
    cost,
    last,
    orders,
    fills,
    equity,
    log,
    out,
    rt,
    vol,
    tier,
    counters,
    err,
    start,
    end,
):
    """Replay events ``start..end`` of the (EV_FIELDS, n) columns; returns the first event not processed."""
    n = min(end, events.shape[1])
    timer_ns = cfg[C_TIMER_NS]
    record = cfg[C_RECORD]
    n_acc = acc.shape[0]
    day_end = (rt[RT_DAY] + 1) * DAY_NS if rt[RT_DAY] >= 0 else -1
    can_be_quiet = timer_ns <= 0 and n_acc == 1
    k = start
    while k < n:
        assume(k >= 0)
        if (
            can_be_quiet
            and rt[RT_NOPEN] == 0
            and rt[RT_PERPS] == 0
            and rt[RT_DELIVERED] == rt[RT_NFILLS]
            and rt[RT_NFILLS] < fills.shape[0]
        ):
            # The quiet stretch: no timer, one account, no order open, no perp position, no fill to deliver, room for
            # fills. Then the steps below reduce to the day roll, the mark, the curve and the strategy, which is all
            # this inner loop does, until an event that needs more (funding, or intents: orders may be open after
            # them) sends it to the full steps, which handle any event (so leaving is always correct).
            while k < n:
                assume(k >= 0)
                if events[EV_KIND, k] == FUNDING:
                    break
                ts = events[EV_TS, k]
                if ts >= day_end:
                    day = ts // DAY_NS
                    roll_day(rt, vol, tier, tiers, day)
                    day_end = (day + 1) * DAY_NS
                mi = events[EV_INST, k]
                new = events[EV_CLOSE, k]
                old = last[mi]
                if old != new:
                    mult = inst[mi, I_MULT]
                    if not _mark(acc, pos, 0, mi, new, mult, (new - old) * mult, err, k):
                        counters[K_EVENTS] += k - start
                        return k
                    last[mi] = new
                if record:
                    equity[k, 0] = acc[0, A_EQUITY]
                m = on_market(params, state, events, k, acc, pos, out)
                if k & 7 == 0 and k + PREFETCH_AHEAD < n:
                    for fld in (EV_T0, EV_OPEN, EV_HIGH, EV_LOW, EV_VOLUME):
                        prefetch(events, fld, k + PREFETCH_AHEAD)
                if m != 0:  # as after on_market below
                    if not add_intents(out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err):
                        counters[K_EVENTS] += k - start
                        return k
                    while rt[RT_DELIVERED] < rt[RT_NFILLS]:
                        f = rt[RT_DELIVERED]
                        rt[RT_DELIVERED] = f + 1
                        m = on_fill(params, state, fills[f], acc, pos, out)
                        if m != 0 and not add_intents_called(
                            out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err
                        ):
                            counters[K_EVENTS] += k - start
                            return k
                    k += 1
                    break
                k += 1
            if k >= n:
                break
        if rt[RT_PENDING] > 0:  # emulated intents (a parent, an exit rule): backtest.emulation takes them first
            counters[K_EVENTS] += k - start
            return k
        ts = events[EV_TS, k]
        if ts >= day_end:
            day = ts // DAY_NS
            roll_day(rt, vol, tier, tiers, day)
            day_end = (day + 1) * DAY_NS
        if timer_ns > 0:
            if rt[RT_NEXT_TIMER] == 0:
                rt[RT_NEXT_TIMER] = (ts // timer_ns + 1) * timer_ns
            elif ts >= rt[RT_NEXT_TIMER]:
                now = rt[RT_NEXT_TIMER]
                rt[RT_NEXT_TIMER] = (ts // timer_ns + 1) * timer_ns
                m = on_timer(params, state, now, acc, pos, out)
                if not add_intents_called(out, m, k, now, inst, cfg, orders, acc, pos, fills, log, rt, counters, err):
                    counters[K_EVENTS] += k - start
                    return k
        kind = events[EV_KIND, k]
        if kind == FUNDING:
            counters[K_FUNDING_EVENTS] += 1
            if not _funding(events, k, inst, acc, pos, cost, last, err):
                counters[K_EVENTS] += k - start
                return k
        elif rt[RT_NOPEN] > 0:
            match_instrument(
                k, events, inst, cfg, tiers, tier, acc, pos, cost, last, orders, fills, rt, vol, counters, err
            )
            if err[ERR_CODE] != 0:
                counters[K_EVENTS] += k - start
                return k
        # the mark moves to the close; equity follows (inlined: a call here costs more than the work)
        mi = events[EV_INST, k]
        new = events[EV_CLOSE, k]
        old = last[mi]
        if old != new:
            mult = inst[mi, I_MULT]
            step = (new - old) * mult
            if n_acc == 1:  # the common case, without the loop's set-up per event
                ok = _mark(acc, pos, 0, mi, new, mult, step, err, k)
            else:
                ok = True
                for a in range(n_acc):
                    ok = ok and _mark(acc, pos, a, mi, new, mult, step, err, k)
            if not ok:
                counters[K_EVENTS] += k - start
                return k
            last[mi] = new
        if rt[RT_PERPS] > 0 and kind <= TRADE and inst[mi, I_KIND] == PERP:
            check_liquidation(k, events, inst, cfg, tiers, tier, acc, pos, cost, last, orders, fills, rt, vol, counters)
        # deliver fills and rejections to the strategy (its answers may be rejected in turn: loop)
        while rt[RT_DELIVERED] < rt[RT_NFILLS]:
            f = rt[RT_DELIVERED]
            rt[RT_DELIVERED] = f + 1
            m = on_fill(params, state, fills[f], acc, pos, out)
            if m != 0 and not add_intents_called(
                out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err
            ):
                counters[K_EVENTS] += k - start
                return k
        if rt[RT_NFILLS] >= fills.shape[0]:
            err[ERR_CODE] = FILLS_FULL
            counters[K_EVENTS] += k - start
            return k
        if record:
            if n_acc == 1:
                equity[k, 0] = acc[0, A_EQUITY]
            else:
                for a in range(n_acc):
                    equity[k, a] = acc[a, A_EQUITY]
        m = on_market(params, state, events, k, acc, pos, out)
        if m != 0:
            if not add_intents(out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err):
                counters[K_EVENTS] += k - start
                return k
            while rt[RT_DELIVERED] < rt[RT_NFILLS]:
                f = rt[RT_DELIVERED]
                rt[RT_DELIVERED] = f + 1
                m = on_fill(params, state, fills[f], acc, pos, out)
                if m != 0 and not add_intents_called(
                    out, m, k, ts, inst, cfg, orders, acc, pos, fills, log, rt, counters, err
                ):
                    counters[K_EVENTS] += k - start
                    return k
        if k & 7 == 0 and k + PREFETCH_AHEAD < n:
            # the matching fields, a line (8 events) at a time, PREFETCH_AHEAD events ahead: the loop reads them
            # only where orders are open, so without this each read is a cache miss
            for fld in (EV_T0, EV_OPEN, EV_HIGH, EV_LOW, EV_VOLUME):
                prefetch(events, fld, k + PREFETCH_AHEAD)
        k += 1
    counters[K_EVENTS] += n - start
    return n
