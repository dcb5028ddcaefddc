"""A hosted strategy's emulated intents in the daemon, against the local exchange: its TWAP intent is a parent
order of the emulation (tagged: its children's fills reach on_fill with the parent's tag) and its exit rows the
rule of its position (the trailing stop's exits reach on_fill tagged EXIT_TAG) — what the backtest's
``backtest.emulation`` does with the same intents (tests/backtest/test_emulated_intents.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backtest.tape import BTCUSDT_SPOT
from kernels.instruments import Instrument
from oms.model.parents import ParentAlgo, ParentStatus
from strategies import registry
from tests.stream import intent_strategy as S
from tests.stream.conftest import place, unique, until
from tests.stream.emulation_kit import finished, three_views_agree


@pytest.fixture
def intents(monkeypatch):
    monkeypatch.setitem(registry.BUILTINS, "intents", S.STRATEGY)


async def test_a_strategys_twap_and_exit_intents_are_worked_by_the_emulation(bench, nc, intents):
    name, taker = unique("intents"), unique("taker")
    qty = Instrument(BTCUSDT_SPOT).qty("0.003")
    params = {"qty_units": qty, "slices": 3, "duration_s": 2, "trailing_ppm": 1, "pov_ppm": 250_000}
    strategies = {"intents_test": {"account": name, "kind": "intents", "exchange": "binance", "market": "spot",
                                   "symbols": ["BTC/USDT"], "params": params}}  # fmt: skip
    bench.write([name, taker], strategies=strategies)
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        [hosted] = d.strategies.hosted
        [r] = await d.router.execute([place(bench.account(taker), "0.002", None, intent="take")])  # a market trade
        assert r.ok, r
        engine = d.emulation.parents
        [pid, pov] = await until(lambda: list(d.strategies.parents) if len(d.strategies.parents) == 2 else None,
                                 timeout=60, what="the strategy's two parents")  # fmt: skip
        w = await until(lambda: engine.parents.get(pid), what="the parent in the emulation")
        p = await until(lambda: engine.parents.get(pov), what="the pov parent in the emulation")
        assert p.st.cmd.algo is ParentAlgo.POV and p.st.cmd.participation_pct == "25" and p.st.cmd.duration_s == 600
        assert p.rate_ppm == 250_000 and d.strategies.parents[pov][1] == S.POV_TAG
        assert w.st.cmd.algo is ParentAlgo.TWAP and w.st.cmd.strategy == "intents_test" and w.st.cmd.slices == 3
        assert [q for _, q in w.plan] == [qty // 3] * 3  # kernels.execution.split_twap, as in the backtest
        rule = d.emulation.exits.overrides[acct, "BTC/USDT", "intents_test"]
        assert rule.trailing_stop_pct == Decimal("0.0001") and rule.stop_loss_pct is None
        await finished(d, pid, status=ParentStatus.DONE, timeout=90)
        state = hosted.host.state
        await until(lambda: state[S.S_BOUGHT] == qty, what="the children's fills under the parent's tag")
        await until(lambda: state[S.S_EXITED] > 0, timeout=90, what="a trailing-stop exit's fill under EXIT_TAG")
        assert state[S.S_REJECTS] == 0 and state[S.S_OTHER] == 0
        assert not d.strategies.dropped
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()
