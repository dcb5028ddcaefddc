"""Fees, slippage, latency, partial fills, queue models, funding, margin and liquidation, worked by hand.

Instruments: BTCUSDT spot (price unit 0.01, quantity unit 0.00001 BTC, mult 10) and the perpetual
(price unit 0.1, quantity unit 0.001 BTC, mult 10,000). Money is in 1e-8 USDT.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtest.codes import R_CASH, R_MARGIN, R_POST_ONLY
from backtest.run import Account, BacktestError, Execution, FeeTier, run
from backtest.tape import BTCUSDT_PERP, BTCUSDT_SPOT, Tape, Venue, funding_events
from kernels.codes import BUY, LIMIT, MARKET, SELL
from kernels.instruments import Instrument
from strategies.api import (
    A_CASH,
    A_EQUITY,
    A_FEES,
    A_FUNDING,
    A_LIQUIDATED,
    CLOSE,
    F_EVENT,
    F_FEE,
    F_FLAGS,
    F_PRICE,
    F_QTY,
    LIQUIDATION,
    MAKER,
    PARTIAL,
    POST_ONLY,
    QUOTE_QTY,
    REJECTED,
)
from tests.backtest.scripted import HOUR, SCRIPT, T0, bars, money

SPOT = Instrument(BTCUSDT_SPOT)
PERP = Instrument(BTCUSDT_PERP)
FLAT = [("100", "100", "100", "100", "10")]


def script(*rows):
    return {"rows": [list(r) for r in rows]}


def buy(k, qty, price=0, otype=MARKET, flags=0, tag=1, inst=SPOT, account=0, side=BUY):
    units = inst.price(price) if otype == LIMIT else 0
    return (k, account, 0, side, otype, units, inst.qty(qty) if not flags & (QUOTE_QTY | CLOSE) else qty, flags, tag)


def test_market_order_fills_at_the_next_open_and_pays_the_taker_fee():
    tape = bars(SPOT, [("100", "100", "100", "100", "10"), ("101", "103", "100.5", "102", "10")])
    res = run(SCRIPT, script(buy(0, "1")), tape, [Account("a", "10000")])
    (f,) = res.trades
    assert SPOT.price_str(int(f[F_PRICE])) == "101" and SPOT.qty_str(int(f[F_QTY])) == "1"
    assert f[F_FEE] == money("0.101") and f[F_EVENT] == 1 and not f[F_FLAGS] & MAKER
    assert res.acc[0, A_CASH] == money("10000") - money("101") - money("0.101")
    assert res.acc[0, A_EQUITY] == money("10000") - money("0.101") + money("1")  # marked at 102
    assert list(res.equity[:, 0]) == [money("10000"), money("10000.899")]


def test_fee_tiers_follow_the_previous_30_days_volume():
    day = 24 * HOUR
    tiers = (FeeTier(0, "0.001", "0.002"), FeeTier(1000, "0.0005", "0.001"))
    tape = bars(SPOT, [("100", "100", "100", "100", "100")] * 4, step=day // 2)
    # day 0: 10 BTC at 100 (1,000 USDT, taker 0.2%); day 1: 1 BTC at the 0.1% tier
    rows = script(buy(0, "10", tag=1), buy(2, "1", tag=2))
    res = run(SCRIPT, rows, tape, [Account("a", "10000")], execution=Execution(fee_tiers=tiers))
    fees = [int(f[F_FEE]) for f in res.trades]
    assert fees == [money("2"), money("0.1")]
    assert res.acc[0, A_FEES] == money("2.1")


def test_fixed_and_volume_slippage_move_taker_prices_against_the_taker():
    tape = bars(SPOT, FLAT * 3)
    ex = Execution(slippage_bps=10, impact_bps=100)  # 10 bps + 100 bps x (1 BTC / 10 BTC) = 20 bps
    res = run(SCRIPT, script(buy(0, "1", tag=1), buy(1, "1", side=SELL, tag=2)), tape, [Account("a", "1000")],
              execution=ex)  # fmt: skip
    assert [SPOT.price_str(int(f[F_PRICE])) for f in res.trades] == ["100.2", "99.8"]


def test_latency_delays_the_fill_to_the_first_bar_opening_after_arrival():
    tape = bars(SPOT, [("100", "100", "100", "100", "10"), ("101",) * 4 + ("10",), ("102",) * 4 + ("10",),
                       ("103",) * 4 + ("10",)])  # fmt: skip
    res = run(SCRIPT, script(buy(0, "1")), tape, [Account("a", "1000")], execution=Execution(latency_ns=HOUR * 3 // 2))
    (f,) = res.trades
    assert f[F_EVENT] == 3 and SPOT.price_str(int(f[F_PRICE])) == "103"  # decided at 1h, arrives 2.5h


def test_partial_fills_take_a_share_of_each_bars_volume():
    tape = bars(SPOT, [("100", "100", "100", "100", v) for v in ("10", "5", "5", "20", "20")])
    res = run(SCRIPT, script(buy(0, "2")), tape, [Account("a", "1000")], execution=Execution(participation="0.1"))
    assert [SPOT.qty_str(int(f[F_QTY])) for f in res.trades] == ["0.5", "0.5", "1"]
    assert [bool(f[F_FLAGS] & PARTIAL) for f in res.trades] == [True, True, False]
    assert res.pos[0, 0] == SPOT.qty("2")


@pytest.mark.parametrize(("queue", "fills_on"), [("conservative", 2), ("optimistic", 1)])
def test_resting_limits_fill_through_or_at_touch_as_maker(queue, fills_on):
    rows = [
        ("100", "100", "100", "100", "10"),
        ("100", "100.5", "99", "99.5", "10"),
        ("99.5", "99.6", "98.5", "99", "10"),
    ]
    tape = bars(SPOT, rows)
    ex = Execution(queue=queue, fee_tiers=(FeeTier(0, "0.0002", "0.001"),))
    res = run(SCRIPT, script(buy(0, "1", price="99", otype=LIMIT)), tape, [Account("a", "1000")], execution=ex)
    (f,) = res.trades
    assert f[F_EVENT] == fills_on and SPOT.price_str(int(f[F_PRICE])) == "99" and f[F_FLAGS] & MAKER
    assert f[F_FEE] == money("0.0198")


def test_marketable_limits_take_at_the_open_and_post_only_is_rejected():
    tape = bars(SPOT, [("100", "100", "100", "100", "10"), ("98", "99", "97", "98", "10")])
    res = run(SCRIPT, script(buy(0, "1", price="99", otype=LIMIT, tag=1), buy(0, "1", price="99", otype=LIMIT,
              flags=POST_ONLY, tag=2)), tape, [Account("a", "1000")])  # fmt: skip
    taken, rejected = res.fills
    assert SPOT.price_str(int(taken[F_PRICE])) == "98" and not taken[F_FLAGS] & MAKER
    assert rejected[F_FLAGS] & REJECTED and rejected[F_FEE] == R_POST_ONLY
    assert res.meta["state"][1] == 2  # on_fill saw the fill and the rejection


def test_spot_needs_the_cash_and_quote_budgets_size_at_the_fill_price():
    tape = bars(SPOT, [("100", "100", "100", "100", "10"), ("125", "125", "125", "125", "10")])
    res = run(SCRIPT, script(buy(0, "10", tag=1), buy(0, money("500"), flags=QUOTE_QTY, tag=2)), tape,
              [Account("a", "1000")])  # fmt: skip
    rejected, bought = res.fills[0], res.fills[1]
    assert rejected[F_FLAGS] & REJECTED and rejected[F_FEE] == R_CASH  # 10 x 125 > 1,000
    assert SPOT.qty_str(int(bought[F_QTY])) == "3.996"  # 3.996 x 125 x 1.001 = 499.9995 <= 500


def perp_tape(rows, leverage=10):
    return bars(PERP, rows, venue=Venue(leverage=leverage, maintenance_margin="0.004", liquidation_fee="0.0125"))


def test_funding_is_paid_by_longs_at_a_positive_rate():
    base = perp_tape([("100", "100", "100", "100", "10")] * 3)
    # 0.01% at 02:30, while the position bought at bar 1's open (01:00) is held
    fund = funding_events(0, [T0 + 5 * HOUR // 2], np.array([PERP.price("100")]), np.array([10_000]))
    events = np.concatenate([base.events, fund])
    tape = Tape(events[np.argsort(events[:, 0], kind="stable")], base.instruments, base.venues)
    res = run(SCRIPT, script(buy(0, "1", inst=PERP)), tape, [Account("a", "1000")],
              execution=Execution(fee_tiers=(FeeTier(0, "0", "0"),)))  # fmt: skip
    assert res.counters["funding_events"] == 1
    assert res.acc[0, A_FUNDING] == -money("0.01")  # 1 BTC x 100 x 0.0001
    assert res.acc[0, A_CASH] == money("1000") - money("0.01")


def test_leverage_bounds_the_position_and_liquidation_happens_at_the_adverse_extreme():
    rows = [("100", "100", "100", "100", "100"), ("100", "100", "100", "100", "100"),
            ("100", "100", "90", "95", "100"), ("95", "95", "89", "92", "100"),
            ("92", "92", "92", "92", "100")]  # fmt: skip
    tape = perp_tape(rows)
    res = run(SCRIPT, script(buy(0, "11", inst=PERP, tag=1), buy(0, "9", inst=PERP, tag=2)), tape,
              [Account("a", "100")])  # fmt: skip
    rejected = res.fills[0]
    assert rejected[F_FLAGS] & REJECTED and rejected[F_FEE] == R_MARGIN  # 1,100 notional / 10 > 100
    opened, liquidated = res.trades
    assert opened[F_QTY] == PERP.qty("9") and opened[F_FEE] == money("0.9")
    # at 90 (bar 2): equity 99.1 - 90 = 9.1 >= maintenance 3.24; at 89 (bar 3): 0.1 < 3.204: liquidated there
    assert liquidated[F_EVENT] == 3 and liquidated[F_FLAGS] & LIQUIDATION
    assert PERP.price_str(int(liquidated[F_PRICE])) == "89" and liquidated[F_FEE] == money("10.0125")
    assert res.acc[0, A_LIQUIDATED] == 1 and res.pos[0, 0] == 0
    assert res.acc[0, A_CASH] == money("100") - money("0.9") - money("99") - money("10.0125")


def test_an_invalid_intent_stops_the_run_naming_the_strategy_and_event():
    tape = bars(SPOT, FLAT * 3)
    with pytest.raises(BacktestError, match=r"strategy 'my_algo' wrote an invalid intent at event 1 .*side is not"):
        run(SCRIPT, script((1, 0, 0, 3, MARKET, 0, 100, 0, 1)), tape, [Account("a", "100")], name="my_algo")
    with pytest.raises(BacktestError, match="account index out of range"):
        run(SCRIPT, script((0, 5, 0, 1, MARKET, 0, 100, 0, 1)), tape, [Account("a", "100")])
    with pytest.raises(BacktestError, match="quantity is not a positive"):
        run(SCRIPT, script((0, 0, 0, 1, MARKET, 0, 0, 0, 1)), tape, [Account("a", "100")])
