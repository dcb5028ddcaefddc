"""The user-data stream over ccxt.pro: orders, fills, balances and positions as model events, gap-free.

Four ccxt.pro watchers (``watch_orders``, ``watch_my_trades``, ``watch_balance``, ``watch_positions`` on
futures) feed one queue. The stream keeps the last known state of every order and the ids of the fills it
has delivered, so what a watcher repeats (a reconnect replays, REST and stream both report) is dropped as a
duplicate, and an order's event kind comes from what changed (``parse.event_kind``).

After a connection error, ccxt.pro re-subscribes on the next watch call; the stream waits until the
connections are up again and then takes a REST snapshot (open orders, every order it believed open, fills
since the last one it saw, balances, positions): whatever happened during the gap is delivered as events,
and anything the resubscribed stream also reports is a duplicate. The same reconciliation runs when the
stream has been silent for ``silence_s`` while orders are open (a stream can die without an error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

from oms.model import BalanceEvent, Fill, Market, Order, OrderEvent, PositionEvent
from oms.venues.ccxt import parse
from oms.venues.ccxt.execution import CcxtExecution
from oms.venues.ccxt.streams import GAP, RECONNECTABLE, Backoff, StreamStats

log = logging.getLogger(__name__)

UserEvent = OrderEvent | Fill | BalanceEvent | PositionEvent


class CcxtUserStream:
    def __init__(
        self,
        exchange: Any,
        account: str,
        market: Market,
        execution: CcxtExecution,
        stats: StreamStats,
        silence_s: float = 30.0,
    ) -> None:
        self.exchange = exchange
        self.account = account
        self.market = market
        self.execution = execution
        self.stats = stats
        self.silence_s = silence_s
        self.orders: dict[str, Order] = {}
        self.fill_keys: set[tuple[str, str]] = set()
        self.last_fill_ns = 0
        self.reconciles = 0
        self._queue: asyncio.Queue[UserEvent] = asyncio.Queue()
        self._need_reconcile = asyncio.Event()
        self._last_event = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()  # set once every watcher has had its first subscription attempt

    # --- public ------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[UserEvent]:
        """Model events until the consumer stops; starts the watchers on first use."""
        if not self._tasks:
            self.start()
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self.stop()

    def start(self) -> None:
        watchers: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]]] = [
            ("orders", self.exchange.watch_orders, self._on_orders),
            ("fills", self.exchange.watch_my_trades, self._on_trades),
            ("balance", self.exchange.watch_balance, self._on_balance),
        ]
        if self.market is Market.USDM:
            watchers.append(("positions", self.exchange.watch_positions, self._on_positions))
        self._tasks = [asyncio.ensure_future(self._watch(*w)) for w in watchers]
        self._tasks.append(asyncio.ensure_future(self._reconciler()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def track(self, order: Order) -> None:
        """Tell the stream about an order we placed or queried (so a gap's reconciliation looks it up)."""
        prev = self.orders.get(order.client_order_id)
        if prev is None or Decimal(order.filled_qty) >= Decimal(prev.filled_qty):
            self.orders[order.client_order_id] = order

    # --- watchers ----------------------------------------------------------------------------------

    async def _watch(
        self, name: str, call: Callable[[], Awaitable[Any]], handle: Callable[[Any], Awaitable[None]]
    ) -> None:
        backoff = Backoff()
        stream = f"user {name}"
        while True:
            try:
                got = await call()
            except GAP as exc:
                self.stats.gaps[stream] += 1
                log.warning("%s %s: gap (%s): reconciling over REST", self.account, stream, exc)
                self._need_reconcile.set()
                continue
            except RECONNECTABLE as exc:
                self.stats.reconnects[stream] += 1
                log.warning("%s %s: %s: re-subscribing, then reconciling over REST", self.account, stream, exc)
                self._need_reconcile.set()
                await backoff.wait()
                continue
            backoff.reset()
            self._last_event = time.monotonic()
            try:
                await handle(got)
            except Exception as exc:  # one bad structure must not end the stream
                self.stats.drop(self.account, stream, exc)

    def _emit(self, event: UserEvent, stream: str) -> None:
        self.stats.events[stream] += 1
        self._queue.put_nowait(event)

    def _apply_order(self, now: Order, stream: str) -> None:
        prev = self.orders.get(now.client_order_id)
        if prev is not None and Decimal(now.filled_qty) < Decimal(prev.filled_qty):
            self.stats.dropped[f"{stream}: stale"] += 1  # an older state arriving late
            return
        kind = parse.event_kind(prev, now)
        self.orders[now.client_order_id] = now
        if kind is None:
            self.stats.dropped[f"{stream}: duplicate"] += 1
            return
        self._emit(parse.order_event(now, kind, time.time_ns()), stream)

    async def _on_orders(self, orders: Any) -> None:
        for o in orders or ():
            try:
                now = self.execution._order(o)
            except parse.BadValue as exc:
                self.stats.drop(self.account, "user orders", exc)
                continue
            self._apply_order(now, "user orders")

    async def _apply_trade(self, t: Any, stream: str) -> None:
        key = (str(t.get("symbol")), str(t.get("id")))
        if key in self.fill_keys:
            self.stats.dropped[f"{stream}: duplicate"] += 1
            return
        cid = await self.execution.client_order_id_for(str(t.get("symbol")), str(t.get("order")))
        if cid is None:
            self.stats.dropped[f"{stream}: unknown order"] += 1
            log.warning("%s %s: fill %s of an order the venue does not name", self.account, stream, key)
            return
        fill = parse.fill(self.account, t, cid, time.time_ns())
        self.fill_keys.add(key)
        self.last_fill_ns = max(self.last_fill_ns, fill.event_ns)
        self._emit(fill, stream)

    async def _on_trades(self, trades: Any) -> None:
        for t in trades or ():
            try:
                await self._apply_trade(t, "user fills")
            except parse.BadValue as exc:
                self.stats.drop(self.account, "user fills", exc)

    async def _on_balance(self, b: Any) -> None:
        now = time.time_ns()
        balances = parse.balances(self.account, self.market, b, now)
        self._emit(
            BalanceEvent(account=self.account, market=self.market, balances=balances, event_ns=now, recv_ns=now),
            "user balance",
        )

    async def _on_positions(self, rows: Any) -> None:
        positions = tuple(parse.position(self.account, p) for p in rows or () if p.get("symbol"))
        if positions:
            now = time.time_ns()
            self._emit(
                PositionEvent(account=self.account, positions=positions, event_ns=now, recv_ns=now), "user positions"
            )

    # --- reconciliation ----------------------------------------------------------------------------

    async def _connected(self, timeout: float = 10.0) -> None:
        """Wait until every ccxt.pro connection of this exchange is open again (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            clients = list((getattr(self.exchange, "clients", None) or {}).values())
            pending = [c for c in clients if not c.connected.done() or c.closed()]
            if clients and not pending:
                return
            await asyncio.sleep(0.05)

    async def _reconciler(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._need_reconcile.wait(), timeout=self.silence_s)
            except TimeoutError:
                silent = time.monotonic() - self._last_event >= self.silence_s
                if not (silent and any(o.status.is_open for o in self.orders.values())):
                    continue
                self.stats.gaps["user silent"] += 1
            self._need_reconcile.clear()
            await self._connected()
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("%s: REST reconciliation failed (%s); retrying", self.account, exc)
                await asyncio.sleep(0.5)
                self._need_reconcile.set()

    async def reconcile(self) -> None:
        """The REST snapshot: every change since the stream last spoke becomes an event."""
        self.reconciles += 1
        stream = "user reconcile"
        open_now = {o.client_order_id: o for o in await self.execution.open_orders()}
        for o in open_now.values():
            self._apply_order(o, stream)
        for cid, known in list(self.orders.items()):
            if known.status.is_open and cid not in open_now:
                after = await self.execution.query(known.symbol, cid)
                if after is not None:
                    self._apply_order(after, stream)
        symbols = sorted({o.symbol for o in self.orders.values()})
        since = max(0, self.last_fill_ns - 60_000_000_000) if self.last_fill_ns else 0
        for symbol in symbols:
            for t in await self.exchange.fetch_my_trades(symbol, since // parse.MS if since else None):
                await self._apply_trade(t, stream)
        await self._on_balance(await self.exchange.fetch_balance())
        if self.market is Market.USDM:
            await self._on_positions(await self.exchange.fetch_positions())
