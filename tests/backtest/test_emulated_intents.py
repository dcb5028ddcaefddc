"""Emulated intents in the backtest (``backtest.emulation``), worked as the daemon works them live: a TWAP parent's
children over bars (``kernels.execution.split_twap``'s slices, one open at a time, the parent's tag on their fills),
a trailing stop exiting a position, a take-profit ladder's partial exits; a bad parent stops the run with a
reason; and a run with them leaves the same results whether the quiet loop or the full steps ran it."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.run import Account, BacktestError, Execution, run
from backtest.tape import BTCUSDT_SPOT
from kernels import execution as X
from kernels.codes import BUY, MARKET, SELL
from kernels.instruments import Instrument
from strategies import api
from strategies.api import F_EVENT, F_PRICE, F_QTY, F_SIDE, F_TAG
from tests.backtest.scripted import HOUR, SCRIPT, bars

SPOT = Instrument(BTCUSDT_SPOT)


def script(*rows):
    return {"rows": [list(r) for r in rows]}


def twap(k, qty, slices, hours, price="0", tag=7, side=BUY):
    flags = slices | (hours * 3600) << api.TWAP_SLICES_BITS
    return (k, 0, 0, side, api.TWAP, SPOT.price(price) if price != "0" else 0, SPOT.qty(qty), flags, tag)


def market(k, qty, side=BUY, tag=1):
    return (k, 0, 0, side, MARKET, 0, SPOT.qty(qty), 0, tag)


def exit_row(k, kind, value, qty=0):
    return (k, 0, 0, 0, kind, value, qty, 0, 0)


def closes(*prices, volume="100"):
    """Hourly bars opening at the close before (the first at its own close), high/low around them."""
    rows, before = [], prices[0]
    for c in prices:
        hi, lo = max(float(c), float(before)), min(float(c), float(before))
        rows.append((before, str(hi), str(lo), c, volume))
        before = c
    return bars(SPOT, rows)


def test_a_twap_parent_sends_its_slices_over_the_bars_one_at_a_time():
    tape = closes(*["100"] * 10)
    res = run(SCRIPT, script(twap(0, "0.4", 4, 4)), tape, [Account("a", "100000")])
    fills = res.trades
    t0 = int(tape.events[0, api.EV_TS])
    times, qtys = X.split_twap(SPOT.qty("0.4"), 4, t0, t0 + 4 * HOUR, SPOT.lot, SPOT.lot)
    # a slice each hour from the decision on (bar 0's close), each filled at the next bar's open
    assert list(fills[:, F_EVENT]) == [1, 2, 3, 4]
    assert list(fills[:, F_QTY]) == [int(q) for q in qtys] and sum(fills[:, F_QTY]) == SPOT.qty("0.4")
    assert set(fills[:, F_TAG]) == {7} and set(fills[:, F_SIDE]) == {BUY}
    [parent] = res.meta["emulation"]["parents"]
    assert (
        parent["status"] == "done"
        and parent["children"] == 4
        and parent["plan"] == list(zip(map(int, times), map(int, qtys), strict=True))
    )
    assert res.pos[0, 0] == SPOT.qty("0.4")
    assert res.meta["state"][1] == 4  # on_fill saw every child's fill


def test_a_limit_twap_whose_slices_do_not_fill_expires_with_the_rest_left():
    tape = closes(*["100"] * 8)
    res = run(SCRIPT, script(twap(0, "0.3", 3, 3, price="90")), tape, [Account("a", "100000")])
    assert len(res.trades) == 0  # IOC limits at 90 under a market at 100: nothing fills, each slice expires
    [parent] = res.meta["emulation"]["parents"]
    assert parent["status"] == "expired" and parent["filled"] == 0 and parent["children"] >= 1


def test_a_trailing_stop_exits_the_whole_position_after_the_retracement():
    # enter at bar 1's open (100); best close 108; 106 is 1.85% back, 105.8 is 2.04% back: exit at the next open
    tape = closes("100", "100", "102", "105", "108", "106", "105.8", "105", "104")
    rows = script(market(0, "0.5"), exit_row(0, api.TRAILING_STOP, 20_000))
    res = run(SCRIPT, rows, tape, [Account("a", "100000")])
    entry, out = res.trades
    assert entry[F_EVENT] == 1 and entry[F_TAG] == 1
    assert out[F_EVENT] == 7 and out[F_SIDE] == SELL and out[F_QTY] == SPOT.qty("0.5")
    assert out[F_TAG] == api.EXIT_TAG and SPOT.price_str(int(out[F_PRICE])) == "105.8"
    assert res.pos[0, 0] == 0
    assert res.meta["emulation"]["exits"] == [(6, 0, 0, "trailing_stop")]


def test_a_take_profit_ladder_exits_its_shares_of_the_opening_size_once_each():
    # entry 100; +1% at 101.2 exits half of 0.4, +3% at 103.5 the other half; the stop-loss never fires
    tape = closes("100", "100", "100.5", "101.2", "102", "103.5", "104", "99")
    rows = script(
        market(0, "0.4"),
        exit_row(0, api.TAKE_PROFIT, 10_000, 500_000),
        exit_row(0, api.TAKE_PROFIT, 30_000, 500_000),
        exit_row(0, api.STOP_LOSS, 50_000),
    )
    res = run(SCRIPT, rows, tape, [Account("a", "100000")])
    entry, first, second = res.trades
    assert [int(f[F_EVENT]) for f in res.trades] == [1, 4, 6]
    assert first[F_QTY] == second[F_QTY] == SPOT.qty("0.2") and set(res.trades[1:, F_TAG]) == {api.EXIT_TAG}
    assert set(res.trades[1:, F_SIDE]) == {SELL}
    assert res.pos[0, 0] == 0
    assert [e[3] for e in res.meta["emulation"]["exits"]] == ["take_profit_1", "take_profit_2"]


def test_a_stop_loss_and_max_hold_exit_all():
    tape = closes("100", "100", "99", "97.9", "97", "96")
    res = run(SCRIPT, script(market(0, "0.3"), exit_row(0, api.STOP_LOSS, 20_000)), tape, [Account("a", "100000")])
    assert [int(f[F_EVENT]) for f in res.trades] == [1, 4]  # 97.9 is 2.1% under the entry: out at the next open
    held = run(SCRIPT, script(market(0, "0.3"), exit_row(0, api.MAX_HOLD, 2 * 3600)), closes(*["100"] * 6),
               [Account("a", "100000")])  # fmt: skip
    # opened at bar 1 (its fill's time: the bar's close); held 2 h by bar 3's close: out at bar 4's open
    assert [int(f[F_EVENT]) for f in held.trades] == [1, 4] and held.pos[0, 0] == 0
    assert held.meta["emulation"]["exits"][0][3] == "max_hold"


def test_bad_emulated_intents_stop_the_run_with_a_reason():
    tape = closes(*["100"] * 4)
    with pytest.raises(BacktestError, match="slices > 0"):
        run(SCRIPT, script(twap(0, "0.4", 0, 4)), tape, [Account("a", "100000")])
    with pytest.raises(BacktestError, match="rise strictly"):
        levels = (exit_row(0, api.TAKE_PROFIT, 20_000, 100_000), exit_row(0, api.TAKE_PROFIT, 10_000, 100_000))
        run(SCRIPT, script(*levels), tape, [Account("a", "100000")])


def test_emulated_intents_give_the_same_run_through_the_quiet_loop_and_the_full_steps():
    tape = closes("100", "100", "102", "105", "108", "106", "105.8", "105", "104", "103", "101", "100")
    rows = script(twap(0, "0.4", 4, 4), exit_row(0, api.TRAILING_STOP, 20_000), market(8, "0.1", side=SELL, tag=3))
    quiet = run(SCRIPT, rows, tape, [Account("a", "100000")])
    full = run(SCRIPT, rows, tape, [Account("a", "100000")], execution=Execution(timer_ns=HOUR))
    assert np.array_equal(quiet.fills, full.fills) and np.array_equal(quiet.equity, full.equity)
    assert quiet.fingerprint() == full.fingerprint()
    assert api.EXIT_TAG in set(quiet.trades[:, F_TAG]) and 7 in set(quiet.trades[:, F_TAG])


def test_the_strategy_the_daemon_hosts_works_its_intents_the_same_way_here():
    """tests/stream/intent_strategy.py: live (tests/stream/test_emulation_intents.py) its TWAP is a parent of the
    daemon's emulation and its trailing stop a managed exit; here the same slices and the same exit."""
    from tests.stream import intent_strategy as S

    tape = closes("100", "100", "101", "103", "104", "101.9", "101", "100")
    params = {"qty_units": SPOT.qty("0.3"), "slices": 3, "duration_s": 2 * 3600, "trailing_ppm": 20_000}
    res = run(S.STRATEGY, params, tape, [Account("a", "100000")])
    [parent] = res.meta["emulation"]["parents"]
    assert [q for _, q in parent["plan"]] == [SPOT.qty("0.1")] * 3 and parent["status"] == "done"
    state = res.meta["state"]
    assert state[S.S_BOUGHT] == SPOT.qty("0.3") and state[S.S_EXITED] == SPOT.qty("0.3")
    assert res.meta["emulation"]["exits"] == [(5, 0, 0, "trailing_stop")]  # 101.9 is 2.02% back from 104
    assert res.pos[0, 0] == 0


def pov(k, qty, ppm, seconds, price="0", tag=8, side=BUY):
    flags = ppm | seconds << api.POV_PPM_BITS
    return (k, 0, 0, side, api.POV, SPOT.price(price) if price != "0" else 0, SPOT.qty(qty), flags, tag)


def test_a_pov_parent_takes_its_share_of_each_bars_volume_after_it_started():
    tape = closes(*["1000"] * 8, volume="0.2")
    res = run(SCRIPT, script(pov(0, "0.3", 500_000, 10 * 3600)), tape, [Account("a", "100000")])
    # half of each later bar's 0.2: 0.1 after bar 1, bar 2, bar 3, each filled at the next bar's open
    assert list(res.trades[:, F_EVENT]) == [2, 3, 4] and set(res.trades[:, F_QTY]) == {SPOT.qty("0.1")}
    assert set(res.trades[:, F_TAG]) == {8}
    [parent] = res.meta["emulation"]["parents"]
    assert parent["status"] == "done" and parent["children"] == 3
    # too little volume before its time runs out: what it could take, then expired
    thin = run(SCRIPT, script(pov(0, "0.3", 500_000, 3 * 3600)), tape, [Account("a", "100000")])
    [parent] = thin.meta["emulation"]["parents"]
    assert parent["status"] == "expired" and 0 < parent["filled"] < SPOT.qty("0.3")
