"""A strategy for the daemon's hosting tests (kind ``probe``): it uses every callback and both sized intents.

on_market: on its first event, buy ``budget`` money units at market (``QUOTE_QTY``); on_fill: count fills and
rejections and the quantity filled; on_timer (every 200 ms): once the buy has filled, close the whole position
(``CLOSE``) and count its calls. The counters are in ``state`` for the test to read.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from kernels.codes import BUY, MARKET, SELL
from strategies.api import CLOSE, F_FLAGS, F_QTY, QUOTE_QTY, REJECTED, emit, kernel
from strategies.base import Binding, Params, Strategy, money

P_ACCOUNT, P_INST, P_BUDGET = range(3)
S_STARTED, S_FILLS, S_REJECTS, S_FILLED, S_TIMERS, S_CLOSED = range(6)


class ProbeParams(Params):
    budget_usdt: float = Field(200, gt=0)


def build(p: ProbeParams, binding: Binding):
    i, _ = binding.instrument(0, "probe")
    params = [binding.account(0, "probe"), i, money(str(p.budget_usdt), "budget_usdt")]
    return np.array(params, dtype=np.int64), np.zeros(6, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if state[S_STARTED] != 0:
        return 0
    state[S_STARTED] = 1
    return emit(out, 0, params[P_ACCOUNT], params[P_INST], BUY, MARKET, 0, params[P_BUDGET], QUOTE_QTY, 1)


@kernel
def on_fill(params, state, fill, acc, pos, out):
    if fill[F_FLAGS] & REJECTED:
        state[S_REJECTS] += 1
    else:
        state[S_FILLS] += 1
        state[S_FILLED] += fill[F_QTY]
    return 0


@kernel
def on_timer(params, state, now, acc, pos, out):
    state[S_TIMERS] += 1
    a, i = params[P_ACCOUNT], params[P_INST]
    if state[S_FILLS] > 0 and state[S_CLOSED] == 0 and pos[a, i] > 0:
        state[S_CLOSED] = 1
        return emit(out, 0, a, i, SELL, MARKET, 0, 0, CLOSE, 2)
    return 0


STRATEGY = Strategy("probe", on_market, on_fill, on_timer, ProbeParams, build, timer_ns=200_000_000)
