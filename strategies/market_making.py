"""Market making with inventory-skewed quotes, cancelled and replaced on every event (kind ``market_making``).

On each bar or trade of its instrument it cancels its quotes (``CANCEL_ALL``) and posts a post-only bid
and ask around the close: ``close * (1 -/+ half_spread - skew)``, where
``skew = skew_bps * inventory / max_inventory`` (clamped to +-1), so a long inventory lowers both
quotes (sells sooner, buys later) and a short one raises them. Each quote is ``order_usdt`` of notional
in whole lots; no bid once the inventory reaches ``+max_inventory_usdt``, no ask at
``-max_inventory_usdt`` (on spot: no ask beyond what is held). Fills come from resting limits the price
trades through (or touches, with the optimistic queue model) and pay the maker rate.

Parameters: ``half_spread_bps`` (> 0, default 5), ``order_usdt`` (> 0, default 1000),
``max_inventory_usdt`` (> 0, default 20000), ``skew_bps`` (>= 0, default: half_spread_bps).
Binding: one account, one instrument.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field

from kernels.codes import BUY, LIMIT, PERP, SELL
from kernels.fixed import mul_div_floor
from strategies.api import CANCEL_ALL, EV_CLOSE, EV_INST, EV_KIND, FUNDING, POST_ONLY, emit, kernel
from strategies.api import no_fill as on_fill
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy, bps_to_ppm, money

P_ACCOUNT, P_INST, P_HALF, P_ORDER, P_MAX_INV, P_SKEW, P_TICK, P_LOT, P_MULT, P_PERP = range(10)
S_TAG = 0


class MarketMakingParams(Params):
    half_spread_bps: Decimal = Field(Decimal(5), gt=0, le=5000, description="distance of each quote from the close")
    order_usdt: Decimal = Field(Decimal(1000), gt=0, description="notional of each quote")
    max_inventory_usdt: Decimal = Field(Decimal(20000), gt=0, description="inventory at which one side stops")
    skew_bps: Decimal | None = Field(None, ge=0, le=5000, description="quote shift at full inventory")


def build(p: MarketMakingParams, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    i, ins = binding.instrument(0, "market_making")
    skew = p.half_spread_bps if p.skew_bps is None else p.skew_bps
    params = [
        binding.account(0, "market_making"),
        i,
        bps_to_ppm(p.half_spread_bps, "half_spread_bps"),
        money(p.order_usdt, "order_usdt"),
        money(p.max_inventory_usdt, "max_inventory_usdt"),
        bps_to_ppm(skew, "skew_bps"),
        ins.tick,
        ins.lot,
        ins.mult,
        int(ins.kind == PERP),
    ]
    return np.array(params, dtype=np.int64), np.zeros(4, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if events[EV_INST, k] != params[P_INST] or events[EV_KIND, k] == FUNDING:
        return 0
    a = params[P_ACCOUNT]
    i = params[P_INST]
    mid = events[EV_CLOSE, k]
    tick = params[P_TICK]
    lot = params[P_LOT]
    held = pos[a, i]
    inventory = held * mid * params[P_MULT]
    frac = mul_div_floor(inventory, 1_000_000, params[P_MAX_INV])
    frac = min(max(frac, -1_000_000), 1_000_000)
    shift = mul_div_floor(params[P_SKEW], frac, 1_000_000)
    bid = mul_div_floor(mid, 1_000_000 - params[P_HALF] - shift, 1_000_000) // tick * tick
    ask = -mul_div_floor(-mid, 1_000_000 + params[P_HALF] - shift, 1_000_000)
    ask = (ask + tick - 1) // tick * tick
    qty = params[P_ORDER] // (mid * params[P_MULT]) // lot * lot
    n = emit(out, 0, a, i, 0, CANCEL_ALL, 0, 0, 0, 0)
    if qty <= 0:
        return n
    if inventory < params[P_MAX_INV] and bid > 0:
        state[S_TAG] += 1
        n = emit(out, n, a, i, BUY, LIMIT, bid, qty, POST_ONLY, state[S_TAG])
    ask_qty = qty if params[P_PERP] else min(qty, max(held, 0) // lot * lot)
    if inventory > -params[P_MAX_INV] and ask_qty > 0:
        state[S_TAG] += 1
        n = emit(out, n, a, i, SELL, LIMIT, ask, ask_qty, POST_ONLY, state[S_TAG])
    return n


STRATEGY = Strategy(
    "market_making", on_market, on_fill, on_timer, MarketMakingParams, build, summary=__doc__.splitlines()[0]
)
