"""The live view of one account, as written to the ``oms_state`` KV bucket and read by ``oms stream status``.

``account_view(...)`` turns the kernel state (positions, PnL), the order tracker (open orders) and the last
balances into the model's structs, under the kinds of ``oms.bus.kv.STATE_KINDS``: ``positions`` (a list of
``Position``, signed quantities), ``balances`` (``Balance``), ``open_orders`` (``Order``), ``pnl``
(``AccountPnl``, with the funding booked per account and per symbol) and ``trading_state``
(``TradingStateView``). Money is decimal strings in USDT.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import numpy as np

from kernels.positions import S_CASH, S_EQUITY, S_FEES, S_FIELDS, S_FUNDING, S_REALISED, S_UNREALISED, account_summary
from kernels.state import P_COST, P_FUNDING, P_QTY
from oms.model import Balance, Order, Position, PositionSide
from oms.model.units import money_from_units
from stream.instruments import InstrumentTable
from stream.orders import OrderTracker


class AccountPnl(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    equity: str
    cash: str
    unrealised: str
    realised: str
    fees: str
    event_ns: int
    funding: str = "0"  # USD-M funding booked (received positive, paid negative), part of the realised PnL
    funding_by_symbol: dict[str, str] = {}


class TradingStateView(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    trading_state: str  # active | reduce_only | halted
    trading: bool  # reconciled and taking orders
    reason: str = ""
    holder: str = ""
    event_ns: int


def _money(units: int) -> str:
    return str(money_from_units(int(units)).normalize()) if units else "0"


def positions_of(table: InstrumentTable, a: int, account: str, exchange: str) -> list[Position]:
    state = table.state
    out: list[Position] = []
    for i in range(len(table)):
        ex, ins = table.instrument(i)
        if ex != exchange:
            continue
        for slot, side in ((0, PositionSide.BOTH), (1, PositionSide.SHORT)):
            q = int(state.pos[P_QTY, a, i, slot])
            if q == 0:
                continue
            cost = int(state.pos[P_COST, a, i, slot])
            entry = round(cost / (q * ins.mult)) if q else 0
            out.append(
                Position(
                    account=account,
                    symbol=ins.symbol,
                    position_side=side,
                    qty=ins.qty_str(q),
                    entry_price=ins.price_str(abs(entry)),
                )
            )
    return out


def open_orders_of(
    tracker: OrderTracker, table: InstrumentTable, a: int, reference_of: Callable[[str], str | None] | None = None
) -> list[Order]:
    """The open orders of kernel account ``a``; ``reference_of(client order id)``: each one's slippage reference
    price (``stream.emulation.slippage``), when the daemon keeps them."""
    out = []
    for rec in tracker.open_orders(a):
        ins = table.instrument(rec.instrument)[1]
        c = rec.cmd
        out.append(
            Order(
                account=c.account,
                symbol=c.symbol,
                client_order_id=rec.client_order_id,
                venue_order_id=rec.venue_order_id,
                side=c.side,
                order_type=c.order_type,
                qty=c.qty,
                price=c.price,
                stop_price=c.stop_price,
                time_in_force=c.time_in_force,
                reduce_only=c.reduce_only,
                post_only=c.post_only,
                position_side=c.position_side,
                status=rec.status,
                filled_qty=ins.qty_str(rec.filled),
                updated_ns=rec.updated_ns,
                strategy=c.strategy,
                reference_price=reference_of(rec.client_order_id) if reference_of is not None else None,
            )
        )
    return out


def pnl_of(table: InstrumentTable, a: int, account: str) -> AccountPnl:
    out = np.zeros((S_FIELDS, table.state.n_accounts), dtype=np.int64)
    account_summary(*table.state.blocks, out)
    return AccountPnl(
        account=account,
        equity=_money(out[S_EQUITY, a]),
        cash=_money(out[S_CASH, a]),
        unrealised=_money(out[S_UNREALISED, a]),
        realised=_money(out[S_REALISED, a]),
        fees=_money(out[S_FEES, a]),
        event_ns=time.time_ns(),
        funding=_money(out[S_FUNDING, a]),
        funding_by_symbol=funding_of(table, a),
    )


def funding_of(table: InstrumentTable, a: int) -> dict[str, str]:
    """Funding booked per symbol of kernel account ``a`` (decimal strings), the symbols with any."""
    pos = table.state.pos
    out = {}
    for i in range(len(table)):
        units = int(pos[P_FUNDING, a, i, 0] + pos[P_FUNDING, a, i, 1])
        if units:
            out[table.instrument(i)[1].symbol] = _money(units)
    return out


def balances_list(balances: dict) -> list[Balance]:
    return [balances[k] for k in sorted(balances)]
