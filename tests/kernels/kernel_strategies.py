"""Hypothesis strategies shared by the kernel tests: random instruments, limits and account states.

States are built through the kernels themselves (deposits, marks and fills), so their cached sums
are consistent; the reference World is then read from the arrays and both evolve side by side.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from kernels import codes as C
from kernels.positions import apply_fill, transfer, update_mark
from kernels.state import (
    A_POS_MODE,
    A_TOKENS,
    A_TOKENS_NS,
    G_MAX_DAILY_LOSS,
    G_MAX_GROSS,
    G_TRADING_STATE,
    I_LOT,
    I_MARK,
    I_MAX_QTY,
    I_TICK,
    L_ORDER_BURST,
    TOKEN,
    UNLIMITED,
    KernelState,
)

PRICE_MAX = 2**24  # price units in states that take fills (notional sums stay far inside int64)
QTY_MAX = 2**16
MULTS = (1, 10, 100, 10_000)


@st.composite
def instrument_fields(draw):
    tick = draw(st.sampled_from((1, 1, 5, 10)))
    lot = draw(st.sampled_from((1, 1, 10)))
    min_qty = draw(st.sampled_from((0, lot, 5 * lot)))
    max_qty = draw(st.sampled_from((0, 1000 * lot, QTY_MAX)))
    return dict(
        kind=draw(st.sampled_from((C.SPOT, C.PERP))),
        status=draw(st.sampled_from((C.INSTRUMENT_TRADING,) * 9 + (C.INSTRUMENT_HALTED,))),
        mult=draw(st.sampled_from(MULTS)),
        tick=tick,
        lot=lot,
        min_qty=min_qty,
        max_qty=max_qty,
        min_price=draw(st.sampled_from((0, 0, tick * 10))),
        max_price=draw(st.sampled_from((0, 0, PRICE_MAX))),
        min_notional=draw(st.sampled_from((0, 0, 1000))),
        max_notional=draw(st.sampled_from((0, 0, 10**12))),
    )


def _limit(draw, low, high):
    return draw(st.one_of(st.just(UNLIMITED), st.integers(low, high)))


@st.composite
def account_limits(draw):
    return dict(
        max_order_notional=_limit(draw, 10**6, 10**14),
        max_position_notional=_limit(draw, 10**6, 10**14),
        max_gross_exposure=_limit(draw, 10**7, 10**15),
        max_leverage_ppm=_limit(draw, 500_000, 20_000_000),
        max_open_orders=_limit(draw, 0, 6),
        order_rate_milli=draw(st.integers(0, 100_000)),
        order_burst=_limit(draw, 0, 5),
        max_daily_loss=_limit(draw, 0, 10**12),
        max_drawdown_ppm=_limit(draw, 0, 500_000),
        price_band_ppm=_limit(draw, 0, 200_000),
        trading_state=draw(st.sampled_from((C.ACTIVE,) * 6 + (C.REDUCE_ONLY, C.HALTED))),
    )


def side_for(hedge: bool, draw) -> int:
    return draw(st.sampled_from((C.POS_LONG, C.POS_SHORT))) if hedge else C.POS_BOTH


@st.composite
def fill_args(draw, n_accounts, n_instruments, hedge_flags):
    a = draw(st.integers(0, n_accounts - 1))
    return (
        a,
        draw(st.integers(0, n_instruments - 1)),
        draw(st.sampled_from((C.BUY, C.SELL))),
        side_for(hedge_flags[a], draw),
        draw(st.integers(1, PRICE_MAX)),
        draw(st.integers(1, QTY_MAX)),
        draw(st.integers(-1000, 10**6)),  # fee (negative = rebate)
    )


@st.composite
def states(draw, max_accounts=5, max_instruments=4, n_accounts=None, with_positions=True):
    """A KernelState with random instruments, marks, limits, cash and positions."""
    n_acc = n_accounts or draw(st.integers(1, max_accounts))
    n_ins = draw(st.integers(1, max_instruments))
    ks = KernelState(n_acc, n_ins)
    for i in range(n_ins):
        ks.set_raw_instrument(i, **draw(instrument_fields()))
    hedge_flags = [draw(st.booleans()) for _ in range(n_acc)]
    for a in range(n_acc):
        ks.set_position_mode(a, hedge_flags[a])
        ks.set_exchange(a, draw(st.integers(0, 2)))
        transfer(*ks.blocks, a, draw(st.integers(0, 10**15)))
    if with_positions:
        for _ in range(draw(st.integers(0, 8))):
            args = draw(fill_args(n_acc, n_ins, hedge_flags))
            apply_fill(*ks.blocks, *args)
    for i in range(n_ins):
        update_mark(*ks.blocks, i, draw(st.sampled_from((0,)) | st.integers(1, PRICE_MAX)))
    for a in range(n_acc):
        ks.set_limits(a, **draw(account_limits()))
        if draw(st.booleans()):  # partly drained token bucket at some past time
            burst = int(ks.lim[L_ORDER_BURST, a])
            if burst != UNLIMITED:
                ks.acc[A_TOKENS, a] = draw(st.integers(0, burst * TOKEN))
                ks.acc[A_TOKENS_NS, a] = draw(st.integers(0, 10**9))
    ks.glob[G_MAX_GROSS] = _limit(draw, 10**7, 10**16)
    ks.glob[G_MAX_DAILY_LOSS] = _limit(draw, 0, 10**13)
    ks.glob[G_TRADING_STATE] = draw(st.sampled_from((C.ACTIVE,) * 8 + (C.REDUCE_ONLY, C.HALTED)))
    return ks


@st.composite
def orders_for(draw, ks: KernelState, extreme=False):
    """One order (tuple of the risk kernel's scalar arguments) for state ks, often near a filter edge."""
    n_acc, n_ins = ks.n_accounts, ks.n_instruments
    a = draw(st.integers(0, n_acc - 1) | st.sampled_from((-1, n_acc)))
    i = draw(st.integers(0, n_ins - 1) | st.sampled_from((-1, n_ins)))
    ia = min(max(a, 0), n_acc - 1)
    ii = min(max(i, 0), n_ins - 1)
    lot = int(ks.ins[I_LOT, ii])
    tick = int(ks.ins[I_TICK, ii])
    mark = int(ks.ins[I_MARK, ii])
    max_qty = int(ks.ins[I_MAX_QTY, ii]) or QTY_MAX
    qty = draw(
        st.one_of(
            st.integers(1, 200).map(lambda k: k * lot),
            st.sampled_from((0, -lot, lot, max_qty, max_qty + lot, lot + 1)),
            st.integers(1, 2**62) if extreme else st.integers(1, QTY_MAX),
        )
    )
    near_mark = max(mark, 1)
    price = draw(
        st.one_of(
            st.integers(-5, 5).map(lambda k: max(near_mark + k * tick, 0)),
            st.integers(0, 2 * near_mark).map(lambda p: p - p % tick),
            st.integers(1, 2**62) if extreme else st.integers(1, PRICE_MAX),
            st.just(0),
        )
    )
    hedge = bool(ks.acc[A_POS_MODE, ia])
    pos_side = side_for(hedge, draw) if draw(st.integers(0, 9)) else draw(st.integers(0, 3))
    return (
        a,
        i,
        draw(st.sampled_from((C.BUY, C.SELL)) | st.sampled_from((0, 2))),
        draw(st.integers(1, C.MAX_ORDER_TYPE) | st.just(0)),
        price,
        qty,
        int(draw(st.integers(0, 4)) == 0),
        pos_side,
        draw(st.integers(0, 2 * 10**9)),
    )


def snapshot(ks: KernelState) -> list[np.ndarray]:
    return [block.copy() for block in ks.blocks]


def same(before: list[np.ndarray], ks: KernelState) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(before, ks.blocks, strict=True))


def seeded_state(seed: int, n_accounts: int, n_instruments: int, n_fills: int = 0) -> KernelState:
    """A large random state from a numpy seed (hypothesis draws the seed; drawing hundreds of
    accounts field by field is slow). Same value ranges as ``states``."""
    rng = np.random.default_rng(seed)
    ks = KernelState(n_accounts, n_instruments)
    for i in range(n_instruments):
        lot = int(rng.choice((1, 10)))
        ks.set_raw_instrument(
            i,
            kind=int(rng.integers(0, 2)),
            mult=int(rng.choice(MULTS)),
            tick=int(rng.choice((1, 5))),
            lot=lot,
            min_qty=lot,
            max_qty=int(rng.choice((0, 1000 * lot))),
        )
    for a in range(n_accounts):
        ks.set_position_mode(a, bool(rng.integers(0, 2)))
        ks.set_exchange(a, int(rng.integers(0, 3)))
        transfer(*ks.blocks, a, int(rng.integers(0, 10**15)))
    for _ in range(n_fills):
        a = int(rng.integers(0, n_accounts))
        hedge = bool(ks.acc[A_POS_MODE, a])
        pos_side = int(rng.choice((C.POS_LONG, C.POS_SHORT))) if hedge else C.POS_BOTH
        apply_fill(
            *ks.blocks,
            a,
            int(rng.integers(0, n_instruments)),
            int(rng.choice((C.BUY, C.SELL))),
            pos_side,
            int(rng.integers(1, PRICE_MAX)),
            int(rng.integers(1, QTY_MAX)),
            int(rng.integers(0, 10**6)),
        )
    for i in range(n_instruments):
        update_mark(*ks.blocks, i, int(rng.integers(1, PRICE_MAX)))

    def limit(low, high):
        return UNLIMITED if rng.integers(0, 4) == 0 else int(rng.integers(low, high))

    for a in range(n_accounts):
        ks.set_limits(
            a,
            max_order_notional=limit(10**6, 10**14),
            max_position_notional=limit(10**6, 10**14),
            max_gross_exposure=limit(10**7, 10**15),
            max_leverage_ppm=limit(500_000, 20_000_000),
            max_open_orders=limit(0, 6),
            order_rate_milli=int(rng.integers(0, 100_000)),
            order_burst=limit(0, 5),
            max_daily_loss=limit(0, 10**12),
            max_drawdown_ppm=limit(0, 500_000),
            price_band_ppm=limit(0, 200_000),
            trading_state=int(rng.choice((C.ACTIVE,) * 6 + (C.REDUCE_ONLY, C.HALTED))),
        )
    ks.glob[G_MAX_GROSS] = limit(10**7, 10**16)
    return ks
