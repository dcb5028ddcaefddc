"""Positions and PnL kernels against the reference, conservation of value, and worked examples."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_strategies import PRICE_MAX, QTY_MAX, fill_args, same, snapshot, states

from kernels import codes as C
from kernels.positions import (
    S_FIELDS,
    SUMMARY_NAMES,
    account_summary,
    aggregate_summary,
    apply_fill,
    apply_fills,
    apply_funding,
    apply_funding_rate,
    fee_for,
    new_fills,
    recompute_caches,
    start_day,
    transfer,
    update_mark,
    update_marks,
)
from kernels.reference import positions as ref
from kernels.reference.model import World
from kernels.state import (
    A_CASH,
    A_COST_PERP,
    A_EXCHANGE,
    A_FEES,
    A_FUNDING,
    A_GROSS,
    A_PEAK_EQUITY,
    A_POS_MODE,
    A_REALISED,
    A_VALUE,
    I_KIND,
    P_COST,
    KernelState,
)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def operations(draw, ks):
    """A random operation on state ks, as (name, args)."""
    n_acc, n_ins = ks.n_accounts, ks.n_instruments
    hedge = [bool(ks.acc[A_POS_MODE, a]) for a in range(n_acc)]
    kind = draw(st.sampled_from(("fill",) * 8 + ("mark", "funding", "funding_rate", "transfer", "day")))
    if kind == "fill":
        args = list(draw(fill_args(n_acc, n_ins, hedge)))
        if draw(st.integers(0, 9)) == 0:  # occasionally an invalid fill
            k = draw(st.integers(0, 5))
            args[k] = draw(
                st.sampled_from({0: (-1, n_acc), 1: (-1, n_ins), 2: (0, 2), 3: (0, 1, 2, 3), 4: (0, -1), 5: (0, -5)}[k])
            )
        return kind, tuple(args)
    if kind == "mark":
        return kind, (draw(st.integers(0, n_ins - 1)), draw(st.integers(1, PRICE_MAX)))
    if kind == "funding":
        return kind, (
            draw(st.integers(0, n_acc - 1)),
            draw(st.integers(0, n_ins - 1)),
            draw(st.sampled_from((C.POS_BOTH, C.POS_LONG, C.POS_SHORT))),
            draw(st.integers(-(10**9), 10**9)),
        )
    if kind == "funding_rate":
        return kind, (draw(st.integers(0, n_ins - 1)), draw(st.integers(-300_000, 300_000)))
    if kind == "transfer":
        return kind, (draw(st.integers(0, n_acc - 1)), draw(st.integers(-(10**12), 10**12)))
    return kind, ()


KERNEL = {
    "fill": apply_fill,
    "mark": update_mark,
    "funding": apply_funding,
    "funding_rate": apply_funding_rate,
    "transfer": transfer,
    "day": start_day,
}
REFERENCE = {
    "fill": ref.apply_fill,
    "mark": ref.set_mark,
    "funding": ref.apply_funding,
    "funding_rate": ref.apply_funding_rate,
    "transfer": ref.transfer,
    "day": ref.start_day,
}


@SETTINGS
@given(data=st.data())
def test_random_operations_match_reference(data):
    ks = data.draw(states())
    world = World.from_state(ks)
    for _ in range(data.draw(st.integers(1, 30))):
        name, args = data.draw(operations(ks))
        before = snapshot(ks)
        got = KERNEL[name](*ks.blocks, *args)
        want = REFERENCE[name](world, *args)
        assert got == want, f"{name}{args}: kernel {got} != reference {want}"
        if name == "fill" and got != C.OK:
            assert same(before, ks), f"refused fill {args} changed the state"
        assert world.differences(ks) == [], f"after {name}{args}"


@SETTINGS
@given(data=st.data())
def test_cash_change_equals_realised_minus_fees_plus_funding(data):
    """Per account: change in cash == realised - fees + funding - change in spot cost basis."""
    ks = data.draw(states())
    spot = ks.ins[I_KIND] == C.SPOT

    def totals():
        spot_cost = ks.pos[P_COST][:, spot, :].sum(axis=(1, 2))
        return ks.acc[A_CASH].copy(), ks.acc[[A_REALISED, A_FEES, A_FUNDING]].copy(), spot_cost

    cash0, pnl0, spot_cost0 = totals()
    for _ in range(data.draw(st.integers(1, 30))):
        name, args = data.draw(operations(ks).filter(lambda op: op[0] != "transfer"))
        KERNEL[name](*ks.blocks, *args)
    cash1, pnl1, spot_cost1 = totals()
    realised, fees, funding = pnl1 - pnl0
    assert np.array_equal(cash1 - cash0, realised - fees + funding - (spot_cost1 - spot_cost0))


@SETTINGS
@given(data=st.data())
def test_round_trip_realises_exactly_the_proceeds(data):
    """Fills that take a position back to flat realise the sum of their signed proceeds, to the unit."""
    ks = KernelState(1, 1)
    hedge = data.draw(st.booleans())
    mult = data.draw(st.sampled_from((1, 7, 10, 10_000)))
    ks.set_raw_instrument(0, kind=data.draw(st.sampled_from((C.SPOT, C.PERP))), mult=mult)
    ks.set_position_mode(0, hedge)
    pos_side = data.draw(st.sampled_from((C.POS_LONG, C.POS_SHORT))) if hedge else C.POS_BOTH
    opening = C.SELL if pos_side == C.POS_SHORT else C.BUY
    fills = data.draw(
        st.lists(
            st.tuples(st.sampled_from((C.BUY, C.SELL)), st.integers(1, PRICE_MAX), st.integers(1, QTY_MAX)),
            min_size=1,
            max_size=20,
        )
    )
    proceeds = 0
    q = 0
    for side, price, qty in fills:
        if hedge and side != opening:
            qty = min(qty, abs(q))
            if qty == 0:
                continue
        assert apply_fill(*ks.blocks, 0, 0, side, pos_side, price, qty, 0) == C.OK
        q += side * qty
        proceeds -= side * qty * price * mult
    if q:  # close at a random price
        side = C.SELL if q > 0 else C.BUY
        price = data.draw(st.integers(1, PRICE_MAX))
        assert apply_fill(*ks.blocks, 0, 0, side, pos_side, price, abs(q), 0) == C.OK
        proceeds += abs(q) * price * mult if q > 0 else -abs(q) * price * mult
    position = ks.position(0, 0, pos_side)
    assert position["qty"] == 0 and position["cost"] == 0
    assert position["realised"] == proceeds


@SETTINGS
@given(data=st.data())
def test_incremental_caches_equal_a_full_recompute(data):
    ks = data.draw(states())
    for _ in range(data.draw(st.integers(0, 30))):
        name, args = data.draw(operations(ks))
        KERNEL[name](*ks.blocks, *args)
    acc, glob = ks.acc.copy(), ks.glob.copy()
    recompute_caches(*ks.blocks)
    assert np.array_equal(acc, ks.acc) and np.array_equal(glob, ks.glob)
    assert (ks.acc[A_PEAK_EQUITY] >= ks.acc[A_CASH] + ks.acc[A_VALUE] - ks.acc[A_COST_PERP]).all()


@SETTINGS
@given(data=st.data())
def test_batches_equal_singles(data):
    ks = data.draw(states())
    twin = KernelState(ks.n_accounts, ks.n_instruments)
    for mine, theirs in zip(twin.blocks, ks.blocks, strict=True):
        mine[...] = theirs
    hedge = [bool(ks.acc[A_POS_MODE, a]) for a in range(ks.n_accounts)]
    fills = data.draw(st.lists(fill_args(ks.n_accounts, ks.n_instruments, hedge), max_size=30))
    block = new_fills(len(fills))
    for k, f in enumerate(fills):
        block[:, k] = f
    out = np.empty(len(fills), dtype=np.int64)
    applied = apply_fills(*ks.blocks, block, out)
    singles = [apply_fill(*twin.blocks, *f) for f in fills]
    assert out.tolist() == singles and applied == singles.count(C.OK)
    instruments = np.array(data.draw(st.lists(st.integers(0, ks.n_instruments - 1), max_size=5)), np.int64)
    marks = np.array([data.draw(st.integers(1, PRICE_MAX)) for _ in instruments], np.int64)
    update_marks(*ks.blocks, instruments, marks)
    for i, m in zip(instruments, marks, strict=True):
        update_mark(*twin.blocks, int(i), int(m))
    assert same(snapshot(twin), ks)


@SETTINGS
@given(data=st.data())
def test_summary_and_aggregation_match_reference(data):
    ks = data.draw(states())
    world = World.from_state(ks)
    out = np.zeros((S_FIELDS, ks.n_accounts), dtype=np.int64)
    account_summary(*ks.blocks, out)
    for a in range(ks.n_accounts):
        assert dict(zip(SUMMARY_NAMES, out[:, a].tolist(), strict=True)) == ref.account_summary(world, a)
    agg = aggregate_summary(out, ks.acc, 3)
    for ex in range(3):
        mine = ks.acc[A_EXCHANGE] == ex
        assert np.array_equal(agg[ex], out[:, mine].sum(axis=1))
    assert np.array_equal(agg[3], out.sum(axis=1))


# --- worked examples -----------------------------------------------------------------------------
USDT = 10**8


def btc_perp_account(hedge=False, kind=C.PERP):
    ks = KernelState(1, 1)
    # price unit 0.1 USDT, quantity unit 0.001 BTC: 1e-4 USDT = 10,000 money units per unit x unit
    ks.set_raw_instrument(0, kind=kind, mult=10_000, tick=1, lot=1)
    ks.set_position_mode(0, hedge)
    transfer(*ks.blocks, 0, 10_000 * USDT)
    return ks


def test_average_entry_partial_close_and_flip():
    ks = btc_perp_account()
    b = ks.blocks
    apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, 100_000, 1000, fee_for(1000 * USDT * 10, 400))  # 1 BTC @10,000
    apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, 110_000, 1000, 0)  # 1 BTC @11,000: average 10,500
    p = ks.position(0, 0)
    assert p["qty"] == 2000 and p["cost"] == 21_000 * USDT and p["fees"] == 4 * USDT
    assert ks.average_entry(0, 0) == 105_000  # 10,500 USDT in 0.1 USDT units
    apply_fill(*b, 0, 0, C.SELL, C.POS_BOTH, 120_000, 500, 0)  # sell 0.5 BTC @12,000: +750 realised
    assert ks.position(0, 0)["realised"] == 750 * USDT
    apply_fill(*b, 0, 0, C.SELL, C.POS_BOTH, 100_000, 2500, 0)  # close 1.5 @10,000 (-750), 1 BTC short
    p = ks.position(0, 0)
    assert p["qty"] == -1000 and p["cost"] == -10_000 * USDT and p["realised"] == 0
    assert ks.average_entry(0, 0) == 100_000
    assert ks.acc[A_CASH, 0] == (10_000 - 4) * USDT  # realised 0, fee 4
    update_mark(*b, 0, 90_000)  # short 1 BTC from 10,000, mark 9,000: +1,000 unrealised
    assert ks.equity(0) == (10_000 - 4 + 1_000) * USDT


def test_spot_pays_for_the_asset_and_hedge_mode_keeps_two_sides():
    ks = btc_perp_account(kind=C.SPOT)
    apply_fill(*ks.blocks, 0, 0, C.BUY, C.POS_BOTH, 100_000, 500, 0)  # 0.5 BTC @10,000
    assert ks.acc[A_CASH, 0] == 5_000 * USDT and ks.equity(0) == 10_000 * USDT
    ks = btc_perp_account(hedge=True)
    b = ks.blocks
    assert apply_fill(*b, 0, 0, C.BUY, C.POS_LONG, 100_000, 1000, 0) == C.OK
    assert apply_fill(*b, 0, 0, C.SELL, C.POS_SHORT, 100_000, 1000, 0) == C.OK
    assert apply_fill(*b, 0, 0, C.SELL, C.POS_LONG, 100_000, 1001, 0) == C.HEDGE_OVERCLOSE
    assert apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, 100_000, 1, 0) == C.BAD_POSITION_SIDE
    assert ks.position(0, 0, C.POS_LONG)["qty"] == 1000 and ks.position(0, 0, C.POS_SHORT)["qty"] == -1000
    update_mark(*b, 0, 50_000)  # long loses what short gains: equity unchanged, gross halves
    assert ks.equity(0) == 10_000 * USDT and ks.acc[A_GROSS, 0] == 2 * 5_000 * USDT
    # funding 0.01% at mark: the long pays 0.5 USDT, the short receives 0.5 USDT
    assert apply_funding_rate(*b, 0, 10_000) == 0
    assert ks.position(0, 0, C.POS_LONG)["funding"] == -USDT // 2
    apply_funding(*b, 0, 0, C.POS_SHORT, 3 * USDT)
    assert ks.acc[A_CASH, 0] == 10_003 * USDT


def test_fee_rounds_up_and_handles_large_notional():
    assert fee_for(1_000_001, 1000) == 1001  # 0.1% of 1,000,001 = 1000.001 -> 1001
    assert fee_for(10**18, 1000) == 10**15
    assert fee_for(1_000_001, -100) == -100  # a rebate rounds toward zero
