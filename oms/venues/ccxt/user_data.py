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

Connection slots: on USD-M the private stream is a connection of its own (ccxt.pro's listenKey socket), so
it holds one of the account's WebSocket connection slots (``RequestBudget.connection``) from its start until it
stops, as the Binance connector's does; on Spot it shares the WebSocket API's connection, whose slot
``ws_orders`` holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt

from oms.keys.provider import Credentials
from oms.model import BalanceEvent, Market, Order, OrderStatus, PositionEvent
from oms.venues.ccxt import parse
from oms.venues.ccxt.execution import CcxtExecution
from oms.venues.ccxt.stream import WatchStream
from oms.venues.ccxt.streams import GAP, RECONNECTABLE, Backoff
from oms.venues.errors import OrderNotFound
from oms.venues.interface import StreamStatus, UserEvent

log = logging.getLogger(__name__)


class CcxtUserStream:
    """``UserDataStream`` of one account and market, on its execution client's ccxt.pro instance."""

    def __init__(self, execution: CcxtExecution, silence_s: float = 30.0) -> None:
        self.execution = execution
        self.account = execution.account
        self.market: Market = execution.market
        self.silence_s = silence_s
        self.dropped: Counter[str] = Counter()
        self.gaps: Counter[str] = Counter()
        self.reconnects: Counter[str] = Counter()
        self.orders: dict[str, Order] = {}  # the last state this stream yielded, per client order id
        self.known: dict[str, str] = {}  # client order id -> symbol of orders placed/queried over REST
        self.symbols: set[str] = set()  # every symbol the account traded on (its fills are reconciled)
        self.fill_keys: set[tuple[str, str]] = set()
        self.last_fill_ns = 0
        self.reconciles = 0
        self.quiet_checks = 0  # silences found to be only quiet (``_only_quiet``)
        self._queue: asyncio.Queue[UserEvent] = asyncio.Queue()
        self._need_reconcile = asyncio.Event()
        self._in_gap = False
        self._last_event = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._stream: WatchStream[UserEvent] | None = None
        self._slot: Any = None
        execution.user_stream = self

    @property
    def exchange(self) -> Any:
        return self.execution.session.exchange

    # --- public ------------------------------------------------------------------------------------

    def events(self) -> WatchStream[UserEvent]:
        """The account's events (see ``UserDataStream``); the watchers start with the stream. The same stream
        on every call while it is open, as the Binance connector does: the daemon subscribes once and waits on
        ``events().ready()``, and a second stream would wait for a subscription the first already made."""
        if self._stream is None or self._stream._closed:
            self._stream = WatchStream("user data", self.execution.session, self._source, (), self.dropped)
        return self._stream

    async def _source(self) -> AsyncIterator[UserEvent]:
        if not self._tasks:
            await self._hold_slot()
            self.start()
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self.stop()

    async def set_credentials(self, creds: Credentials) -> None:
        """The execution client switches the key (and closes the private connections); the watchers then
        re-subscribe with it and a REST snapshot covers the switch."""
        await self.execution.set_credentials(creds)  # a no-op when the execution client has switched already

    async def close(self) -> None:
        await self.stop()

    def start(self) -> None:
        watchers: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]]] = [
            ("orders", lambda: self.exchange.watch_orders(), self._on_orders),
            ("fills", lambda: self.exchange.watch_my_trades(), self._on_trades),
            ("balance", lambda: self.exchange.watch_balance(), self._on_balance),
        ]
        if self.market is Market.USDM:
            watchers.append(("positions", lambda: self.exchange.watch_positions(), self._on_positions))
        self._tasks = [asyncio.ensure_future(self._watch(*w)) for w in watchers]
        self._tasks.append(asyncio.ensure_future(self._reconciler()))

    async def restart(self) -> None:
        """Start the watchers again on the session's current ccxt instance (after a key switch), then
        reconcile over REST what happened meanwhile."""
        if not self._tasks:
            return
        await self.stop()
        await self._hold_slot()
        self.start()
        self._gap("key switch: re-subscribing with the new key")

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        slot, self._slot = self._slot, None
        if slot is not None:
            await slot.__aexit__(None, None, None)

    async def _hold_slot(self) -> None:
        """USD-M: one of the account's connection slots for the private socket (waits for a free one)."""
        limiter = self.execution.session.limiter
        if self.market is Market.USDM and self._slot is None and limiter is not None:
            slot = limiter.connection()
            await slot.__aenter__()
            self._slot = slot

    def track(self, order: Order) -> None:
        """Tell the stream about an order placed or queried over REST, so a gap's reconciliation looks it up
        (the stream still reports the order's own updates: its de-duplication covers only what it yielded)."""
        self.symbols.add(order.symbol)
        if order.status.is_open:
            self.known[order.client_order_id] = order.symbol

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
                self.gaps[stream] += 1
                log.warning("%s %s: gap (%s): reconciling over REST", self.account, stream, exc)
                self._gap(f"{stream}: {exc}")
                continue
            except (*RECONNECTABLE, ccxt.ExchangeClosedByUser) as exc:  # closed: a key switch replaced it
                self.reconnects[stream] += 1
                log.warning("%s %s: %s: re-subscribing, then reconciling over REST", self.account, stream, exc)
                self._gap(f"{stream}: {exc}")
                await backoff.wait()
                continue
            backoff.reset()
            self._last_event = time.monotonic()
            try:
                await handle(got)
            except Exception as exc:  # one bad structure must not end the stream
                self._drop("bad_value", stream, exc)

    def _drop(self, reason: str, stream: str, exc: BaseException | str) -> None:
        self.dropped[reason] += 1
        log.warning("%s %s: dropped (%s): %s", self.account, stream, reason, exc)

    def _emit(self, event: UserEvent, stream: str) -> None:
        self._queue.put_nowait(event)

    def _gap(self, reason: str) -> None:
        if not self._in_gap:
            self._in_gap = True
            self._queue.put_nowait(StreamStatus("gap", reason, time.time_ns()))
        self._need_reconcile.set()

    def _apply_order(self, now: Order, stream: str) -> None:
        if (
            now.status is OrderStatus.CANCELED
            and self.execution.replaced.get(str(now.venue_order_id)) == now.client_order_id
        ):  # the cancel half of a cancel-replace: the client order id lives on in the new venue order
            self.dropped["replaced"] += 1
            return
        prev = self.orders.get(now.client_order_id)
        if prev is not None and Decimal(now.filled_qty) < Decimal(prev.filled_qty):
            self.dropped["stale"] += 1  # an older state arriving late
            return
        kind = parse.event_kind(prev, now)
        self.orders[now.client_order_id] = now
        if kind is None:
            self.dropped["duplicate"] += 1
            return
        self._emit(parse.order_event(now, kind, time.time_ns()), stream)

    async def _on_orders(self, orders: Any) -> None:
        for o in orders or ():
            try:
                now = self.execution._order(o)
            except parse.BadValue as exc:
                self._drop("bad_value", "user orders", exc)
                continue
            self._apply_order(now, "user orders")

    async def _apply_trade(self, t: Any, stream: str) -> None:
        if not t.get("amount"):  # an execution report without a trade (ccxt parses some as zero-size trades)
            self.dropped["empty_fill"] += 1
            return
        key = (str(t.get("symbol")), str(t.get("id")))
        if key in self.fill_keys:
            self.dropped["duplicate"] += 1
            return
        cid = await self.execution.client_order_id_for(str(t.get("symbol")), str(t.get("order")))
        if cid is None:
            self._drop("unknown_order", stream, f"fill {key} of an order the venue does not name")
            return
        fill = parse.fill(self.account, t, cid)  # no receive time: a fill is the venue's fact, equal to REST's
        self.fill_keys.add(key)
        self.last_fill_ns = max(self.last_fill_ns, fill.event_ns)
        self._emit(fill, stream)

    async def _on_trades(self, trades: Any) -> None:
        for t in trades or ():
            try:
                await self._apply_trade(t, "user fills")
            except parse.BadValue as exc:
                self._drop("bad_value", "user fills", exc)

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
            clients = [c for c in (getattr(self.exchange, "clients", None) or {}).values() if hasattr(c, "connected")]
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
                if await self._only_quiet():
                    self._last_event = time.monotonic()
                    continue
                self.gaps["user silent"] += 1
                self._gap("silent while orders are open")
            self._need_reconcile.clear()
            await self._connected()
            if self._in_gap:
                self._queue.put_nowait(StreamStatus("connected", "re-subscribed", time.time_ns()))
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("%s: REST reconciliation failed (%s); retrying", self.account, exc)
                await asyncio.sleep(0.5)
                self._need_reconcile.set()
                continue
            if self._in_gap:
                self._in_gap = False
                self._queue.put_nowait(StreamStatus("resynced", "REST snapshot applied", time.time_ns()))

    async def _only_quiet(self) -> bool:
        """Silent while orders are open, but maybe only quiet (resting orders nobody trades): the venue's open
        orders of each symbol against the last state this stream yielded. The same orders with the same filled
        quantities: nothing was missed (``quiet_checks``) and the watchers carry on. Any difference, or a failed
        check, is a gap with its full REST snapshot (as the Binance connector does: a reconciliation every
        ``silence_s`` per account does not fit 200 accounts into one IP's weight budget)."""
        mine: dict[str, dict[str, Decimal]] = {}
        for cid, o in self.orders.items():
            if o.status.is_open:
                mine.setdefault(o.symbol, {})[cid] = Decimal(o.filled_qty)
        try:
            for symbol, orders in mine.items():
                venue = {o.client_order_id: Decimal(o.filled_qty) for o in await self.execution.open_orders(symbol)}
                if venue != orders:
                    return False
        except Exception as exc:  # the gap's snapshot will say what is wrong
            log.info("%s: user stream silent, and its check failed (%s: %s)", self.account, type(exc).__name__, exc)
            return False
        self.quiet_checks += 1
        return True

    async def reconcile(self) -> None:
        """The REST snapshot: every change since the stream last spoke becomes an event."""
        self.reconciles += 1
        stream = "user reconcile"
        open_now = {o.client_order_id: o for o in await self.execution.open_orders()}
        for o in open_now.values():
            self._apply_order(o, stream)
        believed_open = {cid: o.symbol for cid, o in self.orders.items() if o.status.is_open}
        believed_open.update({cid: s for cid, s in self.known.items() if cid not in self.orders})
        for cid, symbol in believed_open.items():
            if cid not in open_now:
                try:
                    after = await self.execution.query_order(symbol, cid)
                except OrderNotFound:
                    self.known.pop(cid, None)
                    continue
                self._apply_order(after, stream)
        self.known = {cid: s for cid, s in self.known.items() if cid in open_now}
        symbols = sorted({o.symbol for o in self.orders.values()} | set(believed_open.values()) | self.symbols)
        since = max(0, self.last_fill_ns - 60_000_000_000) if self.last_fill_ns else 0
        for symbol in symbols:
            for t in await self.exchange.fetch_my_trades(symbol, since // parse.MS if since else None):
                await self._apply_trade(t, stream)
        await self._on_balance(await self.exchange.fetch_balance())
        if self.market is Market.USDM:
            await self._on_positions(await self.exchange.fetch_positions())
