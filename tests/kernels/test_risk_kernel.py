"""Pre-trade risk kernel against the plain-Python reference, plus readable examples per rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_strategies import orders_for, same, seeded_state, snapshot, states

from kernels import codes as C
from kernels.positions import apply_fill, start_day, transfer, update_mark
from kernels.reference import risk as ref
from kernels.reference.model import World
from kernels.risk import RiskGate, check_order, check_orders, new_orders, release_order, would_accept
from kernels.state import (
    A_OPEN_ORDERS,
    A_PEAK_EQUITY,
    G_MAX_DAILY_LOSS,
    G_MAX_GROSS,
    G_TRADING_STATE,
    P_OPEN_BUY,
    P_OPEN_SELL,
    KernelState,
)

SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_orders(ks, world, orders):
    """Check each order with kernel and reference; compare codes, and state after every order."""
    for order in orders:
        before = snapshot(ks)
        got = check_order(*ks.blocks, *order)
        want = ref.check_order(world, *order)
        assert got == want, f"order {order}: kernel {C.reason_name(got)} != reference {C.reason_name(want)}"
        if got != C.OK:
            assert same(before, ks), f"rejected order {order} ({C.reason_name(got)}) changed the state"
        assert world.differences(ks) == []


@SLOW
@given(data=st.data())
def test_kernel_matches_reference_on_random_orders(data):
    ks = data.draw(states())
    world = World.from_state(ks)
    orders = data.draw(st.lists(orders_for(ks), min_size=1, max_size=25))
    run_orders(ks, world, orders)


@SLOW
@given(data=st.data())
def test_extreme_prices_and_quantities(data):
    ks = data.draw(states(with_positions=False))
    world = World.from_state(ks)
    orders = data.draw(st.lists(orders_for(ks, extreme=True), min_size=1, max_size=15))
    run_orders(ks, world, orders)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_many_accounts(data, seed):
    ks = seeded_state(seed, n_accounts=250, n_instruments=3, n_fills=300)
    world = World.from_state(ks)
    run_orders(ks, world, data.draw(st.lists(orders_for(ks), min_size=1, max_size=40)))


@SLOW
@given(data=st.data())
def test_dry_run_never_changes_state_and_agrees(data):
    ks = data.draw(states())
    order = data.draw(orders_for(ks))
    before = snapshot(ks)
    dry = would_accept(*ks.blocks, *order)
    assert same(before, ks)
    assert dry == check_order(*ks.blocks, *order)


@SLOW
@given(data=st.data())
def test_batch_equals_one_by_one(data):
    ks = data.draw(states())
    orders = data.draw(st.lists(orders_for(ks), min_size=1, max_size=30))
    twin = KernelState(ks.n_accounts, ks.n_instruments)
    for mine, theirs in zip(twin.blocks, ks.blocks, strict=True):
        mine[...] = theirs
    block = new_orders(len(orders))
    for k, order in enumerate(orders):
        block[:, k] = order
    out = np.empty(len(orders), dtype=np.int64)
    accepted = check_orders(*ks.blocks, block, out)
    singles = [check_order(*twin.blocks, *order) for order in orders]
    assert out.tolist() == singles
    assert accepted == singles.count(C.OK)
    assert same(snapshot(twin), ks)


@SLOW
@given(data=st.data())
def test_release_matches_reference_and_never_goes_negative(data):
    ks = data.draw(states())
    world = World.from_state(ks)
    for order in data.draw(st.lists(orders_for(ks), min_size=1, max_size=10)):
        if check_order(*ks.blocks, *order) == C.OK:
            ref.check_order(world, *order)
    for _ in range(data.draw(st.integers(1, 10))):
        a = data.draw(st.integers(0, ks.n_accounts - 1))
        i = data.draw(st.integers(0, ks.n_instruments - 1))
        side = data.draw(st.sampled_from((C.BUY, C.SELL)))
        pos_side = data.draw(st.sampled_from((C.POS_BOTH, C.POS_LONG, C.POS_SHORT)))
        qty = data.draw(st.integers(0, 500))
        done = data.draw(st.booleans())
        release_order(*ks.blocks, a, i, side, pos_side, qty, done)
        ref.release_order(world, a, i, side, pos_side, qty, done)
        assert world.differences(ks) == []
    assert (ks.pos[P_OPEN_BUY] >= 0).all() and (ks.pos[P_OPEN_SELL] >= 0).all()
    assert (ks.acc[A_OPEN_ORDERS] >= 0).all()


def test_every_reason_has_a_message_and_a_name():
    for code in range(max(C.REASONS) + 1):
        assert C.reason_message(code) and not C.reason_message(code).startswith("unknown risk")
        assert getattr(C, C.reason_name(code)) == code
    assert C.reason_message(999) == "unknown risk reason code 999"


# --- readable examples, one per rule ------------------------------------------------------------
# A BTC-like perpetual: price unit 0.1 USDT, quantity unit 0.001 BTC, so mult = 0.1 x 0.001 / 1e-8.
MARK = 100_000  # 10,000 USDT per BTC
BTC = 1000  # quantity units in one BTC
USDT = 10**8  # money units in one USDT


@pytest.fixture
def desk():
    """Two accounts (0 netting, 1 hedge mode) with 10,000 USDT each."""
    ks = KernelState(2, 1)
    ks.set_raw_instrument(
        0, kind=C.PERP, mult=10_000, tick=5, lot=10, min_qty=10, max_qty=100 * BTC, min_notional=200 * USDT
    )
    ks.set_position_mode(1, hedge=True)
    for a in range(2):
        transfer(*ks.blocks, a, 10_000 * USDT)
        ks.set_limits(
            a,
            max_order_notional=5_000 * USDT,
            max_position_notional=8_000 * USDT,
            max_gross_exposure=20_000 * USDT,
            max_leverage_ppm=3_000_000,
            max_open_orders=3,
            order_rate_milli=1000,
            order_burst=2,
            max_daily_loss=500 * USDT,
            max_drawdown_ppm=100_000,
            price_band_ppm=50_000,
        )
    update_mark(*ks.blocks, 0, MARK)
    return ks


def test_examples_of_filters(desk):
    check = RiskGate(desk.blocks).dry_run  # 0.1 BTC = 1,000 USDT
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, 0) == C.OK
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 0, 0, C.POS_BOTH, 0) == C.QTY_NOT_POSITIVE
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 105, 0, C.POS_BOTH, 0) == C.QTY_STEP
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 200 * BTC, 0, C.POS_BOTH, 0) == C.QTY_ABOVE_MAX
    assert check(0, 0, C.BUY, C.LIMIT, MARK + 1, 100, 0, C.POS_BOTH, 0) == C.PRICE_TICK
    assert check(0, 0, C.BUY, C.LIMIT, MARK * 106 // 100, 100, 0, C.POS_BOTH, 0) == C.PRICE_BAND
    assert check(0, 0, C.BUY, C.LIMIT, MARK * 105 // 100, 100, 0, C.POS_BOTH, 0) == C.OK  # band edge
    assert check(0, 0, C.BUY, C.MARKET, 0, 10, 0, C.POS_BOTH, 0) == C.NOTIONAL_BELOW_MIN  # 100 USDT
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 600, 0, C.POS_BOTH, 0) == C.MAX_ORDER_NOTIONAL
    assert check(1, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, 0) == C.BAD_POSITION_SIDE
    assert check(1, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_LONG, 0) == C.OK
    assert check(0, 0, C.BUY, C.LIMIT, MARK, 100, 1, C.POS_BOTH, 0) == C.REDUCE_ONLY_REJECTED


def test_examples_of_position_exposure_leverage(desk):
    b = desk.blocks
    # 5,000 USDT long already; another 4,000 would exceed the 8,000 position limit
    assert apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, MARK, 500, 0) == C.OK
    assert would_accept(*b, 0, 0, C.BUY, C.LIMIT, MARK, 400, 0, C.POS_BOTH, 0) == C.MAX_POSITION
    # selling reduces and is allowed; selling more than the position flips it, which is new risk
    assert would_accept(*b, 0, 0, C.SELL, C.MARKET, 0, 500, 1, C.POS_BOTH, 0) == C.OK
    assert would_accept(*b, 0, 0, C.SELL, C.MARKET, 0, 510, 1, C.POS_BOTH, 0) == C.REDUCE_ONLY_REJECTED
    # open orders count toward the position limit on their side
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 200, 0, C.POS_BOTH, 0) == C.OK
    assert would_accept(*b, 0, 0, C.BUY, C.LIMIT, MARK, 110, 0, C.POS_BOTH, 0) == C.MAX_POSITION
    # leverage: the hedge account holds 12,000 USDT long and 12,000 short: gross 24,000 on 10,000
    desk.set_limits(1, max_gross_exposure=10**6 * USDT, max_position_notional=10**6 * USDT, max_leverage_ppm=2_000_000)
    assert apply_fill(*b, 1, 0, C.BUY, C.POS_LONG, MARK, 1200, 0) == C.OK
    assert apply_fill(*b, 1, 0, C.SELL, C.POS_SHORT, MARK, 1200, 0) == C.OK
    assert would_accept(*b, 1, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_LONG, 0) == C.MAX_LEVERAGE
    assert would_accept(*b, 1, 0, C.SELL, C.LIMIT, MARK, 100, 0, C.POS_LONG, 0) == C.OK  # closes
    # all accounts together: 5,000 + 24,000 gross; 100 USDT more breaks a 29,050 global limit
    desk.glob[G_MAX_GROSS] = 29_050 * USDT
    assert would_accept(*b, 0, 0, C.BUY, C.LIMIT, MARK, 20, 0, C.POS_BOTH, 0) == C.MAX_GLOBAL_EXPOSURE


def test_examples_of_losses_and_kill_switches(desk):
    b = desk.blocks
    start_day(*b)
    assert apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, MARK, 500, 0) == C.OK
    update_mark(*b, 0, MARK * 99 // 100)  # -50 USDT today: within limits
    assert would_accept(*b, 0, 0, C.BUY, C.LIMIT, MARK * 99 // 100, 100, 0, C.POS_BOTH, 0) == C.OK
    update_mark(*b, 0, MARK * 88 // 100)  # -600 USDT today: over the 500 daily loss limit
    assert would_accept(*b, 0, 0, C.BUY, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.DAILY_LOSS
    assert would_accept(*b, 0, 0, C.SELL, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.OK
    desk.set_limits(0, max_daily_loss=10_000 * USDT)
    desk.acc[A_PEAK_EQUITY, 0] = 12_000 * USDT  # equity 9,400 is 21.7% below this peak (limit 10%)
    assert would_accept(*b, 0, 0, C.BUY, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.MAX_DRAWDOWN
    desk.glob[G_MAX_DAILY_LOSS] = 100 * USDT  # all accounts lost 600 today
    assert would_accept(*b, 0, 0, C.BUY, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.GLOBAL_DAILY_LOSS
    desk.glob[G_MAX_DAILY_LOSS] = 10_000 * USDT
    desk.glob[G_TRADING_STATE] = C.REDUCE_ONLY
    assert would_accept(*b, 1, 0, C.BUY, C.MARKET, 0, 100, 0, C.POS_LONG, 0) == C.GLOBAL_REDUCE_ONLY
    assert would_accept(*b, 0, 0, C.SELL, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.OK
    desk.glob[G_TRADING_STATE] = C.HALTED
    assert would_accept(*b, 0, 0, C.SELL, C.MARKET, 0, 100, 0, C.POS_BOTH, 0) == C.GLOBAL_HALTED
    desk.glob[G_TRADING_STATE] = C.ACTIVE
    desk.set_limits(1, trading_state=C.HALTED)
    assert would_accept(*b, 1, 0, C.BUY, C.MARKET, 0, 100, 0, C.POS_LONG, 0) == C.ACCOUNT_HALTED


def test_examples_of_order_rate_and_open_orders(desk):
    b = desk.blocks
    t0 = 10**18  # nanoseconds; the bucket (1 order/s, burst 2) starts full
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, t0) == C.OK
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, t0) == C.OK
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, t0) == C.RATE_LIMIT
    half_second = t0 + 500_000_000
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, half_second) == C.RATE_LIMIT
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, t0 + 10**9) == C.OK
    assert desk.acc[A_OPEN_ORDERS, 0] == 3
    later = t0 + 10**10
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, later) == C.MAX_OPEN_ORDERS
    release_order(*b, 0, 0, C.BUY, C.POS_BOTH, 100, True)
    assert check_order(*b, 0, 0, C.BUY, C.LIMIT, MARK, 100, 0, C.POS_BOTH, later) == C.OK
    assert desk.pos[P_OPEN_BUY, 0, 0, 0] == 300
