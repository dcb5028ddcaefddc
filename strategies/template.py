"""A template to copy for a new strategy (kind ``template``): buy once, hold, optionally exit at a price.

Copy this file, rename the kind, and keep the shape:
1. a frozen ``Params`` model: every field typed, bounded and described (unknown keys are rejected);
2. ``build(params, binding)``: decimals -> int64 ``params`` (units, ppm, money) and a zeroed ``state``;
3. ``@kernel`` callbacks reading ``events[EV_*, k]``, the account view (``acc``, ``pos``: read-only) and
   writing intents with ``emit``; they return how many they wrote. Keep ``on_market``'s common path
   short (it runs for every event); nothing may allocate arrays inside a ``@kernel``.
4. ``STRATEGY = Strategy(kind, on_market, on_fill, on_timer, Params, build)``, added to
   ``strategies.registry.BUILTINS``.

This one spends ``budget_fraction`` of its equity at market on the first event of its instrument and,
when ``exit_price`` is set, closes the position once a close reaches it. Its ``on_fill`` counts fills
and rejections in its state, to show the callback.
Parameters: ``budget_fraction`` (0 < x <= 125, default 1), ``exit_price`` (decimal string or null).
Binding: one account, one instrument.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field

from kernels.codes import BUY, MARKET, SELL
from strategies.api import (
    A_EQUITY,
    CLOSE,
    EV_CLOSE,
    EV_INST,
    EV_KIND,
    F_FLAGS,
    FUNDING,
    QUOTE_QTY,
    REJECTED,
    emit,
    kernel,
)
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy, ppm

P_ACCOUNT, P_INST, P_FRACTION, P_EXIT = range(4)
S_BOUGHT, S_FILLS, S_REJECTS, S_TAG = range(4)


class TemplateParams(Params):
    budget_fraction: Decimal = Field(Decimal(1), gt=0, le=125, description="notional bought / equity")
    exit_price: Decimal | None = Field(None, gt=0, description="close the position at a close at or above this")


def build(p: TemplateParams, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    i, ins = binding.instrument(0, "template")
    exit_units = ins.price(str(p.exit_price), "exit_price") if p.exit_price is not None else 0
    params = [binding.account(0, "template"), i, ppm(p.budget_fraction, "budget_fraction"), exit_units]
    return np.array(params, dtype=np.int64), np.zeros(4, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if events[EV_INST, k] != params[P_INST] or events[EV_KIND, k] == FUNDING:
        return 0
    a = params[P_ACCOUNT]
    i = params[P_INST]
    if state[S_BOUGHT] == 0:
        state[S_BOUGHT] = 1
        budget = acc[a, A_EQUITY] // 1_000_000 * params[P_FRACTION]
        state[S_TAG] += 1
        return emit(out, 0, a, i, BUY, MARKET, 0, budget, QUOTE_QTY, state[S_TAG])
    if params[P_EXIT] > 0 and pos[a, i] > 0 and events[EV_CLOSE, k] >= params[P_EXIT]:
        state[S_TAG] += 1
        return emit(out, 0, a, i, SELL, MARKET, 0, 0, CLOSE, state[S_TAG])
    return 0


@kernel
def on_fill(params, state, fill, acc, pos, out):
    if fill[F_FLAGS] & REJECTED:
        state[S_REJECTS] += 1
    else:
        state[S_FILLS] += 1
    return 0


STRATEGY = Strategy("template", on_market, on_fill, on_timer, TemplateParams, build, summary=__doc__.splitlines()[0])
