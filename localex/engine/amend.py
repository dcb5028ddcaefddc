"""Spot "amend keep priority" (Binance ``order.amend.keepPriority`` / ``PUT /api/v3/order/amend/keepPriority``).

A resting order's quantity goes down in place: it keeps its order id, its price and its place in the queue;
what it no longer needs is unlocked; its client order id may change. Binance allows only decreases
(``newQty`` below the order's quantity and above what it has executed) and reports the change as an
``executionReport`` with execution type ``REPLACED``. Amends are rare, so this runs as plain Python beside the
compiled engine, through the engine's own begin/end bracket (events and account updates flush as usual).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import errors as E
from .event_types import OrderEvent
from .markets import SPOT
from .types import BUY, NEW, PARTIALLY_FILLED, WALLET_SPOT, Order

if TYPE_CHECKING:
    from .exchange import Exchange

X_REPLACED: Final = "REPLACED"


def amend_rejected(msg: str) -> E.ExchangeError:
    """-2038: Binance's answer to an amend it refuses (a quantity that does not go down)."""
    return E.ExchangeError(-2038, msg)


def amend_keep_priority(
    ex: Exchange,
    account_id: str,
    symbol: str,
    new_qty: str,
    *,
    order_id: int | None = None,
    client_order_id: str | None = None,
    new_client_order_id: str | None = None,
) -> Order:
    """Reduce a resting Spot order to ``new_qty`` keeping its priority; returns its snapshot."""
    acc = ex.ledger.get(account_id)
    o = ex._find(acc, SPOT, symbol, order_id, client_order_id)
    if o is None or o.status not in (NEW, PARTIALLY_FILLED):
        raise E.ExchangeError(-2013, "Order does not exist.")
    spec = ex.spec(SPOT, symbol)
    qty = spec.parse_qty(new_qty, "newQty")
    if qty <= 0 or qty >= o.orig_qty:
        raise amend_rejected("Order amend (quantity increase) is not supported.")
    if qty <= o.executed_qty:
        raise amend_rejected("The new quantity must be greater than the executed quantity.")
    if new_client_order_id and new_client_order_id != o.client_order_id:
        if (SPOT, symbol, new_client_order_id) in acc.open_by_client_id:
            raise E.duplicate_order()
    m = ex.matcher
    key = (SPOT, symbol)
    ex._begin()
    try:
        delta = o.orig_qty - qty
        if o.is_working:
            m.books[key].side(o.side).reduce(o.price, delta)
            m.dirty.add(key)
        if o.locked:  # what the removed quantity held goes back to free
            # a buy frees the removed value truncated: what stays locked still covers the rest (markets.py)
            free = spec.settled_quote(o.price * delta * spec.notional_unit) if o.side == BUY else delta * spec.qty_unit
            free = min(free, o.locked)
            asset = spec.quote_asset if o.side == BUY else spec.base_asset
            bal = acc.bal(acc.spot, asset)
            bal.locked -= free
            bal.free += free
            o.locked -= free
            if m.em.active:
                m.em.touch(acc.account_id, WALLET_SPOT, asset)
        o.orig_qty = qty
        if new_client_order_id and new_client_order_id != o.client_order_id:
            acc.open_by_client_id.pop((SPOT, symbol, o.client_order_id), None)
            o.client_order_id = new_client_order_id
            acc.open_by_client_id[(SPOT, symbol, new_client_order_id)] = o
        o.update_ns = ex.clock()
        if m.em.active:
            m.em.emit(OrderEvent(acc.account_id, X_REPLACED, o.snapshot(), None, o.update_ns))
    finally:
        ex._end()
    return o.snapshot()
