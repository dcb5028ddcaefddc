"""Live bars (stream.bars): OHLC of the observed prices in price units, volume of the trades, empty bars skipped."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from oms.model import Instrument, InstrumentSpec
from strategies import api
from stream.bars import NS, BarClock


def _ins() -> Instrument:
    return Instrument(InstrumentSpec(symbol="BTC/USDT", tick_size="0.01", step_size="0.00001", venue_symbol="BTCUSDT"))


def test_a_bar_is_the_ohlc_of_mids_and_trades_and_an_empty_one_is_not_emitted():
    got: list[np.ndarray] = []
    clock = BarClock(5, {3}, got.append)
    ins = _ins()
    clock.observe(3, ins, Decimal("100.005"))  # a mid between ticks floors onto the price units
    clock.observe(3, ins, Decimal("101.00"), Decimal("0.002"))
    clock.observe(3, ins, Decimal("99.50"))
    clock.observe(7, ins, Decimal("5"))  # not an instrument of this clock
    clock.observe(3, ins, Decimal("100.20"), Decimal("0.001"))
    assert clock.close(10 * NS) == 1
    [ev] = got
    assert ev[api.EV_KIND] == api.BAR and ev[api.EV_INST] == 3
    assert (ev[api.EV_TS], ev[api.EV_T0]) == (10 * NS, 5 * NS)
    assert [int(ev[f]) for f in (api.EV_OPEN, api.EV_HIGH, api.EV_LOW, api.EV_CLOSE)] == [10000, 10100, 9950, 10020]
    assert ev[api.EV_VOLUME] == 300  # 0.003 BTC in 0.00001 units
    assert clock.close(15 * NS) == 0 and clock.emitted == 1


def test_a_failing_listener_does_not_stop_the_clock():
    def boom(ev):
        raise RuntimeError("strategy bug")

    clock = BarClock(1, {0}, boom)
    clock.observe(0, _ins(), Decimal("10"))
    assert clock.close(NS) == 1
