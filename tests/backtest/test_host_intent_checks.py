"""The host's compiled intent check (``strategies.host.first_invalid``) refuses exactly the rows ``check_intent``
refuses, and the host still names the first bad row with ``check_intent``'s reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.codes import LIMIT, MARKET
from strategies.api import CANCEL, CANCEL_ALL, CLOSE, IN_FIELDS, IOC, POST_ONLY, QUOTE_QTY, REDUCE_ONLY
from strategies.base import Binding
from strategies.host import IntentError, StrategyHost, check_intent, first_invalid
from tests.backtest.scripted import SCRIPT

LOTS = [10, 1, 1000]
TICKS = [5, 100, 1]
N_ACCOUNTS = 2
# values around each rule's edges: indices in and out of range, sides, types, multiples and not, flag bits
FIELD = [
    st.sampled_from([-1, 0, 1, 2, 3]),  # account
    st.sampled_from([-1, 0, 1, 2, 3]),  # instrument
    st.sampled_from([-2, -1, 0, 1, 2]),  # side
    st.sampled_from([LIMIT, MARKET, CANCEL, CANCEL_ALL, 7, -1]),  # type
    st.sampled_from([-100, 0, 1, 5, 7, 100, 500, 2**62]),  # price
    st.sampled_from([-10, 0, 1, 10, 15, 1000, 3000, 2**61]),  # qty
    st.sampled_from([0, REDUCE_ONLY, POST_ONLY, IOC, QUOTE_QTY, CLOSE, QUOTE_QTY | CLOSE, POST_ONLY | IOC, 32, -1]),
    st.sampled_from([-5, -1, 0, 1, 99]),  # tag
]
ROW = st.tuples(*FIELD)


@settings(max_examples=3000, deadline=None)
@given(st.lists(ROW, min_size=0, max_size=6))
def test_first_invalid_is_check_intent(rows):
    out = np.array(rows, dtype=np.int64).reshape(-1, IN_FIELDS)
    reasons = [check_intent(row, N_ACCOUNTS, LOTS, TICKS) for row in out]
    want = next((r for r, why in enumerate(reasons) if why), -1)
    got = first_invalid(out, len(out), N_ACCOUNTS, np.array(LOTS, dtype=np.int64), np.array(TICKS, dtype=np.int64))
    assert got == want, (rows, reasons)


def test_the_host_names_the_first_bad_row_after_good_ones(btc_hourly):
    ins = btc_hourly.instruments
    lot, tick = int(ins[0].lot), int(ins[0].tick)
    good = [0, 0, 0, 1, LIMIT, 3 * tick, 2 * lot, 0, 1]
    bad = [0, 0, 0, 1, LIMIT, -tick, 2 * lot, 0, 2]
    host = StrategyHost(SCRIPT, {"rows": [good, good, bad, good]}, Binding((0,), ((0, ins[0]),)), 1, ins, name="s")
    ts = int(btc_hourly.events[0][0])
    with pytest.raises(IntentError, match=rf"on market event at ts {ts}: row 2 .*'price': {-tick}.*positive whole"):
        host.on_market(btc_hourly.events[0])
    ok = StrategyHost(SCRIPT, {"rows": [good, good]}, Binding((0,), ((0, ins[0]),)), 1, ins)
    assert ok.on_market(btc_hourly.events[0]).tolist() == [good[1:], good[1:]]
