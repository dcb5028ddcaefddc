"""Basis trade, spot against the perpetual (kind ``basis``): cash and carry while the perp is rich.

The basis is ``(perp - spot) / spot``. When it reaches ``entry_basis_bps`` and the strategy is flat,
it buys ``order_usdt`` of spot and sells the same quantity of the perpetual (both at market), which
is delta-neutral and collects positive funding; when the basis falls to ``exit_basis_bps`` it closes
both legs (``CLOSE``). The quantity is in whole lots of the coarser of the two instruments.

Parameters: ``entry_basis_bps`` (default 30), ``exit_basis_bps`` (< entry, default 5),
``order_usdt`` (> 0, default 10000).
Binding: accounts (spot, perp) — the same account twice if it trades both markets — and instruments
(spot, perp) of the same asset.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field, model_validator

from kernels.codes import BUY, MARKET, SELL
from kernels.fixed import mul_div_floor
from strategies.api import A_OPEN_ORDERS, CLOSE, EV_CLOSE, EV_INST, EV_KIND, FUNDING, emit, kernel
from strategies.api import no_fill as on_fill
from strategies.api import no_timer as on_timer
from strategies.base import Binding, Params, Strategy, bps_to_ppm, money

P_ACC_S, P_ACC_P, P_SPOT, P_PERP, P_ENTRY, P_EXIT, P_ORDER, P_PRICE_RATIO, P_QTY_RATIO, P_PERP_MULT, P_PERP_LOT = range(
    11
)
S_SPOT, S_PERP, S_TAG = range(3)


class BasisParams(Params):
    entry_basis_bps: Decimal = Field(Decimal(30), description="basis at which to open the carry")
    exit_basis_bps: Decimal = Field(Decimal(5), description="basis at which to close it")
    order_usdt: Decimal = Field(Decimal(10000), gt=0, description="notional of the spot leg")

    @model_validator(mode="after")
    def _order(self) -> BasisParams:
        if self.exit_basis_bps >= self.entry_basis_bps:
            raise ValueError(f"exit_basis_bps ({self.exit_basis_bps}) must be below entry ({self.entry_basis_bps})")
        return self


def _ratio(big: Decimal, small: Decimal, what: str) -> int:
    r = big / small
    if r != r.to_integral_value() or r < 1:
        raise ValueError(f"basis: the perp's {what} unit must be a whole multiple of the spot's")
    return int(r)


def build(p: BasisParams, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    i_s, spot = binding.instrument(0, "basis")
    i_p, perp = binding.instrument(1, "basis")
    qty_ratio = _ratio(perp.qty_unit * perp.lot, spot.qty_unit, "lot")  # spot quantity units per perp lot
    if qty_ratio % spot.lot:
        raise ValueError("basis: a perp lot must be a whole number of spot lots")
    params = [
        binding.account(0, "basis"),
        binding.account(1, "basis") if len(binding.accounts) > 1 else binding.account(0, "basis"),
        i_s,
        i_p,
        bps_to_ppm(p.entry_basis_bps, "entry_basis_bps"),
        bps_to_ppm(p.exit_basis_bps, "exit_basis_bps"),
        money(p.order_usdt, "order_usdt"),
        _ratio(perp.price_unit, spot.price_unit, "price"),
        qty_ratio,
        perp.mult * perp.lot,
        perp.lot,
    ]
    return np.array(params, dtype=np.int64), np.zeros(4, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    if events[EV_KIND, k] == FUNDING:
        return 0
    i = events[EV_INST, k]
    if i == params[P_SPOT]:
        state[S_SPOT] = events[EV_CLOSE, k]
    elif i == params[P_PERP]:
        state[S_PERP] = events[EV_CLOSE, k]
    else:
        return 0
    spot = state[S_SPOT]
    perp = state[S_PERP] * params[P_PRICE_RATIO]  # in spot price units
    if spot == 0 or perp == 0:
        return 0
    a_s = params[P_ACC_S]
    a_p = params[P_ACC_P]
    if acc[a_s, A_OPEN_ORDERS] != 0 or acc[a_p, A_OPEN_ORDERS] != 0:
        return 0
    basis = mul_div_floor(perp - spot, 1_000_000, spot)
    held_s = pos[a_s, params[P_SPOT]]
    held_p = pos[a_p, params[P_PERP]]
    if held_s == 0 and held_p == 0 and basis >= params[P_ENTRY]:
        lots = params[P_ORDER] // (state[S_PERP] * params[P_PERP_MULT])  # perp lots for order_usdt
        if lots <= 0:
            return 0
        state[S_TAG] += 1
        n = emit(out, 0, a_s, params[P_SPOT], BUY, MARKET, 0, lots * params[P_QTY_RATIO], 0, state[S_TAG])
        state[S_TAG] += 1
        return emit(out, n, a_p, params[P_PERP], SELL, MARKET, 0, lots * params[P_PERP_LOT], 0, state[S_TAG])
    if (held_s != 0 or held_p != 0) and basis <= params[P_EXIT]:
        n = 0
        if held_s > 0:
            state[S_TAG] += 1
            n = emit(out, n, a_s, params[P_SPOT], SELL, MARKET, 0, 0, CLOSE, state[S_TAG])
        if held_p < 0:
            state[S_TAG] += 1
            n = emit(out, n, a_p, params[P_PERP], BUY, MARKET, 0, 0, CLOSE, state[S_TAG])
        return n
    return 0


STRATEGY = Strategy("basis", on_market, on_fill, on_timer, BasisParams, build, summary=__doc__.splitlines()[0])
