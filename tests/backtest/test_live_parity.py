"""Live parity: the strategy driven one event at a time through strategies.host emits the backtest's intents.

The host gets exactly what the daemon would give it: each market event, the fills of its orders as
they happen, and the account view (equity, positions, open orders) at that moment, here taken from the
backtest's own records. It must then write the very intents the engine logged, event for event.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtest.run import Account, run
from strategies.api import A_EQUITY, A_OPEN_ORDERS, F_ACCOUNT, F_EVENT, F_INST, F_QTY, F_SIDE
from strategies.base import Binding
from strategies.host import IntentError, StrategyHost
from strategies.market_making import STRATEGY as MM
from strategies.sma_cross import STRATEGY as SMA
from tests.backtest.scripted import SCRIPT


def drive(strategy, params, tape, result):
    host = StrategyHost(strategy, params, Binding((0,), ((0, tape.instruments[0]),)), 1, tape.instruments)
    fills_at: dict[int, list[np.ndarray]] = {}
    for f in result.fills:
        fills_at.setdefault(int(f[F_EVENT]), []).append(f)
    emitted = []
    for k in range(len(tape)):
        for f in fills_at.get(k, []):
            host.pos[int(f[F_ACCOUNT]), int(f[F_INST])] += int(f[F_SIDE]) * int(f[F_QTY])
            assert len(host.on_fill(f)) == 0
        host.acc[0, A_EQUITY] = result.equity[k, 0]
        host.acc[0, A_OPEN_ORDERS] = 0  # every market order has filled at the open of the bar after it
        intents = host.on_market(tape.events[k])
        emitted += [np.concatenate([[k], row]) for row in intents]
    return np.array(emitted, dtype=np.int64).reshape(-1, result.intents.shape[1])


def test_sma_cross_through_the_host_emits_the_backtests_intents(btc_hourly):
    params = {"fast_window": 10, "slow_window": 30}
    res = run(SMA, params, btc_hourly, [Account("a", "100000")], log_intents=True)
    assert len(res.intents) > 700
    live = drive(SMA, params, btc_hourly, res)
    assert np.array_equal(live, res.intents)


def test_market_making_quotes_match_too(btc_hourly):
    params = {"half_spread_bps": 20, "order_usdt": 2000}
    res = run(MM, params, btc_hourly, [Account("a", "50000")], log_intents=True)
    host = StrategyHost(MM, params, Binding((0,), ((0, btc_hourly.instruments[0]),)), 1, btc_hourly.instruments)
    pos = np.zeros(len(btc_hourly) + 1, dtype=np.int64)
    for f in res.trades:
        pos[int(f[F_EVENT]) :] += int(f[F_SIDE]) * int(f[F_QTY])
    live = []
    for k in range(len(btc_hourly)):
        host.pos[0, 0] = pos[k]
        live += [np.concatenate([[k], row]) for row in host.on_market(btc_hourly.events[k])]
    assert np.array_equal(np.array(live, dtype=np.int64), res.intents)


def test_the_host_rejects_an_invalid_intent_naming_the_strategy(btc_hourly):
    ins = btc_hourly.instruments
    host = StrategyHost(SCRIPT, {"rows": [[0, 0, 0, 3, 2, 0, 100, 0, 1]]}, Binding((0,), ((0, ins[0]),)), 1, ins,
                        name="trend")  # fmt: skip
    with pytest.raises(IntentError, match=r"strategy 'trend' wrote an invalid intent .*side is not BUY"):
        host.on_market(btc_hourly.events[0])
    with pytest.raises(ValueError, match="bound to account 5, but the run has 1 account"):
        StrategyHost(SMA, {}, Binding((5,), ((0, ins[0]),)), 1, ins)
