"""Reconciliation: at start and after every reconnect, before trading, make the daemon agree with the venue.

For each account and market (a ``ReconcileTarget``: its ``ExecutionClient`` and the symbols it trades),
``Reconciler.account`` does, in this order:

1. **Orders** (the venue's snapshot ``ts_orders``): the venue's open orders on the target's symbols (one
   request per symbol where that is cheaper than one for all: Binance weighs 6 per symbol against 80). Every
   open order the gateway does not know is *adopted* with its real client order id, status and filled
   quantity (``OrderGateway.adopt``: it holds its risk reservation). Every order some source still believes
   open but the venue does not list (the gateway's open records, the stream's last event per order, the live
   state's open orders, and ``pending``: placements whose answer never came) is looked up **by its client
   order id** and takes the venue's status; it is never re-sent. An order the venue does not find is left
   alone while it is younger than ``grace_s`` (a venue may briefly not know an order it has just
   acknowledged), looked up again once that has passed, and only then ends (``not_found``: rejected if it was
   never acknowledged, cancelled if it was).
2. **Balances and positions** (snapshot ``ts_state``) into the kernel state (``stream.reconcile_state``) and
   the KV live state.
3. **Fills** since the last one in JetStream (``stream.reconcile_history``), per symbol; with no fill in the
   stream, since ``lookback_s``. A fill the stream lacks is published (its ``Nats-Msg-Id`` is its trade id,
   so a replay is stored once) and folded into its order; fills up to ``ts_state`` are already in the
   positions snapshot and only update their order, later ones move the positions kernel too.

Events are published only where the stream's view differs: an order's event when the stream's last event
of that order has another status or filled quantity, balances and positions when the live state holds
other values. So a restart against an unchanged exchange publishes nothing at all.

``Reconciler.run(targets)`` reconciles many accounts at once with bounded concurrency (``concurrency``
accounts in flight, one account's markets in sequence), every venue call paced by ``WeightPacer`` within
``weight_share`` of the IP's weight budget; one account's failure is reported and logged, and the others go
on. It ends by waiting until JetStream has acknowledged every event it published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from oms.bus import EventPublisher, LiveState
from oms.model import (
    AccountId,
    Balance,
    BalanceEvent,
    Market,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    Position,
    PositionEvent,
)
from oms.model.units import to_decimal
from oms.venues.errors import OrderNotFound, VenueError
from oms.venues.interface import ExecutionClient
from stream.coin_cash import CoinCash
from stream.gateway import OrderGateway
from stream.orders import TERMINAL
from stream.reconcile_history import AccountHistory, LastFills, OrderHistory
from stream.reconcile_pacing import WeightPacer, expected_weight
from stream.reconcile_state import CASH_ASSETS, KernelSync

log = logging.getLogger("stream.reconcile")
MS = 1_000_000
STATUS_KIND = {
    OrderStatus.NEW: OrderEventKind.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderEventKind.PARTIAL_FILL,
    OrderStatus.FILLED: OrderEventKind.FILL,
    OrderStatus.CANCELED: OrderEventKind.CANCELED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
    OrderStatus.REJECTED: OrderEventKind.REJECTED,
}
_UNSETTLED = frozenset({OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN})


@dataclass(frozen=True)
class ReconcileTarget:
    """One account on one market. ``pending``: (symbol, client order id) of placements whose outcome is not
    known (the daemon's own record of what it sent); ``cash_assets``: the account's cash (``AccountConfig``)."""

    execution: ExecutionClient
    symbols: tuple[str, ...]
    pending: tuple[tuple[str, str], ...] = ()
    cash_assets: tuple[str, ...] = CASH_ASSETS

    @property
    def account(self) -> AccountId:
        return self.execution.context.account

    @property
    def market(self) -> Market:
        return self.execution.context.market


@dataclass
class ReconcileReport:
    account: str
    market: str
    adopted: list[str] = field(default_factory=list)  # client order ids taken over
    resolved: dict[str, str] = field(default_factory=dict)  # client order id -> status found on the venue
    deferred: list[str] = field(default_factory=list)  # still not found after the grace window
    fills_new: int = 0  # fills the stream lacked (published)
    fills_known: int = 0  # fills the stream already had
    events: int = 0  # events published
    published: dict[str, int] = field(default_factory=dict)  # by event type
    calls: int = 0  # venue calls made
    duration_s: float = 0.0
    error: str = ""
    balances: list[Balance] = field(default_factory=list)  # as the venue stated them
    positions: list[Position] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class _Run:
    """One account's reconciliation in progress."""

    target: ReconcileTarget
    report: ReconcileReport
    history: OrderHistory
    venue_orders: dict[str, Order] = field(default_factory=dict)  # client order id -> venue's view
    events: list[msgspec.Struct] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        gateway: OrderGateway,
        js: JetStreamContext,
        publisher: EventPublisher,
        live_state: LiveState | None = None,
        *,
        pacer: WeightPacer | None = None,
        concurrency: int = 16,
        lookback_s: float = 86_400.0,
        grace_s: float = 5.0,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], object] = asyncio.sleep,
        emit: Callable[[msgspec.Struct], Awaitable[object]] | None = None,
        flush_timeout_s: float = 30.0,
        coins: CoinCash | None = None,
    ):
        """``emit`` publishes one event (default ``publisher.publish``; the daemon passes its sink, which also
        writes the daily files and counts); ``publisher.flush`` is awaited at the end of ``run``; ``coins``
        values the cash of accounts whose cash is a coin (``stream.coin_cash``; the daemon's risk controls')."""
        if concurrency < 1:
            raise ValueError(f"reconciliation concurrency must be >= 1 (got {concurrency})")
        self.gateway = gateway
        self.js = js
        self.publisher = publisher
        self.live = live_state
        self.pacer = pacer or WeightPacer()
        self.concurrency = concurrency
        self.lookback_ns = int(lookback_s * 1e9)
        self.grace_ns = int(grace_s * 1e9)
        self.clock = clock
        self.sleep = sleep
        self.kernel = KernelSync(gateway.state, gateway.instruments, coins)
        self.failures = 0
        self.emit = emit or publisher.publish
        self.flush_timeout_s = flush_timeout_s

    # ------------------------------------------------------------------ many accounts
    async def run(self, targets: Iterable[ReconcileTarget]) -> list[ReconcileReport]:
        """Reconcile every target (see the module docstring); one report per target, in the given order."""
        targets = list(targets)
        by_account: dict[str, list[int]] = {}
        for k, t in enumerate(targets):
            by_account.setdefault(str(t.account), []).append(k)
        reports: list[ReconcileReport | None] = [None] * len(targets)
        sem = asyncio.Semaphore(self.concurrency)

        async def one_account(indices: list[int]) -> None:
            async with sem:
                for k in indices:  # an account's markets share its live-state keys: one after the other
                    reports[k] = await self.account(targets[k])

        await asyncio.gather(*(one_account(ix) for ix in by_account.values()))
        if not await self.publisher.flush(timeout_s=self.flush_timeout_s):
            log.warning("reconcile: some events wait in the outbox (JetStream unavailable); they follow")
        return [r for r in reports if r is not None]

    # ------------------------------------------------------------------ one account
    async def account(self, target: ReconcileTarget) -> ReconcileReport:
        """Reconcile one account on one market; failures are reported (``report.error``), never raised."""
        t0 = time.perf_counter()
        report = ReconcileReport(str(target.account), target.market.value)
        try:
            await self._account(target, report)
        except (VenueError, OSError, TimeoutError, ValueError) as exc:
            self.failures += 1
            report.error = f"{type(exc).__name__}: {exc}"
            log.error("reconciliation of %s %s failed: %s", target.account, target.market.value, report.error)
        report.duration_s = time.perf_counter() - t0
        return report

    async def _account(self, t: ReconcileTarget, report: ReconcileReport) -> None:
        ex, acct, market = t.execution, t.account, t.market
        kv_orders = await self._kv(acct, "open_orders", list[Order])
        open_orders = await self._open_orders(t, report)
        now = self.clock()
        since = min([now - self.lookback_ns, *(o.created_ns for o in open_orders if o.created_ns)])
        since = min([since, *(o.created_ns for o in kv_orders if o.created_ns and _market(o.symbol) is market)])
        try:
            hist = await AccountHistory(self.js, acct, market).order_states(since)
        except (NatsError, TimeoutError) as exc:  # the events go to the outbox; their ids dedupe the replay
            log.warning("reconcile %s: JetStream history unreadable (%s): treating it as empty", acct, exc)
            hist = OrderHistory()
        run = _Run(t, report, hist, {o.client_order_id: o for o in open_orders})
        await self._settle_missing(run, kv_orders)
        ts_orders = _venue_now(ex)
        for order in run.venue_orders.values():
            self._order_into_gateway(run, order)

        balances = await self._call(t, report, "balances", ex.balances())
        positions = await self._call(t, report, "positions", ex.positions()) if market is Market.USDM else []
        ts_state = _venue_now(ex)
        report.balances, report.positions = list(balances), list(positions)
        a = self.gateway.accounts[acct.exchange, acct.name]
        self.kernel.apply(a, acct.exchange, market, balances, positions, t.cash_assets)
        await self._state_events(run, balances, positions, ts_state)

        symbols = sorted({*t.symbols, *(o.symbol for o in run.venue_orders.values())})
        for symbol in symbols:
            await self._fills(run, symbol, ts_orders, ts_state)

        await self._put_open_orders(run, kv_orders)
        for ev in run.events:
            await self.emit(ev)
            report.published[type(ev).__name__] = report.published.get(type(ev).__name__, 0) + 1
        report.events = len(run.events)

    # ------------------------------------------------------------------ orders
    async def _open_orders(self, t: ReconcileTarget, report: ReconcileReport) -> list[Order]:
        ex, market = t.execution, t.market
        per_symbol = expected_weight(ex.metadata, market, "open_orders")
        if t.symbols and len(t.symbols) * per_symbol < expected_weight(ex.metadata, market, "open_orders_all"):
            out: list[Order] = []
            for symbol in t.symbols:
                out.extend(await self._call(t, report, "open_orders", ex.open_orders(symbol)))
            return out
        return await self._call(t, report, "open_orders_all", ex.open_orders())

    async def _settle_missing(self, run: _Run, kv_orders: Sequence[Order]) -> None:
        """Look up by client order id every order believed open somewhere that the venue does not list."""
        t, market = run.target, run.target.market
        acct = str(t.account)
        believed: dict[str, tuple[str, int]] = {}  # coid -> (symbol, last heard of, ns)
        for rec in self.gateway.orders:
            if rec.cmd.account == acct and rec.is_open and _market(rec.cmd.symbol) is market:
                believed[rec.client_order_id] = (rec.cmd.symbol, rec.updated_ns)
        for coid, ev in run.history.last.items():
            if ev.status not in TERMINAL and coid not in believed:
                believed[coid] = (ev.symbol, ev.event_ns)
        for o in kv_orders:
            if o.status not in TERMINAL and _market(o.symbol) is market and o.client_order_id not in believed:
                believed[o.client_order_id] = (o.symbol, o.updated_ns or o.created_ns)
        for symbol, coid in t.pending:
            believed.setdefault(coid, (symbol, self.clock()))
        missing = {c: v for c, v in believed.items() if c not in run.venue_orders}
        waiting: dict[str, tuple[str, int]] = {}
        for coid, (symbol, heard_ns) in missing.items():
            found = await self._query(run, symbol, coid)
            if found is None:
                waiting[coid] = (symbol, heard_ns)
        if not waiting:
            return
        # Not found: an order heard of within the grace window may be one the venue does not show yet.
        last_heard = max(heard for _, heard in waiting.values())
        pause = (last_heard + self.grace_ns - self.clock()) / 1e9
        if pause > 0:
            await self.sleep(pause)
        for coid, (symbol, _) in waiting.items():
            if await self._query(run, symbol, coid) is None:
                self._not_found(run, symbol, coid)

    async def _query(self, run: _Run, symbol: str, coid: str) -> Order | None:
        try:
            order = await self._call(run.target, run.report, "query", run.target.execution.query_order(symbol, coid))
        except OrderNotFound:
            return None
        run.venue_orders[coid] = order
        run.report.resolved[coid] = order.status.value
        return order

    def _not_found(self, run: _Run, symbol: str, coid: str) -> None:
        """The venue has no such order after the grace window: it ends without fills."""
        rec = self.gateway.orders.get(coid)
        last = run.history.last.get(coid)
        status = rec.status if rec is not None else (last.status if last is not None else OrderStatus.PENDING_NEW)
        acknowledged = status not in _UNSETTLED
        kind = OrderEventKind.CANCELED if acknowledged else OrderEventKind.NOT_FOUND
        final = OrderStatus.CANCELED if acknowledged else OrderStatus.REJECTED
        ev = OrderEvent(
            account=str(run.target.account), symbol=symbol, client_order_id=coid,
            venue_order_id=rec.venue_order_id if rec is not None else None, kind=kind, status=final,
            reason="not found on the venue by its client order id after the grace window", event_ns=self.clock(),
        )  # fmt: skip
        run.report.resolved[coid] = final.value
        run.report.deferred.append(coid)
        if rec is not None:
            self.gateway.on_order_event(ev)
        if last is None or last.status is not final:
            run.events.append(ev)

    def _order_into_gateway(self, run: _Run, order: Order) -> None:
        """The venue's view of one order into the gateway, and its event where the stream's view differs."""
        rec = self.gateway.orders.get(order.client_order_id)
        if rec is None:
            try:
                self.gateway.adopt(order)
            except ValueError as exc:
                log.warning("reconcile %s: %s", run.target.account, exc)
                return
            run.report.adopted.append(order.client_order_id)
        elif rec.status is not order.status:
            kind = STATUS_KIND.get(order.status)
            if kind is not None:
                self.gateway.on_order_event(_event(order, kind), positions=False)
                run.report.resolved[order.client_order_id] = rec.status.value
        last = run.history.last.get(order.client_order_id)
        if last is None or last.status is not order.status or last.filled_qty != order.filled_qty:
            kind = STATUS_KIND.get(order.status)
            if kind is not None:
                run.events.append(_event(order, kind))

    async def _put_open_orders(self, run: _Run, kv_orders: Sequence[Order]) -> None:
        if self.live is None:
            return
        market = run.target.market
        keep = [o for o in kv_orders if _market(o.symbol) is not market]
        mine = sorted((o for o in run.venue_orders.values() if o.status not in TERMINAL), key=_order_key)
        new = sorted([*keep, *mine], key=_order_key)
        if [_order_key(o) + (o.status, o.filled_qty) for o in new] != [
            _order_key(o) + (o.status, o.filled_qty) for o in sorted(kv_orders, key=_order_key)
        ]:
            await self.live.put(run.target.account, "open_orders", new)

    # ------------------------------------------------------------------ balances and positions
    async def _state_events(self, run: _Run, balances: list[Balance], positions: list[Position], ts_ns: int) -> None:
        acct, market = run.target.account, run.target.market
        kv_bal = await self._kv(acct, "balances", list[Balance])
        others = [b for b in kv_bal if b.market is not market]
        if _balance_view(market, (b for b in kv_bal if b.market is market)) != _balance_view(market, balances):
            run.events.append(
                BalanceEvent(
                    account=str(acct),
                    market=market,
                    balances=tuple(sorted(balances, key=lambda b: b.asset)),
                    reason="reconcile",
                    event_ns=ts_ns,
                )  # fmt: skip
            )
            if self.live is not None:
                await self.live.put(acct, "balances", [*others, *balances])
        if market is not Market.USDM:
            return
        kv_pos = await self._kv(acct, "positions", list[Position])
        others_p = [p for p in kv_pos if _market(p.symbol) is not market]
        if _position_view(p for p in kv_pos if _market(p.symbol) is market) != _position_view(positions):
            run.events.append(
                PositionEvent(
                    account=str(acct),
                    positions=tuple(sorted(positions, key=_position_key)),
                    reason="reconcile",
                    event_ns=ts_ns,
                )  # fmt: skip
            )
            if self.live is not None:
                await self.live.put(acct, "positions", [*others_p, *positions])

    # ------------------------------------------------------------------ fills
    async def _fills(self, run: _Run, symbol: str, ts_orders: int, ts_state: int) -> None:
        t = run.target
        try:
            last = await AccountHistory(self.js, t.account, t.market).last_fills(symbol)
        except (NatsError, TimeoutError) as exc:
            log.warning("reconcile %s: JetStream fills unreadable (%s): treating them as absent", t.account, exc)
            last = LastFills()
        since = last.event_ns if last.event_ns >= 0 else self.clock() - self.lookback_ns
        fills = await self._call(t, run.report, "fills", t.execution.fills(symbol, since))
        names = self._names(run)
        adopted = set(run.report.adopted)
        for f in fills:
            coid = names.get(f.venue_order_id, f.client_order_id) if f.client_order_id == f.venue_order_id else None
            if coid is not None and coid != f.client_order_id:
                f = msgspec.structs.replace(f, client_order_id=coid)
            if last.is_new(f):
                run.report.fills_new += 1
                run.events.append(f)
            else:
                run.report.fills_known += 1
            rec = self.gateway.orders.get(f.client_order_id)
            if rec is None:
                continue
            if rec.client_order_id in adopted and f.event_ns <= ts_orders:
                rec.add_trade(f.trade_id)  # already in the filled quantity it was adopted with
                continue
            filled_after = rec.filled + _units(self.gateway, rec.instrument, f.qty)
            kind = OrderEventKind.FILL if filled_after >= rec.qty else OrderEventKind.PARTIAL_FILL
            status = OrderStatus.FILLED if kind is OrderEventKind.FILL else OrderStatus.PARTIALLY_FILLED
            ev = OrderEvent(
                account=f.account, symbol=f.symbol, client_order_id=f.client_order_id,
                venue_order_id=f.venue_order_id, kind=kind, status=status, fill=f, event_ns=f.event_ns,
            )  # fmt: skip
            self.gateway.on_order_event(ev, positions=f.event_ns > ts_state)

    def _names(self, run: _Run) -> dict[str, str]:
        """Venue order id -> client order id, from everything this reconciliation knows."""
        names = dict(run.history.by_venue_id)
        for rec in self.gateway.orders:
            if rec.venue_order_id:
                names[rec.venue_order_id] = rec.client_order_id
        for o in run.venue_orders.values():
            if o.venue_order_id:
                names[o.venue_order_id] = o.client_order_id
        return names

    # ------------------------------------------------------------------ plumbing
    async def _call(self, t: ReconcileTarget, report: ReconcileReport, call: str, coro):
        weight = expected_weight(t.execution.metadata, t.market, call)
        try:
            async with self.pacer.call(t.execution.context.limiter, weight):
                report.calls += 1
                return await coro
        except BaseException:
            coro.close()  # never awaited if the pacer raised: no "never awaited" warning
            raise

    async def _kv(self, acct: AccountId, kind: str, type_: type) -> list:
        if self.live is None:
            return []
        try:
            return list(await self.live.get(acct, kind, type_) or [])
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            log.warning("reconcile %s: live state %s is unreadable (%s): treated as empty", acct, kind, exc)
            return []


def _venue_now(ex: ExecutionClient) -> int:
    """The venue's time now (fills carry the venue's timestamps), in ns."""
    return int(ex.context.clock.server_time_ms()) * MS


def _market(symbol: str) -> Market:
    return Market.USDM if ":" in symbol else Market.SPOT


def _units(gw: OrderGateway, instrument: int, qty: str) -> int:
    return gw.instruments.instrument(instrument)[1].qty(qty, "fill quantity")


def _event(order: Order, kind: OrderEventKind) -> OrderEvent:
    """The event the venue's view of an order stands for, from its content only (a deterministic message
    id: the same view published again is stored once)."""
    return OrderEvent(
        account=order.account, symbol=order.symbol, client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id, kind=kind, status=order.status, side=order.side,
        order_type=order.order_type, qty=order.qty, price=order.price, filled_qty=order.filled_qty,
        avg_price=order.avg_price, reason="reconciled", event_ns=order.updated_ns or order.created_ns,
    )  # fmt: skip


def _order_key(o: Order) -> tuple[str, str]:
    return (o.symbol, o.client_order_id)


def _position_key(p: Position) -> tuple[str, str]:
    return (p.symbol, p.position_side.value)


def _balance_view(market: Market, balances: Iterable[Balance]) -> list[tuple[str, ...]]:
    """What makes two balance snapshots equal: Spot free and locked; USD-M the wallet balance only (its free
    part, the available balance, moves with every mark price through the unrealised PnL)."""
    out = []
    for b in balances:
        free, locked = to_decimal(b.free, "free"), to_decimal(b.locked, "locked")
        if not free and not locked:
            continue  # an emptied asset: the venue omits it, a stream update may list it as 0
        if market is Market.USDM:
            out.append((b.asset, str((free + locked).normalize())))
        else:
            out.append((b.asset, str(free.normalize()), str(locked.normalize())))
    return sorted(out)


def _position_view(positions: Iterable[Position]) -> list[tuple[str, str, str]]:
    """What makes two position snapshots equal: symbol, side and quantity (the entry price moves only with a
    fill, and the live state's may be the kernel's rounding of it)."""
    return sorted(
        (p.symbol, p.position_side.value, str(to_decimal(p.qty, "qty").normalize())) for p in positions if p.qty
    )
