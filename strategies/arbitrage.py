"""Spot arbitrage between two venues or accounts holding the same asset (kind ``arbitrage``).

It keeps the last price of the asset on each venue (instrument 0 traded by account 0, instrument 1 by
account 1). When one is above the other by at least ``min_spread_bps`` it buys on the cheap venue and
sells on the dear one at market, at most ``max_order_usdt`` of notional (whole lots), and never more
than the selling account holds (spot: no shorting), so each account keeps cash and inventory and the
pair ends with the asset moved from one to the other and the spread in cash. It trades only when
neither account has an order open.

Parameters: ``min_spread_bps`` (> 0, default 8), ``max_order_usdt`` (> 0, default 5000).
Binding: two accounts, two instruments with the same units (e.g. BTCUSDT spot on two venues).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field

from kernels.codes import BUY, MARKET, SELL
from kernels.fixed import mul_div_floor
from strategies.api import A_OPEN_ORDERS, EV_CLOSE, EV_INST, EV_KIND, FUNDING, emit, kernel
from strategies.api import no_fill as on_fill
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy, bps_to_ppm, money

P_ACC_A, P_ACC_B, P_INST_A, P_INST_B, P_MIN_SPREAD, P_MAX_ORDER, P_LOT, P_MULT = range(8)
S_LAST_A, S_LAST_B, S_TAG = range(3)


class ArbitrageParams(Params):
    min_spread_bps: Decimal = Field(Decimal(8), gt=0, description="price difference that triggers a pair of trades")
    max_order_usdt: Decimal = Field(Decimal(5000), gt=0, description="notional of each leg at most")


def build(p: ArbitrageParams, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    ia, a = binding.instrument(0, "arbitrage")
    ib, b = binding.instrument(1, "arbitrage")
    if (a.price_unit, a.qty_unit) != (b.price_unit, b.qty_unit):
        raise ValueError(f"arbitrage legs need the same units: {a} vs {b}")
    params = [
        binding.account(0, "arbitrage"),
        binding.account(1, "arbitrage"),
        ia,
        ib,
        bps_to_ppm(p.min_spread_bps, "min_spread_bps"),
        money(p.max_order_usdt, "max_order_usdt"),
        a.lot,
        a.mult,
    ]
    return np.array(params, dtype=np.int64), np.zeros(4, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if events[EV_KIND, k] == FUNDING:
        return 0
    i = events[EV_INST, k]
    if i == params[P_INST_A]:
        state[S_LAST_A] = events[EV_CLOSE, k]
    elif i == params[P_INST_B]:
        state[S_LAST_B] = events[EV_CLOSE, k]
    else:
        return 0
    pa = state[S_LAST_A]
    pb = state[S_LAST_B]
    if pa == 0 or pb == 0:
        return 0
    a = params[P_ACC_A]
    b = params[P_ACC_B]
    if acc[a, A_OPEN_ORDERS] != 0 or acc[b, A_OPEN_ORDERS] != 0:
        return 0
    low = min(pa, pb)
    if mul_div_floor(abs(pb - pa), 1_000_000, low) < params[P_MIN_SPREAD]:
        return 0
    lot = params[P_LOT]
    # buy where it is cheap, sell where it is dear, no more than the seller holds
    buyer, seller = (a, b) if pa < pb else (b, a)
    ibuy, isell = (params[P_INST_A], params[P_INST_B]) if pa < pb else (params[P_INST_B], params[P_INST_A])
    qty = min(params[P_MAX_ORDER] // (max(pa, pb) * params[P_MULT]), pos[seller, isell]) // lot * lot
    if qty <= 0:
        return 0
    state[S_TAG] += 1
    n = emit(out, 0, buyer, ibuy, BUY, MARKET, 0, qty, 0, state[S_TAG])
    state[S_TAG] += 1
    return emit(out, n, seller, isell, SELL, MARKET, 0, qty, 0, state[S_TAG])


STRATEGY = Strategy("arbitrage", on_market, on_fill, on_timer, ArbitrageParams, build, summary=__doc__.splitlines()[0])
