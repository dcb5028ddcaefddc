"""A strategy for the emulated-intent tests (kind ``intents``), live and in the backtest: on its first market event
a TWAP buy of ``qty`` in ``slices`` over ``duration_s`` (tag 5) and a trailing-stop exit rule of ``trailing_ppm``
on its position, and with ``pov_ppm`` a POV buy of ``qty`` at that participation (tag 6); ``on_fill`` adds up
what its parents bought and what its exits sold, by tag."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from kernels.codes import BUY
from strategies.api import (
    EXIT_TAG,
    F_FLAGS,
    F_QTY,
    F_TAG,
    REJECTED,
    TRAILING_STOP,
    emit_exit,
    emit_pov,
    emit_twap,
    kernel,
)
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy

P_ACCOUNT, P_INST, P_QTY, P_SLICES, P_DURATION, P_TRAIL, P_POV = range(7)
S_STARTED, S_BOUGHT, S_EXITED, S_REJECTS, S_OTHER, S_POV = range(6)
PARENT_TAG, POV_TAG = 5, 6


class IntentParams(Params):
    qty_units: int = Field(300, gt=0)
    slices: int = Field(3, gt=0)
    duration_s: int = Field(3, ge=0)
    trailing_ppm: int = Field(1, gt=0)
    pov_ppm: int = Field(0, ge=0, le=1_000_000)


def build(p: IntentParams, binding: Binding):
    i, _ = binding.instrument(0, "intents")
    params = [binding.account(0, "intents"), i, p.qty_units, p.slices, p.duration_s, p.trailing_ppm, p.pov_ppm]
    return np.array(params, dtype=np.int64), np.zeros(6, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if state[S_STARTED] != 0:
        return 0
    state[S_STARTED] = 1
    a, i = params[P_ACCOUNT], params[P_INST]
    n = emit_twap(out, 0, a, i, BUY, params[P_QTY], 0, params[P_SLICES], params[P_DURATION], PARENT_TAG)
    if params[P_POV] > 0:
        n = emit_pov(out, n, a, i, BUY, params[P_QTY], 0, params[P_POV], 600, POV_TAG)
    return emit_exit(out, n, a, i, TRAILING_STOP, params[P_TRAIL], 0)


@kernel
def on_fill(params, state, fill, acc, pos, out):
    if fill[F_FLAGS] & REJECTED:
        state[S_REJECTS] += 1
    elif fill[F_TAG] == PARENT_TAG:
        state[S_BOUGHT] += fill[F_QTY]
    elif fill[F_TAG] == EXIT_TAG:
        state[S_EXITED] += fill[F_QTY]
    elif fill[F_TAG] == POV_TAG:
        state[S_POV] += fill[F_QTY]
    else:
        state[S_OTHER] += 1
    return 0


STRATEGY = Strategy("intents", on_market, on_fill, on_timer, IntentParams, build)
