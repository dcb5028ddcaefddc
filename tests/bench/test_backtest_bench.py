"""Backtest engine against backtesting.py, vectorbt and nautilus_trader, side by side in one run (`make bench`).

nautilus_trader cannot share this environment: its newest release with Python 3.11 wheels (1.221) requires
pandas < 3 and vectorbt 1.2 requires pandas >= 3.0.3. So it lives in its own venv, ``.venv-nautilus``, which the
bench makes when missing (tests/bench/nautilus_venv.py, from tests/bench/nautilus-requirements.txt, through
pip and PyPI; ``make bench`` runs it first), and the same rule runs there as a subprocess
(tests/bench/nautilus_sma.py) on the bars this bench loads, written to a CSV file; it reports its fills, final
equity and the time of its engine run alone (wall and CPU) as JSON.

Every figure is printed the moment it is measured (through pytest's capture), each beside its baseline
from the same run. Times are CPU time of the measuring thread (``time.thread_time``) as well as wall
time: on a shared machine the wall clock of a 200 ms run includes other processes' turns, and short runs
(the bare loop's 10 ms) escape that far more often than long ones, which skews wall-clock ratios.

The rule everywhere: SMA 10/30 cross on closes, long-only, all cash, next-open fills, 0.1% fee,
100,000 USDT, in whole 0.00001 BTC lots (backtesting.py through FractionalBacktest, vectorbt through
size_granularity), on the real BTC-USD hourly history (datasets/market, 20,111 bars).
Printed: trades, final equity, wall time and ratios; asserted: the same trades (bar, side, price;
size within one lot) and the final equity to the cent against backtesting.py, vectorbt and nautilus_trader.

Speed, on a 2,011,100-bar tape built from the real path: the 20,111 real bars, then the same bars
time-reversed (open and close swapped), alternately, 100 copies, re-timed hourly, so prices stay the
real ones and every joint is continuous. There the rule spends a fixed 10,000 USDT per entry
(``order_usdt``) instead of all cash: all cash compounds about 3.3x per pair of copies, past int64 money
(92 billion USDT at 1e-8) within 40 copies, where the bare loop's exact sizing no longer ends (so the
old bench never printed). Compared with vectorbt's ``Portfolio.from_signals`` alone (signals
precomputed) and a bare Numba loop of the same rule (one function, no engine), both measured in this
run; the ratios to both are asserted (CPU time: at least 0.33 of the bare loop, 4x vectorbt). Also: trade-level
events per second (asserted >= 20 M/s CPU), and a 1,000-point parameter sweep over the full hourly
history on 2 threads (the engine releases the GIL) and through the backtest-sweep flow on a real
Prefect server, on prefect-dask's LocalCluster and on Prefect's process pool.
"""

from __future__ import annotations

import json
import os
import subprocess
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
BENCH = Path(__file__).resolve().parent


ORDER = 10_000  # USDT per entry on the 2M-bar tape


def best_of(fn, n=3):
    """(best wall seconds, best CPU seconds of this thread, the last result)."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(n):
        t, c = time.perf_counter(), time.thread_time()
        out = fn()
        cpu = min(cpu, time.thread_time() - c)
        wall = min(wall, time.perf_counter() - t)
    return wall, cpu, out


@pytest.fixture
def say(capsys):
    """Print a figure now, past pytest's capture, so a later failure or timeout cannot hide it."""

    def emit(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    return emit


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


def ours(t: Tape, order: int | None = None):
    extra = {"order_usdt": order} if order else {}
    return run(SMA, {"fast_window": FAST, "slow_window": SLOW, **extra}, t, [Account("a", CASH)])


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


def vectorbt_pf(df: pd.DataFrame, entries, exits, value: float | None = None):
    import vectorbt as vbt

    e = pd.Series(entries, index=df.index).shift(1, fill_value=False)
    x = pd.Series(exits, index=df.index).shift(1, fill_value=False)
    # prices per 0.00001 BTC lot and whole-lot sizes (as FractionalBacktest does): a float granularity of
    # 1e-5 BTC floors 38.07473 to 38.07472 on the exit and leaves a lot behind
    size = {"size": np.inf} if value is None else {"size": value, "size_type": "value"}
    return vbt.Portfolio.from_signals(df["Close"] * 1e-5, e, x, price=df["Open"] * 1e-5, fees=FEE, init_cash=CASH,
                                      size_granularity=1, freq="1h", **size)  # fmt: skip


def nautilus(t: Tape, folder: Path) -> dict:
    """The rule in nautilus_trader (tests/bench/nautilus_sma.py) in .venv-nautilus, made here when missing."""
    made = subprocess.run([sys.executable, str(BENCH / "nautilus_venv.py")], capture_output=True, text=True)
    assert made.returncode == 0, f"making .venv-nautilus failed:\n{made.stderr[-3000:]}"
    python = made.stdout.strip().splitlines()[-1]
    bars = folder / "bars.csv"
    np.savetxt(bars, t.events[:, [EV_T0, EV_OPEN, 5, 6, EV_CLOSE, 8]], fmt="%d", delimiter=",")
    args = [python, str(BENCH / "nautilus_sma.py"), str(bars), str(FAST), str(SLOW), str(CASH), str(FEE)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"nautilus_sma.py failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def mirrored(t: Tape, copies: int = 100) -> Tape:
    ev = t.events
    rev = ev[::-1].copy()
    rev[:, [EV_OPEN, EV_CLOSE]] = rev[:, [EV_CLOSE, EV_OPEN]]
    big = np.concatenate([ev if k % 2 == 0 else rev for k in range(copies)])
    big[:, EV_T0] = ev[0, EV_T0] + np.arange(len(big), dtype=np.int64) * HOUR
    big[:, EV_TS] = big[:, EV_T0] + HOUR
    return Tape.single(big, BTC)


@njit(cache=True, nogil=True)
def bare_loop(opn, close, fast, slow, cash, fee_ppm, mult, order):
    """The same rule in one function: exact sums, next-open fills, ``order`` money (or all cash if less)
    in whole lots, fee rounded up."""
    fs = 0
    ss = 0
    prev = 0
    held = 0
    pending = 0
    trades = 0
    for k in range(close.shape[0]):
        if pending != 0:
            p = opn[k] * mult
            # the engine's money bound (backtest.codes.MONEY_LIMIT): past it the sizing below would wrap and never
            # end, so stop and say where (trades = -1, the bar as the second value)
            if float(cash) + float(held) * float(p) >= 4.0e18:
                return -1, k
            if pending > 0:
                b = min(cash, order)
                q = b // (p + p * fee_ppm // 1_000_000 + 1)  # b * 1e6 would overflow int64
                while (q + 1) * p + ((q + 1) * p * fee_ppm + 999_999) // 1_000_000 <= b:
                    q += 1
                while q > 0 and q * p + (q * p * fee_ppm + 999_999) // 1_000_000 > b:
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


def load() -> str:
    return f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; python {sys.version.split()[0]})"


def rate(n: int, wall: float, cpu: float) -> str:
    return f"{n / cpu / 1e6:6.1f} M/s CPU ({cpu * 1e3:7.1f} ms; wall {n / wall / 1e6:5.1f} M/s)"


@pytest.mark.timeout(1800)
def test_same_trades_and_equity_as_backtesting_py_vectorbt_and_nautilus_trader(tape, say, tmp_path):
    ours(tape)  # compile (or load the cached loop)
    t_ours, c_ours, res = best_of(lambda: ours(tape))
    fills = res.trades
    eq_ours = float(res.final_equity())
    df = frame(tape)
    t_bt, c_bt, (bt_trades, eq_bt) = best_of(lambda: backtesting_py(df), 1)
    entries, exits = signals(tape.events[:, EV_CLOSE])
    vectorbt_pf(df, entries, exits)  # compile
    t_vbt, c_vbt, pf = best_of(lambda: vectorbt_pf(df, entries, exits))
    eq_vbt = float(pf.final_value())
    orders = pf.orders.records_readable
    nt = nautilus(tape, tmp_path)
    nt_fills = np.array(nt["fills"], dtype=np.int64).reshape(-1, 4)  # bar, side, price, lots
    eq_nt = float(nt["final_equity"])
    rows = [
        ("crypto-oms", len(fills), eq_ours, t_ours, c_ours),
        ("backtesting.py 0.6.6", 2 * len(bt_trades) - int(bt_trades["ExitBar"].isna().sum()), eq_bt, t_bt, c_bt),
        ("vectorbt 1.2.0 from_signals", len(orders), eq_vbt, t_vbt, c_vbt),
        (f"nautilus_trader {nt['version']}", len(nt_fills), eq_nt, nt["wall_s"], nt["cpu_s"]),
    ]
    say(f"\nSMA {FAST}/{SLOW} cross, real BTC-USD hourly ({len(tape)} bars): fills, final equity (USDT), time")
    say("  (nautilus_trader: its engine run alone, in .venv-nautilus; each bar given as an open tick and the bar)")
    for name, k, eq, sec, cpu in rows:
        say(f"  {name:<30} fills {k:>5}  equity {eq:>14,.2f}  {cpu * 1e3:>9.1f} ms CPU ({cpu / c_ours:>7,.1f}x ours)"
            f"  {sec * 1e3:>9.1f} ms wall ({sec / t_ours:>7,.1f}x)")  # fmt: skip
    say(f"  nautilus_trader: {nt['trades']} trades (round trips), {len(tape) / nt['cpu_s']:,.0f} bars/s CPU, "
        f"ours is {nt['cpu_s'] / c_ours:,.0f}x faster (CPU; wall {nt['wall_s'] / t_ours:,.0f}x; one run)")  # fmt: skip
    say("  " + load())

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
    assert len(orders) == len(fills)
    assert np.allclose(orders["Price"].to_numpy() * 1e5, fills[:, F_PRICE] / 100)
    assert np.all(np.abs(orders["Size"].to_numpy() - fills[:, F_QTY]) <= 1.0001)
    assert abs(eq_vbt - eq_ours) < 0.01, (eq_vbt, eq_ours)
    # nautilus_trader: every fill (bar, side, price exactly; size within one lot), equity to the cent
    assert nt["trades"] == len(buys)
    assert len(nt_fills) == len(fills)
    assert np.array_equal(nt_fills[:, :3], fills[:, [F_EVENT, F_SIDE, F_PRICE]])
    assert np.all(np.abs(nt_fills[:, 3] - fills[:, F_QTY]) <= 1)
    assert abs(eq_nt - eq_ours) < 0.01, (eq_nt, eq_ours)
    assert Decimal(str(eq_ours)) > 0


@pytest.mark.timeout(1800)
def test_speed_on_a_2m_bar_tape_beside_vectorbt_and_a_bare_numba_loop(tape, say):
    big = mirrored(tape)
    n = len(big)
    ours(big, ORDER)
    t_big, c_big, big_res = best_of(lambda: ours(big, ORDER))
    t_nq, c_nq, _ = best_of(lambda: run(SMA, {"fast_window": FAST, "slow_window": SLOW, "order_usdt": ORDER}, big,
                                        [Account("a", CASH)], record_equity=False))  # fmt: skip
    say(f"\n2M-bar mirrored tape ({n:,} bars), {ORDER:,} USDT per entry, {len(big_res.trades):,} fills:")
    say(f"  crypto-oms engine              {rate(n, t_big, c_big)}")
    say(f"  ... without the equity curve   {rate(n, t_nq, c_nq)} (the bare loop records none either)")
    o = big.events[:, EV_OPEN].copy()
    c = big.events[:, EV_CLOSE].copy()
    args = (o, c, FAST, SLOW, CASH * 10**8, 1000, 10, ORDER * 10**8)
    if bare_loop(*args)[0] < 0:
        raise OverflowError(f"the bare loop's money passed 2**62 units at bar {bare_loop(*args)[1]}")
    t_bare, c_bare, (bare_trades, bare_eq) = best_of(lambda: bare_loop(*args), 5)
    say(f"  bare Numba loop, same rule     {rate(n, t_bare, c_bare)} -> ours is {c_bare / c_big:.2f} of it "
        f"(CPU; wall {t_bare / t_big:.2f}; without the curve {c_bare / c_nq:.2f}; target >= 0.33)")  # fmt: skip
    dfb = frame(big)
    eb, xb = signals(big.events[:, EV_CLOSE])
    vectorbt_pf(dfb, eb, xb, ORDER)
    t_vbt, c_vbt, _ = best_of(lambda: vectorbt_pf(dfb, eb, xb, ORDER))
    say(f"  vectorbt from_signals alone    {rate(n, t_vbt, c_vbt)} -> ours is {c_vbt / c_big:.1f}x it "
        f"(CPU; wall {t_vbt / t_big:.1f}x; target >= 4)")  # fmt: skip
    say(f"  results fingerprint {big_res.fingerprint()[:16]} (with the curve; unchanged by speed work)")
    say("  " + load())
    assert bare_trades == len(big_res.trades) and bare_eq == int(big_res.acc[0, 1])
    # the targets, on CPU-time ratios from this run (the machine's load moves both sides alike)
    assert c_bare / c_big >= 0.33, f"ours is {c_bare / c_big:.2f} of the bare loop"
    assert c_vbt / c_big >= 4, f"ours is {c_vbt / c_big:.1f}x vectorbt's from_signals"


@pytest.mark.timeout(900)
def test_trade_level_events_per_second(tape, say):
    big = mirrored(tape)
    trades = big.events.copy()  # the same path as one trade per bar (price = close)
    trades[:, EV_KIND] = TRADE
    trades[:, EV_T0] = trades[:, EV_TS]
    trades[:, EV_OPEN] = trades[:, 5] = trades[:, 6] = trades[:, EV_CLOSE]
    ttape = Tape.single(trades, BTC)
    ours(ttape, ORDER)
    t, cpu, res = best_of(lambda: ours(ttape, ORDER))
    say(f"\ntrade-level events ({len(ttape):,} trades, {len(res.trades):,} fills): {rate(len(ttape), t, cpu)} "
        "(target >= 20 M/s on one core)")  # fmt: skip
    say("  " + load())
    assert len(res.trades) > 0
    assert len(ttape) / cpu >= 20e6, f"{len(ttape) / cpu / 1e6:.1f} M trade events/s"


def sweep_grid() -> list[dict]:
    pts = [{"fast_window": f, "slow_window": s} for f in range(2, 42) for s in range(f + 5, f + 130, 5)][:1000]
    assert len(pts) == 1000
    return pts


@pytest.mark.timeout(1800)
def test_a_1000_point_sweep_on_threads_and_through_prefect_on_dask(tape, say, prefect_server):
    grid = sweep_grid()

    def one(p):
        return run(SMA, p, tape, [Account("a", CASH)], record_equity=False).acc[0, 1]

    one(grid[0])
    t1, _, _ = best_of(lambda: [one(p) for p in grid[:100]], 1)
    say(f"\n1,000-point sweep over {len(tape):,} bars: one thread, 100 points: {t1:.2f} s wall "
        f"(-> {t1 * 10:.1f} s for 1,000)")  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        t_threads, _, finals = best_of(lambda: list(pool.map(one, grid)), 1)
    say(f"  2 threads (the engine releases the GIL): {t_threads:.2f} s wall (target < 10 s); "
        f"best final equity {max(finals) / 1e8:,.2f} USDT")  # fmt: skip

    from flows.backtest_sweep import backtest_sweep  # after the server fixture: Prefect reads its URL on import

    # what bounds the flow: every worker is a new Python that must import Prefect and the engine before its first
    # point (the flow's own process has them already); measured here, in the same run, for one such process
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flows.backtest_sweep"], cwd=ROOT, check=True, capture_output=True)
    say(f"  one worker's start alone (a new Python importing the sweep task's module): "
        f"{time.perf_counter() - t0:.2f} s wall")  # fmt: skip

    for runner in ("dask", "processes"):
        t0 = time.perf_counter()
        out = backtest_sweep(points=grid, runner=runner, workers=2, chunks=4, archive=str(ROOT / "data/none"),
                             datasets=str(ROOT / "datasets/market"))  # fmt: skip
        wall = time.perf_counter() - t0
        say(f"  Prefect flow on {runner:<9} (2 workers, 4 tasks): {out['seconds']:.2f} s in the flow (workers' start "
            f"included), {wall:.2f} s with the flow run's own start (target < 10 s)")  # fmt: skip
        assert sorted(r["final_usdt"] for r in out["points"]) == sorted(float(f) / 1e8 for f in finals)

    # the desk's path: a standing cluster, started (and preloaded: Prefect, the engine, the compiled loop) before
    # the sweep is asked for, and reused by the next flow run; its start is measured apart, not in the sweep
    from flows.backtest_sweep import standing_cluster

    t0 = time.perf_counter()
    with standing_cluster(2) as cluster:
        say(f"  standing cluster's start (2 preloaded workers, outside the sweeps below): "
            f"{time.perf_counter() - t0:.2f} s wall")  # fmt: skip
        for attempt in ("first", "second"):
            t0 = time.perf_counter()
            address = cluster.scheduler_address
            out = backtest_sweep(points=grid, runner="dask", workers=2, chunks=4, dask_address=address,
                                 archive=str(ROOT / "data/none"), datasets=str(ROOT / "datasets/market"))  # fmt: skip
            wall = time.perf_counter() - t0
            say(f"  Prefect flow on an already running Dask cluster ({attempt} run, 2 workers, 4 tasks): "
                f"{out['seconds']:.2f} s in the flow, {wall:.2f} s with the run's start (target < 10 s)")  # fmt: skip
            assert sorted(r["final_usdt"] for r in out["points"]) == sorted(float(f) / 1e8 for f in finals)
    say("  " + load())
