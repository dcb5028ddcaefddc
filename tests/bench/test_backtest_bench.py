"""Backtest engine against backtesting.py and vectorbt, side by side in one run.

nautilus_trader is not compared: its newest release with Python 3.11 wheels (1.221) requires pandas < 3,
and vectorbt 1.2 requires pandas >= 3.0.3, so the two cannot be installed in one environment.

The rule everywhere: SMA 10/30 cross on closes, long-only, all cash, next-open fills, 0.1% fee,
100,000 USDT, in whole 0.00001 BTC lots (backtesting.py through FractionalBacktest, vectorbt through
size_granularity), on the real BTC-USD hourly history (datasets/market, 20,111 bars).
Printed: trades, final equity, wall time and ratios; asserted: the same trades (bar, side, price;
size within one lot) and the final equity to the cent against backtesting.py and vectorbt.

Speed, on a 2,011,100-bar tape built from the real path: the 20,111 real bars, then the same bars
time-reversed (open and close swapped), alternately, 100 copies, re-timed hourly, so prices stay the
real ones and every joint is continuous. Compared with vectorbt's ``Portfolio.from_signals`` alone
(signals precomputed) and a bare Numba loop of the same rule (one function, no engine), both
measured in this run. Also: trade-level events per second, and a 1,000-point parameter sweep over
the full hourly history on 2 threads (the engine releases the GIL).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numba import njit

from backtest.data import load_dataset_bars
from backtest.run import Account, run
from backtest.tape import BTCUSDT_SPOT, Tape
from kernels.instruments import Instrument
from strategies.api import EV_CLOSE, EV_KIND, EV_OPEN, EV_T0, EV_TS, F_EVENT, F_PRICE, F_QTY, F_SIDE, TRADE
from strategies.sma_cross import STRATEGY as SMA

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[2]
CASH = 100_000
FEE = 0.001
FAST, SLOW = 10, 30
BTC = Instrument(BTCUSDT_SPOT)
HOUR = 3_600_000_000_000


def best_of(fn, n=3):
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    return load_dataset_bars(
        "BTCUSDT", BTC, "1h", archive=tmp_path_factory.mktemp("a"), datasets=ROOT / "datasets/market"
    )


def signals(close_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact cross signals (the strategy's rule) from integer closes: entries/exits on the signal bar."""
    c = close_units.astype(np.int64)
    cs = np.concatenate([[0], np.cumsum(c)])
    n = len(c)
    k = np.arange(SLOW - 1, n)
    d = (cs[k + 1] - cs[k + 1 - FAST]) * SLOW - (cs[k + 1] - cs[k + 1 - SLOW]) * FAST
    sign = np.zeros(n, dtype=np.int64)
    sign[k] = np.sign(d)
    valid = np.zeros(n, dtype=bool)
    valid[SLOW:] = True
    prev = np.roll(sign, 1)
    return valid & (prev < 0) & (sign > 0), valid & (prev > 0) & (sign < 0)


def ours(t: Tape):
    return run(SMA, {"fast_window": FAST, "slow_window": SLOW}, t, [Account("a", CASH)])


def frame(t: Tape) -> pd.DataFrame:
    ev = t.events
    idx = pd.to_datetime(ev[:, EV_T0], unit="ns")
    cols = {n: ev[:, f] / 100 for n, f in (("Open", EV_OPEN), ("High", 5), ("Low", 6), ("Close", EV_CLOSE))}
    return pd.DataFrame({**cols, "Volume": ev[:, 8] / 1e5}, index=idx)


def backtesting_py(df: pd.DataFrame):
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    def sma(x, n):
        return pd.Series(x).rolling(n).mean().to_numpy()

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self):
            if crossover(self.fast, self.slow) and not self.position:
                self.buy()
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    bt = FractionalBacktest(df, Cross, cash=CASH, commission=FEE, trade_on_close=False, fractional_unit=1e-5)
    stats = bt.run()
    trades = stats["_trades"]
    return trades, float(stats["Equity Final [$]"])


def vectorbt_pf(df: pd.DataFrame, entries, exits):
    import vectorbt as vbt

    e = pd.Series(entries, index=df.index).shift(1, fill_value=False)
    x = pd.Series(exits, index=df.index).shift(1, fill_value=False)
    # prices per 0.00001 BTC lot and whole-lot sizes (as FractionalBacktest does): a float granularity of
    # 1e-5 BTC floors 38.07473 to 38.07472 on the exit and leaves a lot behind
    return vbt.Portfolio.from_signals(df["Close"] * 1e-5, e, x, price=df["Open"] * 1e-5, size=np.inf, fees=FEE,
                                      init_cash=CASH, size_granularity=1, freq="1h")  # fmt: skip


def mirrored(t: Tape, copies: int = 100) -> Tape:
    ev = t.events
    rev = ev[::-1].copy()
    rev[:, [EV_OPEN, EV_CLOSE]] = rev[:, [EV_CLOSE, EV_OPEN]]
    big = np.concatenate([ev if k % 2 == 0 else rev for k in range(copies)])
    big[:, EV_T0] = ev[0, EV_T0] + np.arange(len(big), dtype=np.int64) * HOUR
    big[:, EV_TS] = big[:, EV_T0] + HOUR
    return Tape.single(big, BTC)


@njit(cache=True, nogil=True)
def bare_loop(opn, close, fast, slow, cash, fee_ppm, mult):
    """The same rule in one function: exact sums, next-open fills, all cash in lots, fee rounded up."""
    fs = 0
    ss = 0
    prev = 0
    held = 0
    pending = 0
    trades = 0
    for k in range(close.shape[0]):
        if pending != 0:
            p = opn[k] * mult
            if pending > 0:
                q = cash // (p + p * fee_ppm // 1_000_000 + 1)  # cash * 1e6 would overflow int64
                while (q + 1) * p + ((q + 1) * p * fee_ppm + 999_999) // 1_000_000 <= cash:
                    q += 1
                while q > 0 and q * p + (q * p * fee_ppm + 999_999) // 1_000_000 > cash:
                    q -= 1
                cash -= q * p + (q * p * fee_ppm + 999_999) // 1_000_000
                held = q
            else:
                cash += held * p - (held * p * fee_ppm + 999_999) // 1_000_000
                held = 0
            trades += 1
            pending = 0
        c = close[k]
        fs += c
        ss += c
        if k >= fast:
            fs -= close[k - fast]
        if k >= slow:
            ss -= close[k - slow]
        if k + 1 >= slow:
            d = fs * slow - ss * fast
            sign = 1 if d > 0 else (-1 if d < 0 else 0)
            if k + 1 > slow:
                if prev < 0 and sign > 0 and held == 0:
                    pending = 1
                elif prev > 0 and sign < 0 and held > 0:
                    pending = -1
            prev = sign
    return trades, cash + held * close[-1] * mult


@pytest.mark.timeout(1800)  # several engines, a 2M-bar tape and a 1,000-point sweep
def test_same_trades_and_speed_side_by_side(tape):
    # --- correctness on the real history
    ours(tape)  # compile
    t_ours, res = best_of(lambda: ours(tape))
    fills = res.trades
    eq_ours = float(res.final_equity())
    df = frame(tape)
    t_bt, (bt_trades, eq_bt) = best_of(lambda: backtesting_py(df), 1)
    entries, exits = signals(tape.events[:, EV_CLOSE])
    vectorbt_pf(df, entries, exits)  # compile
    t_vbt, pf = best_of(lambda: vectorbt_pf(df, entries, exits))
    eq_vbt = float(pf.final_value())

    buys = fills[fills[:, F_SIDE] > 0]
    sells = fills[fills[:, F_SIDE] < 0]
    # backtesting.py: entry/exit bars and prices, sizes within one lot
    assert len(bt_trades) == len(buys)
    assert list(bt_trades["EntryBar"]) == list(buys[:, F_EVENT])
    assert list(bt_trades["ExitBar"].dropna().astype(int)) == list(sells[:, F_EVENT])
    assert np.allclose(bt_trades["EntryPrice"].to_numpy() * 1e5, buys[:, F_PRICE] / 100 * 1e5, atol=1e-6)
    assert np.all(np.abs(bt_trades["Size"].to_numpy() * 1e5 - buys[:, F_QTY]) <= 1.0001)  # reported in BTC
    assert abs(eq_bt - eq_ours) < 0.01, (eq_bt, eq_ours)
    # vectorbt: the same orders (sizes in lots)
    orders = pf.orders.records_readable
    assert len(orders) == len(fills)
    assert np.allclose(orders["Price"].to_numpy() * 1e5, fills[:, F_PRICE] / 100)
    assert np.all(np.abs(orders["Size"].to_numpy() - fills[:, F_QTY]) <= 1.0001)
    assert abs(eq_vbt - eq_ours) < 0.01, (eq_vbt, eq_ours)

    # --- speed on the 2M-bar tape
    big = mirrored(tape)
    n = len(big)
    ours(big)
    t_big, big_res = best_of(lambda: ours(big))
    dfb = frame(big)
    eb, xb = signals(big.events[:, EV_CLOSE])
    t_vbt_big, _ = best_of(lambda: vectorbt_pf(dfb, eb, xb))
    o = big.events[:, EV_OPEN].copy()
    c = big.events[:, EV_CLOSE].copy()
    bare_loop(o, c, FAST, SLOW, CASH * 10**8, 1000, 10)
    t_bare, (bare_trades, bare_eq) = best_of(lambda: bare_loop(o, c, FAST, SLOW, CASH * 10**8, 1000, 10))
    assert bare_trades == len(big_res.trades) and bare_eq == int(big_res.acc[0, 1])

    # --- trade-level events: the same path as one trade per bar (price = close)
    trades = big.events.copy()
    trades[:, EV_KIND] = TRADE
    trades[:, EV_T0] = trades[:, EV_TS]
    trades[:, EV_OPEN] = trades[:, 5] = trades[:, 6] = trades[:, EV_CLOSE]
    ttape = Tape.single(trades, BTC)
    t_trades, _ = best_of(lambda: ours(ttape))

    # --- 1,000-point sweep over the full hourly history, 2 threads
    grid = [(f, s) for f in range(2, 42) for s in range(f + 5, f + 130, 5)][:1000]
    assert len(grid) == 1000

    def one(fs):
        return run(SMA, {"fast_window": fs[0], "slow_window": fs[1]}, tape, [Account("a", CASH)],
                   record_equity=False).acc[0, 1]  # fmt: skip

    t_sweep, finals = best_of(lambda: list(ThreadPoolExecutor(2).map(one, grid)), 1)

    rows = [
        ("crypto-oms", len(fills), eq_ours, t_ours),
        ("backtesting.py 0.6.6", 2 * len(bt_trades) - int(bt_trades["ExitBar"].isna().sum()), eq_bt, t_bt),
        ("vectorbt 1.2.0 from_signals", len(orders), eq_vbt, t_vbt),
    ]
    print(f"\nSMA {FAST}/{SLOW} cross, real BTC-USD hourly ({len(tape)} bars), fills and final equity (USDT):")
    for name, k, eq, sec in rows:
        ratio = sec / t_ours if sec == sec else float("nan")
        print(f"  {name:<58} fills {k:>5}  equity {eq:>14,.2f}  {sec * 1e3:>9.1f} ms  ({ratio:,.0f}x ours)")
    rate = n / t_big
    print(f"2M-bar mirrored tape ({n:,} bars): ours {rate / 1e6:.1f} M bars/s ({t_big * 1e3:.0f} ms), "
          f"vectorbt from_signals {n / t_vbt_big / 1e6:.1f} M bars/s -> {t_vbt_big / t_big:.1f}x (target >= 4), "
          f"bare Numba loop {n / t_bare / 1e6:.1f} M bars/s -> {t_bare / t_big:.2f} of it "
          "(target >= 0.33)")  # fmt: skip
    print(f"trade-level events: {n / t_trades / 1e6:.1f} M events/s (target >= 20)")
    print(f"1,000-point sweep over {len(tape)} bars on 2 threads: {t_sweep:.2f} s (target < 10 s); "
          f"best final equity {max(finals) / 1e8:,.2f} USDT")  # fmt: skip
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; python {sys.version.split()[0]})")
    assert Decimal(str(eq_ours)) > 0
