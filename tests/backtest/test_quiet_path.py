"""The engine's quiet inner loop (backtest.engine) gives exactly the results of its full steps.

A timer forces the full steps on every event (the quiet loop runs only without one); the SMA cross's ``on_timer``
does nothing, so both runs must agree bit for bit: fills, equity curve, final state, counters.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtest.run import Account, Execution, run
from strategies.sma_cross import STRATEGY as SMA

HOUR = 3_600_000_000_000


@pytest.mark.parametrize(
    "execution",
    [
        {},
        {"slippage_bps": 2, "latency_ns": 1_000_000_000},
        {"latency_ns": 2 * HOUR, "participation": "0.01"},  # orders stay open across quiet-looking bars
    ],
)
def test_the_quiet_loop_and_the_full_steps_give_the_same_run(btc_hourly, execution):
    params = {"fast_window": 10, "slow_window": 30}
    quiet = run(SMA, params, btc_hourly, [Account("a", "100000")], execution=Execution(**execution))
    full = run(SMA, params, btc_hourly, [Account("a", "100000")], execution=Execution(timer_ns=HOUR, **execution))
    assert len(quiet.trades) > 300
    assert np.array_equal(quiet.fills, full.fills)
    assert np.array_equal(quiet.equity, full.equity)
    assert quiet.fingerprint() == full.fingerprint()
