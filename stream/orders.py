"""The daemon's orders: every order it placed or adopted, keyed by client order id, folded from events.

An ``OrderRecord`` is the live view of one order: its command, kernel numbers (account, instrument, side,
position side, in units), status, cumulative fill, and the trade ids already applied (so a fill reported
twice, by the stream and by REST, counts once). ``OrderTracker.apply`` runs one venue event through the
model's status machine (``oms.model.status``): it returns what changed (the new status, the new fill if any),
or raises ``IllegalTransition`` leaving the record as it was.

**A bounded memory of finished orders.** The daemon runs for months and a quoting strategy places millions of orders a
day (a record and its command are 0.5-1 KB): an order that finished (``TERMINAL``: filled, canceled, rejected,
expired) is kept ``retention_s`` after it finished (stream.yaml ``daemon.finished_order_retention_s``, 1 h by
default), and beyond ``max_finished`` finished records (``daemon.finished_orders_max``, 100,000) the oldest finished
go first, whatever their age (those younger than the window counted in ``forgotten_early``). Open orders are never
forgotten. The finished are queued in the order they finished (a deque of records, each queued once: a terminal order
that takes another event, a late fill of a canceled order, stays where it was); every ``sweep_every`` finishes the
queue's old end is popped while it is past the window or over the cap, so the cost per order is amortised O(1) and
nothing scans the open orders. Between two sweeps up to ``sweep_every - 1`` more finished records are held; the window
is a minimum (a daemon that stops finishing orders keeps the last ones). Whoever keeps something per order elsewhere
registers in ``forget_listeners`` (``(client order id, record)`` per forgotten order: the gateway's pending amends,
the hosted strategies' maps and delivered trade ids).

What forgetting means:

* **Idempotency.** A command whose client order id (derived from the command: a retry or replay yields the same id)
  belongs to a forgotten order is no longer answered as known: it is placed again. A restart already forgets the same
  way: reconciliation (``stream.reconcile``) adopts only the venue's open orders and the orders some source still
  believes open (the stream's last event, the live state's open orders, unsettled placements), looked up by client
  order id; an order whose finish JetStream already holds is not in the new daemon's tracker, and its command would be
  placed again too. So the window only has to outlast retries and replays of a command (seconds), as the restart's
  memory does. An open order is never forgotten, and the venue refuses a second order with the client order id of an
  open one.
* **Late venue events.** An event for a forgotten order is dropped as ``unknown_order`` (counted, logged), as for any
  order the daemon does not know. The events that can follow an order's finish are the race of the user stream with a
  REST answer (a placement's fills, a cancel crossing the last fill: within the request's timeout, ``rest_timeout_s``
  10 s, the window's minimum in stream.yaml) and reconciliation's fills after a gap, which fold only into orders the
  tracker has: reconciliation publishes the fills of orders it does not know where JetStream lacks them (newer than the
  subject's last fill, ``LastFills.is_new``) and skips them for the positions, which come from the venue's snapshot
  and hold every fill up to it. The window must outlast the first, a late fill within it
  reaches the positions (tests/stream/test_orders_retention.py); after a user-stream gap the snapshot carries any fill
  of a forgotten order into the positions. The cap can forget an order sooner than the window under a flood of orders
  (``max_finished`` / finishes per second: 100,000 at 100 a second is 1,000 s, far beyond the REST race);
  ``forgotten_early`` counts those. (The Binance connector already keeps only the last 20,000 closed orders of each
  account and market, ``oms.venues.binance.tracker`` ``keep_closed``, and drops a user-stream event of any other as
  ``untracked`` before the gateway sees it.)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from oms.model import Fill, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder, next_status

log = logging.getLogger("stream.orders")

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
    finished_ns: int = 0  # when it finished, on the tracker's clock (monotonic); 0 while open

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


RETENTION_S = 3600.0  # stream.yaml daemon.finished_order_retention_s
MAX_FINISHED = 100_000  # stream.yaml daemon.finished_orders_max
SWEEP_EVERY = 64  # finishes between two sweeps of the finished queue


class OrderTracker:
    """Orders by client order id, with the open ones indexed per account for cancel-all, and the finished ones
    queued by finish for forgetting (see the module docstring)."""

    def __init__(
        self,
        *,
        retention_s: float = RETENTION_S,
        max_finished: int = MAX_FINISHED,
        sweep_every: int = SWEEP_EVERY,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._orders: dict[str, OrderRecord] = {}
        self._open_by_account: dict[int, set[str]] = {}
        self.get: Callable[[str], OrderRecord | None] = self._orders.get  # (the dict's own: one call per order)
        self._finished: deque[OrderRecord] = deque()  # finished records, oldest finish first, each once
        self._clock = clock
        self._until_sweep = sweep_every
        self.forget_listeners: list[Callable[[str, OrderRecord], None]] = []
        self.forgotten = 0  # finished records forgotten so far
        self.forgotten_early = 0  # of those, forgotten by the cap before their window had passed
        self.listener_errors = 0  # forget listeners that raised (logged; the order is forgotten all the same)
        self.set_limits(retention_s, max_finished, sweep_every)

    def set_limits(self, retention_s: float, max_finished: int, sweep_every: int = SWEEP_EVERY) -> None:
        """How long a finished order is kept (seconds), how many finished are kept at most, and how many finishes
        pass between two sweeps. Raises ``ValueError`` for a negative window, or a cap or period below 1."""
        if not retention_s >= 0:
            raise ValueError(f"finished order retention must be >= 0 seconds (got {retention_s!r})")
        if max_finished < 1 or sweep_every < 1:
            raise ValueError(f"finished orders max and sweep period must be >= 1 (got {max_finished}, {sweep_every})")
        self.retention_ns = int(retention_s * 1e9)
        self.max_finished = max_finished
        self.sweep_every = sweep_every
        self._until_sweep = min(self._until_sweep, sweep_every)

    @property
    def finished(self) -> int:
        """Finished records held (queued for forgetting)."""
        return len(self._finished)

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

    def sweep(self) -> int:
        """Forget the finished records past the window or over the cap, oldest finish first; returns how many."""
        self._until_sweep = self.sweep_every
        q, orders = self._finished, self._orders
        horizon = self._clock() - self.retention_ns
        n = 0
        while q:
            rec = q[0]
            over = len(q) > self.max_finished
            if not over and rec.finished_ns > horizon:
                break
            q.popleft()
            coid = rec.cmd.client_order_id or ""
            if rec.status not in TERMINAL:  # (an open record is never queued: kept, whatever happened to it)
                rec.finished_ns = 0
                continue
            if orders.get(coid) is rec:
                del orders[coid]
            n += 1
            if rec.finished_ns > horizon:
                self.forgotten_early += 1
            for listener in self.forget_listeners:
                try:
                    listener(coid, rec)
                except Exception:  # a listener's bug must not stop the event that swept (nor the sweep)
                    self.listener_errors += 1
                    if self.listener_errors <= 5 or self.listener_errors % 1000 == 0:
                        log.exception("forgetting order %s: listener %r failed", coid, listener)
        self.forgotten += n
        return n

    def _reindex(self, rec: OrderRecord) -> None:
        if rec.status in TERMINAL:
            self._open_by_account.get(rec.account, set()).discard(rec.client_order_id)
            if not rec.finished_ns:  # its first finish: queued once
                rec.finished_ns = self._clock() or 1
                self._finished.append(rec)
                self._until_sweep -= 1
                if self._until_sweep <= 0:
                    self.sweep()
