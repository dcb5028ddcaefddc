"""The daemon's orders: every order it placed or adopted, keyed by client order id, folded from events.

An ``OrderRecord`` is the live view of one order: its command, kernel numbers (account, instrument, side,
position side, in units), status, cumulative fill, and the trade ids already applied (so a fill reported
twice, by the stream and by REST, counts once). ``OrderTracker.apply`` runs one venue event through the
model's status machine (``oms.model.status``): it returns what changed (the new status, the new fill if any),
or raises ``IllegalTransition`` leaving the record as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from oms.model import Fill, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder, next_status

TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL})


NO_TRADES: frozenset[str] = frozenset()


class OrderRecord(msgspec.Struct, gc=False):
    """(A msgspec struct, not a dataclass: one is made per accepted order, and its compiled ``__init__`` costs
    a third of a dataclass's. Not tracked by the garbage collector: it holds its command, numbers, strings and
    a set of trade id strings, none of which can lead back to it, and tens of thousands of live records made
    every collection walk them.)"""

    cmd: PlaceOrder
    account: int  # kernel account number
    instrument: int  # kernel instrument number
    side: int  # kernel side code
    pos_side: int  # kernel position-side code
    qty: int  # quantity units
    status: OrderStatus = OrderStatus.PENDING_NEW
    filled: int = 0  # quantity units filled so far
    reserved: bool = True  # holds a risk reservation (open-order slot and open quantity)
    venue_order_id: str | None = None
    trade_ids: frozenset[str] | set[str] = NO_TRADES  # made at the first fill (``add_trade``), not per order
    updated_ns: int = 0
    replaces: str | None = None  # a cancel-replace's new order: the client order id of the order it replaced
    replaced_by: str | None = None  # a replaced order: its replacement's client order id

    def add_trade(self, trade_id: str) -> None:
        """Remember ``trade_id`` as applied (the set is made here, at the order's first fill)."""
        if self.trade_ids is NO_TRADES:
            self.trade_ids = {trade_id}
        else:
            self.trade_ids.add(trade_id)  # type: ignore[union-attr]

    @property
    def client_order_id(self) -> str:
        return self.cmd.client_order_id or ""

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL


@dataclass(slots=True)
class Change:
    """What one event did to a record."""

    before: OrderStatus
    after: OrderStatus
    new_fill: Fill | None  # a fill not seen before (to apply to positions), else None

    @property
    def changed(self) -> bool:
        return self.before is not self.after or self.new_fill is not None


class OrderTracker:
    """Orders by client order id, with the open ones indexed per account for cancel-all."""

    def __init__(self) -> None:
        self._orders: dict[str, OrderRecord] = {}
        self._open_by_account: dict[int, set[str]] = {}
        self.get: Callable[[str], OrderRecord | None] = self._orders.get  # (the dict's own: one call per order)

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, rec: OrderRecord, client_order_id: str | None = None) -> None:
        """Track ``rec`` (``client_order_id``: its command's, when the caller has it at hand)."""
        coid = client_order_id or rec.cmd.client_order_id or ""
        self._orders[coid] = rec
        open_ids = self._open_by_account.get(rec.account)
        if open_ids is None:
            open_ids = self._open_by_account[rec.account] = set()
        open_ids.add(coid)

    def add_new(self, client_order_ids: list[str], recs: list[OrderRecord]) -> None:
        """Track new open ``recs`` under ``client_order_ids`` (the same length), in order: ``add`` for a run of
        accepted orders, with one index update per account (a request's orders are mostly one account's)."""
        if len(recs) <= 1:
            if recs:
                self.add(recs[0], client_order_ids[0])
            return
        self._orders.update(zip(client_order_ids, recs, strict=True))
        a = recs[0].account
        if all(r.account == a for r in recs):
            by_account = [(a, client_order_ids)]
        else:
            groups: dict[int, list[str]] = {}
            for r, coid in zip(recs, client_order_ids, strict=True):
                groups.setdefault(r.account, []).append(coid)
            by_account = list(groups.items())
        for a, coids in by_account:
            open_ids = self._open_by_account.get(a)
            if open_ids is None:
                open_ids = self._open_by_account[a] = set()
            open_ids.update(coids)

    def open_orders(self, account: int) -> list[OrderRecord]:
        return [self._orders[c] for c in sorted(self._open_by_account.get(account, ()))]

    def mark(self, rec: OrderRecord, kind: OrderEventKind, now_ns: int) -> Change:
        """One event of ours (``cancel_sent``, ``outcome_unknown``) applied to ``rec``."""
        before = rec.status
        rec.status = next_status(before, kind, filled=rec.filled > 0, order=rec.client_order_id)
        rec.updated_ns = now_ns
        self._reindex(rec)
        return Change(before, rec.status, None)

    def apply(self, rec: OrderRecord, ev: OrderEvent, fill_units: int) -> Change:
        """Fold a venue event into ``rec``. ``fill_units`` is ``ev.fill.qty`` in quantity units (0 if none)."""
        before = rec.status
        after = next_status(before, ev.kind, filled=rec.filled > 0 or ev.fill is not None, order=rec.client_order_id)
        new_fill = None
        if ev.fill is not None and ev.fill.trade_id not in rec.trade_ids:
            rec.add_trade(ev.fill.trade_id)
            rec.filled += fill_units
            new_fill = ev.fill
        rec.status = after
        if ev.venue_order_id and rec.venue_order_id is None:
            rec.venue_order_id = ev.venue_order_id
        rec.updated_ns = ev.event_ns
        self._reindex(rec)
        return Change(before, after, new_fill)

    def close(self, rec: OrderRecord) -> None:
        """Drop a finished record from the open index (an order adopted already finished)."""
        self._reindex(rec)

    def __iter__(self):
        return iter(self._orders.values())

    def _reindex(self, rec: OrderRecord) -> None:
        if not rec.is_open:
            self._open_by_account.get(rec.account, set()).discard(rec.client_order_id)
