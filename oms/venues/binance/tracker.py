"""The orders one account has open on one market, and the gate every order event passes before it is emitted.

Events reach the connector twice or out of order (the user stream and the REST answer race, a reconnect
replays, a REST snapshot repeats what the stream said): ``OrderTracker.admit`` folds each into the order's
state through the model's status machine and lets through only what changes something. A duplicate (same
trade id, or no change of status or filled quantity), a stale one (``NEW`` after ``FILLED``), an illegal one,
and an event of an order this connector neither placed nor loaded are dropped, counted by reason and logged;
none raises into the stream loop.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from oms.model import IllegalTransition, Order, OrderEvent, OrderEventKind, OrderStatus, next_status

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Tracked:
    """What the connector knows of one order."""

    client_order_id: str
    symbol: str
    status: OrderStatus
    venue_order_id: str | None = None
    filled_qty: Decimal = Decimal(0)
    seen_qty: Decimal = Decimal(0)  # the quantity of the fills (trades) seen: less than filled_qty = fills missing
    trade_ids: set[str] = field(default_factory=set)
    qty: str = ""  # the order's quantity and price as last reported (an amend changes them)
    price: str | None = None

    @property
    def has_fill(self) -> bool:
        return self.filled_qty > 0


class OrderTracker:
    """Orders by client order id; terminal ones are kept (up to ``keep_closed``) to recognise late events."""

    def __init__(self, account: str, untracked: str = "drop", keep_closed: int = 20_000) -> None:
        self.account = account
        self.untracked = untracked
        self.keep_closed = keep_closed
        self.orders: dict[str, Tracked] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.dropped: Counter[str] = Counter()

    # ---- what we know -----------------------------------------------------------------------------------
    def open_orders(self) -> list[Tracked]:
        return [t for t in self.orders.values() if t.status.is_open]

    def missing_fills(self) -> list[Tracked]:
        """Orders whose filled quantity is more than their fills seen (an answer said filled, the stream has
        not delivered the trades yet, or lost them)."""
        return [t for t in self.orders.values() if t.filled_qty > t.seen_qty]

    def has_open(self) -> bool:
        return any(t.status.is_open for t in self.orders.values())

    def get(self, coid: str) -> Tracked | None:
        return self.orders.get(coid)

    def expect(self, coid: str, symbol: str) -> Tracked:
        """An order about to be sent (``pending_new``); an id already tracked is returned as it is."""
        t = self.orders.get(coid)
        if t is None:
            t = self.orders[coid] = Tracked(coid, symbol, OrderStatus.PENDING_NEW)
        return t

    def load(self, order: Order) -> None:
        """An order as REST reports it (start-up, reconciliation): its state replaces what was known."""
        t = self.orders.get(order.client_order_id)
        if t is None:
            t = self.orders[order.client_order_id] = Tracked(order.client_order_id, order.symbol, order.status)
        t.status = order.status
        t.venue_order_id = order.venue_order_id
        t.filled_qty = Decimal(order.filled_qty)
        t.seen_qty = max(t.seen_qty, t.filled_qty)  # loaded at start: its earlier fills are history, not news
        t.qty, t.price = order.qty, order.price
        self._retire(t)

    def learn(self, order: Order) -> None:
        """An order a read found open: loaded if it is not known, left as it is if it is (a REST answer may be
        older than what the stream has said since)."""
        if order.client_order_id not in self.orders:
            self.load(order)

    def mark(self, coid: str, kind: OrderEventKind) -> OrderStatus:
        """Our own event (cancel sent, outcome unknown, not found): the status after it (raises if illegal)."""
        t = self.orders[coid]
        t.status = next_status(t.status, kind, filled=t.has_fill, order=coid)
        self._retire(t)
        return t.status

    # ---- the gate -------------------------------------------------------------------------------------
    def admit(self, ev: OrderEvent) -> OrderEvent | None:
        """The event to emit (its ``status`` the machine's), or None when it is dropped (and counted)."""
        t = self.orders.get(ev.client_order_id)
        if t is None:
            if self.untracked == "pass":
                return ev
            return self._drop("untracked", ev)
        fill = ev.fill
        if fill is not None and fill.trade_id in t.trade_ids:
            return self._drop("duplicate trade", ev)
        try:
            status = next_status(t.status, ev.kind, filled=t.has_fill, order=ev.client_order_id)
        except IllegalTransition as exc:
            return self._drop("illegal transition", ev, str(exc))
        filled = Decimal(ev.filled_qty) if ev.filled_qty else t.filled_qty
        if fill is not None:
            t.trade_ids.add(fill.trade_id)
            t.seen_qty += Decimal(fill.qty)
        elif status is t.status and filled <= t.filled_qty and not _amends(ev, t):
            return self._drop("duplicate" if ev.status is t.status else "stale", ev)
        t.status = status
        if ev.qty:
            t.qty, t.price = ev.qty, ev.price
        if filled > t.filled_qty:
            t.filled_qty = filled
        if ev.venue_order_id:
            t.venue_order_id = ev.venue_order_id
        self._retire(t)
        return ev if ev.status is status else msgspec.structs.replace(ev, status=status)

    def _drop(self, why: str, ev: OrderEvent, detail: str = "") -> None:
        self.dropped[why] += 1
        # duplicates and stale answers are the normal race of stream and answer: counted, logged quietly
        level = logging.DEBUG if why in ("duplicate", "stale", "duplicate trade") else logging.WARNING
        log.log(
            level,
            "dropped %s event of order %s (%s) for %s: %s %s",
            ev.kind.value,
            ev.client_order_id,
            ev.symbol,
            self.account,
            why,
            detail,
        )
        return None

    def _retire(self, t: Tracked) -> None:
        if t.status.is_open:
            self._closed.pop(t.client_order_id, None)
            return
        self._closed[t.client_order_id] = None
        self._closed.move_to_end(t.client_order_id)
        while len(self._closed) > self.keep_closed:
            old, _ = self._closed.popitem(last=False)
            self.orders.pop(old, None)


def _dec_or_none(value: str | None) -> Decimal | None:
    return Decimal(value) if value else None


def _amends(ev: OrderEvent, t: Tracked) -> bool:
    """An amend that changes the order's quantity or price (the first report of it; its echo is a duplicate)."""
    if ev.kind is not OrderEventKind.AMENDED or not ev.qty:
        return False
    if not t.qty:
        return True
    return Decimal(ev.qty) != Decimal(t.qty) or _dec_or_none(ev.price) != _dec_or_none(t.price)
