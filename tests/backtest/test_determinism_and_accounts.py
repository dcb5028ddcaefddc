"""The same run twice has the same fingerprint (pinned), and multi-account totals are the sums."""

from __future__ import annotations

import numpy as np

from backtest.portfolio import Sleeve, run_portfolio
from backtest.run import Account, Execution, run
from strategies.api import A_EQUITY
from strategies.market_making import STRATEGY as MM
from strategies.sma_cross import STRATEGY as SMA

# SMA 10/30 on the real hourly BTC history, 100,000 USDT, 0.1% fees, 2 bps slippage, 1 s latency.
# A change here means the engine's results changed: say why in the commit that updates it.
PINNED = "6e25551f957ab62088ecbcdb1f88b61ea999bf67a916d36ce911ee972f884d66"
EXECUTION = Execution(slippage_bps=2, latency_ns=1_000_000_000)


def test_the_same_run_twice_has_the_same_pinned_fingerprint(btc_hourly):
    a = run(SMA, {"fast_window": 10, "slow_window": 30}, btc_hourly, [Account("spot", "100000")],
            execution=EXECUTION, log_intents=True)  # fmt: skip
    b = run(SMA, {"fast_window": 10, "slow_window": 30}, btc_hourly, [Account("spot", "100000")],
            execution=EXECUTION, log_intents=True)  # fmt: skip
    assert a.fingerprint() == b.fingerprint() == PINNED
    assert np.array_equal(a.fills, b.fills) and np.array_equal(a.equity, b.equity)
    c = run(SMA, {"fast_window": 10, "slow_window": 31}, btc_hourly, [Account("spot", "100000")], execution=EXECUTION)
    assert c.fingerprint() != a.fingerprint()


def test_multi_account_totals_are_the_sums_of_the_accounts(btc_hourly):
    sleeves = [
        Sleeve("fast", SMA, {"fast_window": 5, "slow_window": 20}, (Account("sub_a", "40000"),)),
        Sleeve("slow", SMA, {"fast_window": 24, "slow_window": 96}, (Account("sub_b", "60000"),)),
        Sleeve("mm", MM, {"half_spread_bps": 20, "order_usdt": 2000}, (Account("sub_mm", "50000"),)),
    ]
    pf = run_portfolio(sleeves, btc_hourly)
    assert pf.accounts == ["fast/sub_a", "slow/sub_b", "mm/sub_mm"]
    eq = pf.equity
    assert eq.shape == (len(btc_hourly), 3)
    assert np.array_equal(pf.total, eq[:, 0] + eq[:, 1] + eq[:, 2])
    finals = [int(r.acc[0, A_EQUITY]) for r in pf.results]
    assert int(pf.total[-1]) == sum(finals)
    # each account is exactly its own solo run
    solo = run(SMA, {"fast_window": 5, "slow_window": 20}, btc_hourly, [Account("sub_a", "40000")], name="fast")
    assert solo.fingerprint() == pf.results[0].fingerprint()
    corr = pf.correlation()
    assert corr.shape == (3, 3) and np.allclose(np.diag(corr), 1.0)
    assert -1 <= corr[0, 1] <= 1 and corr[0, 1] > 0.2  # two trend followers on the same market move together
    assert pf.results[2].counters["fills"] > 100  # the market maker's quotes were hit
