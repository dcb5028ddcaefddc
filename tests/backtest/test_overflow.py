"""Money past int64 stops the run with an error naming the event, its time and the quantity: never a wrong result.

The engine keeps every money amount below ``MONEY_LIMIT`` (2**62 units, 46 billion USDT at 1e-8). The property
test drives one market buy and a price path of any size through the engine and through the same arithmetic in
Python's unbounded ints: where every amount stays clear of the bound, the engine's fills and equity are exact;
where one passes it, the engine stops at that very event and names that quantity.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backtest.codes import MONEY_LIMIT
from backtest.run import Account, BacktestError, BacktestOverflow, run
from backtest.tape import BTCUSDT_SPOT, Tape
from kernels.codes import BUY, MARKET
from kernels.instruments import Instrument
from strategies.api import EV_CLOSE, EV_OPEN, EV_T0, EV_TS, F_PRICE, F_QTY
from strategies.sma_cross import STRATEGY as SMA
from tests.backtest.scripted import SCRIPT, bars

SPOT = Instrument(BTCUSDT_SPOT)  # price unit 0.01 USDT, quantity unit 0.00001 BTC, mult 10 money units
HOUR = 3_600_000_000_000
FEE_PPM = 1000  # the default 0.1% taker fee
MARGIN = 1e-9  # float guards: amounts this close to the bound may go either way


def _price(units: int) -> str:
    return str(Decimal(units) / 100)


def reference(cash: int, qty: int, prices: list[int]) -> tuple[str, int, int]:
    """What the engine must do, in Python ints: ("ok", final equity, filled qty) or ("overflow", event, what).

    Event 0 closes at prices[0] and sends a market buy of ``qty`` units; event k >= 1 opens and closes at
    prices[k], so the buy fills at prices[1]. ``what`` is 1 position value, 2 fill notional, 4 equity.
    """
    mult = SPOT.mult
    p1 = prices[1]
    # the matcher bounds the notional and the position after it at the fill price and at the last mark
    if max(p1, prices[0]) * qty * mult >= MONEY_LIMIT * (1 - MARGIN):
        assume(max(p1, prices[0]) * qty * mult >= MONEY_LIMIT * (1 + MARGIN))
        return ("overflow", 1, 2)
    notional = p1 * qty * mult
    fee = -(-notional * FEE_PPM // 1_000_000)
    held = 0
    if cash >= notional + fee:
        cash -= notional + fee
        held = qty
    equity = cash + held * prices[0] * mult
    for k in range(1, len(prices)):
        if held:
            value = held * prices[k] * mult
            if value >= MONEY_LIMIT * (1 - MARGIN):
                assume(value >= MONEY_LIMIT * (1 + MARGIN))
                return ("overflow", k, 1)
            equity = cash + value
            if abs(equity) >= MONEY_LIMIT:
                return ("overflow", k, 4)
    return ("ok", equity, held)


@settings(max_examples=300, deadline=None)
@given(
    cash_usdt=st.integers(1, 40_000_000_000),
    qty=st.integers(1, 10**13),
    prices=st.lists(st.integers(1, 10**15), min_size=2, max_size=12),
)
def test_amounts_near_int64_are_exact_or_stop_at_the_event_that_passes_the_bound(cash_usdt, qty, prices):
    cash = cash_usdt * 10**8
    rows = [(_price(p), _price(p), _price(p), _price(p), "1") for p in prices]
    script = {"rows": [[0, 0, 0, BUY, MARKET, 0, qty, 0, 1]]}
    expected = reference(cash, qty, prices)
    tape = bars(SPOT, rows)
    if expected[0] == "ok":
        res = run(SCRIPT, script, tape, [Account("a", cash_usdt)])
        assert int(res.acc[0, 1]) == expected[1]
        assert int(res.pos[0, 0]) == expected[2]
        if expected[2]:
            assert [(int(f[F_PRICE]), int(f[F_QTY])) for f in res.trades] == [(prices[1], qty)]
        return
    _, k, what = expected
    name = {1: "position value", 2: "fill notional", 4: "equity"}[what]
    with pytest.raises(BacktestOverflow, match=rf"int64 overflow at event {k} \(.* UTC, event {k}\): the {name} of "
                       r"account 'a' would pass 4,611,686,018,427,387,904 money units"):  # fmt: skip
        run(SCRIPT, script, tape, [Account("a", cash_usdt)])


def mirrored(t: Tape, copies: int) -> Tape:
    """The real path forwards then time-reversed, ``copies`` times, re-timed hourly (the bench's long tape)."""
    ev = t.events
    rev = ev[::-1].copy()
    rev[:, [EV_OPEN, EV_CLOSE]] = rev[:, [EV_CLOSE, EV_OPEN]]
    big = np.concatenate([ev if c % 2 == 0 else rev for c in range(copies)])
    big[:, EV_T0] = ev[0, EV_T0] + np.arange(len(big), dtype=np.int64) * HOUR
    big[:, EV_TS] = big[:, EV_T0] + HOUR
    return Tape.single(big, SPOT)


def test_all_cash_compounding_on_a_long_tape_stops_with_the_event_and_the_quantity(btc_hourly):
    """The case that once gave wrong figures silently: all cash, compounding about 3.3x per pair of copies."""
    tape = mirrored(btc_hourly, 60)
    params = {"fast_window": 10, "slow_window": 30}
    with pytest.raises(BacktestOverflow) as caught:
        run(SMA, params, tape, [Account("a", "100000")], record_equity=False)
    msg = str(caught.value)
    assert "strategy 'sma_cross': int64 overflow at event " in msg and "of account 'a' would pass" in msg
    k = int(msg.split("overflow at event ")[1].split(" ")[0])
    assert k > 10 * len(btc_hourly)  # far into the tape: the money passes 46 billion USDT only there
    print(msg)
    # up to the event before, the run is whole and its money is just below the bound
    before = run(SMA, params, Tape.single(tape.events[:k], SPOT), [Account("a", "100000")], record_equity=False)
    held = int(before.pos[0, 0])
    nearest = max(int(before.acc[0, 0]), int(before.acc[0, 1]), held * int(tape.events[k, EV_CLOSE]) * SPOT.mult)
    assert nearest > MONEY_LIMIT // 4 and int(before.acc[0, 1]) < MONEY_LIMIT


def test_a_starting_cash_past_the_bound_is_refused():
    tape = bars(SPOT, [("1", "1", "1", "1", "1")])
    with pytest.raises(BacktestError, match="starting cash must be below 46,116,860,184.27387904 USDT"):
        run(SCRIPT, {"rows": []}, tape, [Account("a", 50_000_000_000)])
