"""Trend following by a simple-moving-average cross (built-in kind ``sma_cross``).

On every bar (or trade) of its instrument it updates exact int64 sums of the last ``fast_window`` and
``slow_window`` closes. The fast average crosses above the slow one when the sign of
``fast_sum * slow - slow_sum * fast`` (exact, no floats) goes from negative on the previous event to
positive on this one, and below when it goes from positive to negative (a tie is no cross, as in
backtesting.py's ``crossover``). On a cross up it goes long; on a cross down it goes flat
(``long_only``) or short. Entries are market orders sized by money (``QUOTE_QTY``:
``risk_fraction`` x equity, fees included) so the quantity is fixed at the fill price, the next open;
exits close the whole position (``CLOSE``).

Parameters (``configs/strategies.yaml``, ``params:``):
- ``fast_window`` (int >= 1, default 10), ``slow_window`` (int > fast_window, default 30): bars per average;
- ``risk_fraction`` (0 < x <= 125, default 1): position notional as a fraction of equity (1 = all cash;
  above 1 only on futures, up to the leverage);
- ``long_only`` (bool, default true for spot, set false to trade both ways on USD-M);
- ``order_usdt`` (USDT > 0, optional): spend at most this much per entry (fees included), so the position
  does not compound with equity (the benchmark's 2M-bar tape: all cash would outgrow int64 money).
Binding: one account, one instrument.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field, model_validator

from kernels.codes import BUY, MARKET, SELL
from strategies.api import A_EQUITY, A_OPEN_ORDERS, CLOSE, EV_CLOSE, EV_INST, EV_KIND, FUNDING, QUOTE_QTY, emit, kernel
from strategies.api import no_fill as on_fill
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy, money, ppm

P_ACCOUNT, P_INST, P_FAST, P_SLOW, P_FRACTION, P_LONG_ONLY, P_ORDER = range(7)
S_COUNT, S_HEAD, S_FAST_SUM, S_SLOW_SUM, S_PREV, S_TAG, S_TAIL = range(7)
S_RING = 8  # the last `slow` closes, a ring buffer


class SmaCrossParams(Params):
    fast_window: int = Field(10, ge=1, description="bars in the fast average")
    slow_window: int = Field(30, ge=2, description="bars in the slow average (> fast_window)")
    risk_fraction: Decimal = Field(Decimal(1), gt=0, le=125, description="position notional / equity")
    long_only: bool = Field(True, description="flat instead of short on a cross down")
    order_usdt: Decimal | None = Field(None, gt=0, description="at most this much per entry, fees included")

    @model_validator(mode="after")
    def _windows(self) -> SmaCrossParams:
        if self.slow_window <= self.fast_window:
            raise ValueError(f"slow_window ({self.slow_window}) must be above fast_window ({self.fast_window})")
        return self


def build(p: SmaCrossParams, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    inst, _ = binding.instrument(0, "sma_cross")
    params = np.array(
        [
            binding.account(0, "sma_cross"),
            inst,
            p.fast_window,
            p.slow_window,
            ppm(p.risk_fraction, "risk_fraction"),
            int(p.long_only),
            money(p.order_usdt, "order_usdt") if p.order_usdt is not None else 0,
        ],
        dtype=np.int64,
    )
    return params, np.zeros(S_RING + p.slow_window, dtype=np.int64)


@kernel(cache=False)
def on_market(params, state, events, k, acc, pos, out):
    if events[EV_INST, k] != params[P_INST] or events[EV_KIND, k] == FUNDING:
        return 0
    fast = params[P_FAST]
    slow = params[P_SLOW]
    close = events[EV_CLOSE, k]
    count = state[S_COUNT]
    head = state[S_HEAD]  # where this close goes: the slot of the close `slow` events ago
    tail = state[S_TAIL]  # the slot of the close `fast` events ago
    state[S_FAST_SUM] += close
    state[S_SLOW_SUM] += close
    if count >= fast:
        state[S_FAST_SUM] -= state[S_RING + tail]
        tail += 1
        if tail == slow:
            tail = 0
        state[S_TAIL] = tail
    if count >= slow:
        state[S_SLOW_SUM] -= state[S_RING + head]
    state[S_RING + head] = close
    head += 1
    if head == slow:  # no modulo: a division costs more than the rest of the update
        head = 0
    state[S_HEAD] = head
    state[S_COUNT] = count + 1
    if count + 1 < slow:
        return 0
    d = state[S_FAST_SUM] * slow - state[S_SLOW_SUM] * fast
    sign = 1 if d > 0 else (-1 if d < 0 else 0)
    prev = state[S_PREV]
    state[S_PREV] = sign
    if count + 1 == slow:  # the first full window has no previous comparison
        return 0
    if prev < 0 and sign > 0:
        target = 1
    elif prev > 0 and sign < 0:
        target = 0 if params[P_LONG_ONLY] else -1
    else:
        return 0
    a = params[P_ACCOUNT]
    i = params[P_INST]
    held = pos[a, i]
    n = 0
    if held != 0 and (held > 0) != (target > 0):
        n = emit(out, n, a, i, SELL if held > 0 else BUY, MARKET, 0, 0, CLOSE, state[S_TAG])
        state[S_TAG] += 1
    if target != 0 and not (held != 0 and (held > 0) == (target > 0)) and acc[a, A_OPEN_ORDERS] == 0:
        budget = (
            acc[a, A_EQUITY] // 1_000_000 * params[P_FRACTION]
            + acc[a, A_EQUITY] % 1_000_000 * params[P_FRACTION] // 1_000_000
        )
        if params[P_ORDER] > 0 and budget > params[P_ORDER]:
            budget = params[P_ORDER]
        if budget > 0:
            n = emit(out, n, a, i, BUY if target > 0 else SELL, MARKET, 0, budget, QUOTE_QTY, state[S_TAG])
            state[S_TAG] += 1
    return n


STRATEGY = Strategy("sma_cross", on_market, on_fill, on_timer, SmaCrossParams, build, summary=__doc__.splitlines()[0])
