"""``UserDataStream`` of one Binance account on one market, kept alive and gap-free.

Spot subscribes on the WebSocket API (``userDataStream.subscribe.signature``: python-binance's ``user_socket``,
sharing the connection orders use); USD-M opens a listenKey stream (``futures_user_socket``, which keeps the
key alive every ``keepalive_s``). Frames are decoded into the wire structs, parsed into model events, passed
through the order tracker (shared with the execution client) and yielded; each fill also as a ``Fill``.

Recovery: ``listenKeyExpired``, ``eventStreamTerminated``, a closed socket (python-binance queues an
``{"e": "error"}``), or silence while orders are open (``silence_s``) end the subscription: the stream yields
``StreamStatus("gap")``, subscribes again (``connected``), reconciles from REST from just before the gap (the
open orders' states, the fills in the gap, balances and, on USD-M, positions) and yields ``resynced``. What
the stream had already said is dropped by the tracker, so every trade is applied once. Bad frames, unknown
symbols and over-precise decimals are counted in ``dropped`` and logged; nothing ends the loop but ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec
from binance.exceptions import BinanceAPIException

from oms.keys import Credentials
from oms.model import BalanceEvent, Fill, Market, Order, OrderEvent, OrderEventKind, OrderStatus, PositionEvent
from oms.venues.binance import parse
from oms.venues.binance import wire_user as wu
from oms.venues.binance.client import raw_frames, socket_manager
from oms.venues.binance.execution import BinanceExecution, order_event
from oms.venues.binance.symbols import BadDecimal, UnknownSymbol
from oms.venues.binance.transport import venue_answer, wait_ws_api_reconnected, ws_api_open
from oms.venues.interface import StreamStatus, UserEvent

log = logging.getLogger(__name__)
MS = 1_000_000
GAP_MARGIN_MS = 2_000  # reconcile from this long before the last event seen


class UserEventStream:
    """The ``Stream`` of one account's user events (one consumer)."""

    def __init__(self, owner: BinanceUserData) -> None:
        self._owner = owner
        self.queue: asyncio.Queue[UserEvent] = asyncio.Queue()

    def __aiter__(self) -> UserEventStream:
        return self

    async def __anext__(self) -> UserEvent:
        if self._owner.closed and self.queue.empty():
            raise StopAsyncIteration
        return await self.queue.get()

    async def ready(self) -> None:
        await self._owner.reconciled.wait()

    async def close(self) -> None:
        await self._owner.close()

    @property
    def dropped(self) -> Mapping[str, int]:
        counts = Counter(self._owner.counters)
        counts.update(self._owner.ex.session.tracker.dropped)
        return dict(counts)


class BinanceUserData:
    """One account's user data on one market (``oms.venues.UserDataStream``)."""

    def __init__(self, execution: BinanceExecution) -> None:
        self.ex = execution
        self.s = execution.session
        self.counters: Counter[str] = Counter()  # dropped frames by reason
        self.notices: Counter[str] = Counter()  # subscriptions, recoveries, events with nothing to emit
        self.subscribed = asyncio.Event()
        self.reconciled = asyncio.Event()
        self.closed = False
        self._stream: UserEventStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._rotate = asyncio.Event()
        self._last_ms = 0
        self._sub_ms = 0
        self._gap_since_ms: int | None = None
        self._slot: Any = None
        self.quiet_checks = 0  # silences found to be only quiet (``_only_quiet``)

    # ---- interface -----------------------------------------------------------------------------------------
    def events(self) -> UserEventStream:
        """Start the subscription (once) and return its stream of events."""
        if self._stream is None:
            self._stream = UserEventStream(self)
            self.ex.sinks.append(self._emit)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"user data {self.s.account}")
        return self._stream

    async def set_credentials(self, creds: Credentials) -> None:
        """Spot: subscribe again under the new key (the old subscription ends after the new one is up);
        USD-M: the listenKey is the account's, and its keep-alive is signed with the new key already."""
        self.ex.session.set_key(creds.api_key, creds.secret)
        if self.s.market is Market.SPOT and self._task is not None:
            self.reconciled.clear()
            self._rotate.set()
            await asyncio.wait_for(self.reconciled.wait(), max(10.0, self.s.settings.ws_api_timeout_s * 5))

    async def close(self) -> None:
        self.closed = True
        if self._emit in self.ex.sinks:
            self.ex.sinks.remove(self._emit)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    # ---- the loop --------------------------------------------------------------------------------------------
    def _emit(self, event: Any) -> None:
        if self._stream is None:
            return
        self._stream.queue.put_nowait(event)
        if isinstance(event, OrderEvent) and event.fill is not None:
            self._stream.queue.put_nowait(event.fill)

    def _status(self, kind: str, reason: str = "") -> None:
        if self._stream is not None:
            self._stream.queue.put_nowait(StreamStatus(kind, reason, time.time_ns()))  # type: ignore[arg-type]

    async def _run(self) -> None:
        await self.ex._ready()
        if self.s.settings.open_orders_at_start:
            await self.ex.load_open_orders()
        backoff = 0.1
        sock = None
        while not self.closed:
            try:
                new = await self._open()
                if sock is not None:  # a rotation: the old subscription ends after the new one is up
                    await _close(sock)  # (Spot only: its subscription holds no connection slot)
                sock = new
                self._sub_ms = self.s.server_ms()
                self.notices["subscribed"] += 1
                backoff = 0.1
                self.subscribed.set()
                self._status("connected")
                if self._gap_since_ms is not None:
                    await self.reconcile(self._gap_since_ms)
                    self._gap_since_ms = None
                    self._status("resynced")
                self.reconciled.set()
                reason = await self._pump(sock)
            except asyncio.CancelledError:
                if sock is not None:
                    await self._close(sock)
                raise
            except Exception as exc:  # refused or failed: try again after a while
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("user stream of %s (%s): %s", self.s.account, self.s.market.value, reason)
                await asyncio.sleep(max(backoff, self._rate_limited(exc)))
                backoff = min(backoff * 2, 5.0)
            self.subscribed.clear()
            self.notices[f"resubscribed: {reason.split(':')[0]}"] += 1
            if reason == "key rotated":  # the old subscription stays until the new one is up: no gap
                continue
            self.reconciled.clear()
            if sock is not None:
                await self._close(sock)
                sock = None
            self._status("gap", reason)
            if self._gap_since_ms is None:
                last = self._last_ms or self._sub_ms or self.s.server_ms()
                self._gap_since_ms = min(last, self.s.server_ms()) - GAP_MARGIN_MS
            log.info(
                "user stream of %s (%s) ended (%s): subscribing again", self.s.account, self.s.market.value, reason
            )

    def _rate_limited(self, exc: Exception) -> float:
        """A 429/418 (-1003, a ban) refusing the subscription: the whole IP waits its ``Retry-After`` (the
        budget's back-off, which every request of every account on the IP honours), and so does the stream;
        re-subscribing into a ban would only lengthen it. Seconds to wait (0 for any other error)."""
        if not isinstance(exc, BinanceAPIException):
            return 0.0
        answer = venue_answer(exc, "ws")
        if answer.status not in (418, 429) and answer.code != -1003:
            return 0.0
        wait = answer.retry_after_s if answer.retry_after_s is not None else 1.0
        self.s.ctx.limiter.on_rate_limited(answer.status or 429, wait)
        return wait

    async def _open(self) -> Any:
        assert self.s.client is not None
        bsm = socket_manager(self.s.client, self.s.ctx.endpoints, self.s.market, self.s.settings.keepalive_s)
        if self.s.market is Market.SPOT:
            sock = bsm.user_socket()
        else:
            sock = raw_frames(bsm.futures_user_socket())
        self._rotate.clear()
        timeout = max(5.0, self.s.settings.ws_api_timeout_s * 3)
        try:
            # the stream carries the account's fills: its (re)subscription is a trading request, which may use
            # the IP's whole weight window (not only the background share; the daemon's ready() has a timeout)
            if self.s.market is Market.USDM:  # a connection of its own: it holds one of the account's slots
                await self.s.ctx.limiter.acquire("POST /fapi/v1/listenKey", trading=True)
                await self._hold_slot()
            else:  # subscribing sends on the WebSocket API: after a loss, wait for python-binance's own reconnect
                # a request of weight 2 on the IP's budget: it waits out a 429/418 back-off like every other one
                await self.s.ctx.limiter.acquire("userDataStream.subscribe.signature", weight=2, trading=True)
                await wait_ws_api_reconnected(self.s.client.ws_api, timeout)
            await asyncio.wait_for(sock.__aenter__(), timeout)
        except BaseException:
            await self._close(sock)
            raise
        return sock

    async def _hold_slot(self) -> None:
        if self._slot is None:
            slot = self.s.ctx.limiter.connection()
            await slot.__aenter__()
            self._slot = slot

    async def _close(self, sock: Any) -> None:
        await _close(sock)
        slot, self._slot = self._slot, None
        if slot is not None:
            await slot.__aexit__(None, None, None)

    async def _pump(self, sock: Any) -> str:
        silence = self.s.settings.silence_s
        while not self.closed:
            if self._rotate.is_set():
                return "key rotated"
            try:
                msg = await asyncio.wait_for(sock.recv(), min(silence, 0.5))
            except TimeoutError:
                quiet_ms = self.s.server_ms() - max(self._last_ms, self._sub_ms)
                if self.s.tracker.has_open() and quiet_ms > silence * 1000:
                    if await self._only_quiet():
                        self._last_ms = self.s.server_ms()
                        continue
                    return "silent while orders are open"
                continue
            if isinstance(msg, dict) and msg.get("e") == "error":
                return f"socket closed: {msg.get('type')} {msg.get('m')}"
            end = self.handle(msg)
            if end is not None:
                return end
        return "closed"

    async def _only_quiet(self) -> bool:
        """A stream silent while orders are open may only be quiet (resting orders nobody trades): the venue's
        open orders of each symbol (REST, weight 6 a symbol on Spot, through the budget) against the tracker's.
        The same orders with the same filled quantities: nothing was missed, the subscription carries on
        (``quiet_checks``). Any difference, or an order the venue lists that the tracker does not, ends it: a gap
        and its full REST reconciliation. A failed check ends it too. Without this, every account with a resting
        order re-subscribed and reconciled each ``silence_s``: 200 such accounts needed about 10,000 weight a
        minute, more than the IP's 6,000."""
        s = self.s
        mine: dict[str, dict[str, Decimal]] = {}
        for t in s.tracker.open_orders():
            mine.setdefault(t.symbol, {})[t.client_order_id] = t.filled_qty
        try:
            for symbol, orders in mine.items():
                rows = await s.request("open_orders", {"symbol": s.symbol_table.venue(symbol)},
                                       action="check a silent user stream")  # fmt: skip
                venue = {str(r.get("clientOrderId")): Decimal(str(r.get("executedQty", "0"))) for r in rows}
                if venue != orders:
                    return False
        except Exception as exc:  # the gap's reconciliation will say what is wrong
            log.info("user stream of %s (%s): silent, and its check failed (%s: %s)", s.account, s.market.value,
                     type(exc).__name__, exc)  # fmt: skip
            return False
        self.quiet_checks += 1
        return True

    # ---- one frame ------------------------------------------------------------------------------------------
    def handle(self, msg: Any) -> str | None:
        """Decode, parse, gate and emit one user-data frame (a dict from python-binance's WebSocket API, or
        the frame text); returns why the subscription must end, or None."""
        recv_ns = time.time_ns()
        self._last_ms = self.s.server_ms()
        try:
            if self.s.market is Market.SPOT:
                ev: Any = wu.convert_spot_user(msg) if isinstance(msg, dict) else wu.decode_spot_user(msg)
            else:
                ev = wu.convert_futures_user(msg) if isinstance(msg, dict) else wu.decode_futures_user(msg)
        except (msgspec.ValidationError, msgspec.DecodeError, TypeError) as exc:
            self._bad("bad_frame", exc, msg)
            return None
        try:
            return self._dispatch(ev, recv_ns)
        except UnknownSymbol as exc:
            self._bad("unknown_symbol", exc, msg)
        except BadDecimal as exc:
            self._bad("bad_decimal", exc, msg)
        except (ValueError, KeyError) as exc:
            self._bad("bad_value", exc, msg)
        return None

    def _dispatch(self, ev: Any, recv_ns: int) -> str | None:
        s = self.s
        if isinstance(ev, wu.ExecutionReport):
            self._order(parse.parse_to_order_event(ev, s.account, s.symbol_table, recv_ns))
        elif isinstance(ev, wu.OrderTradeUpdate):
            self._order(parse.parse_to_futures_order_event(ev, s.account, s.symbol_table, recv_ns))
        elif isinstance(ev, wu.OutboundAccountPosition):
            self._emit(parse.parse_to_spot_balance_event(ev, s.account, recv_ns))
        elif isinstance(ev, wu.AccountUpdate):
            for e in parse.parse_to_futures_account_events(ev, s.account, s.symbol_table, recv_ns):
                self._emit(e)
        elif isinstance(ev, wu.AlgoUpdate):  # a conditional order; once triggered, ORDER_TRADE_UPDATE takes over
            algo = parse.parse_algo_update(ev, s.account, s.symbol_table, recv_ns)
            if algo is not None:
                self._order(algo)
            else:
                self.notices[f"algo {ev.o.X.lower()}"] += 1
        elif isinstance(ev, wu.ListenKeyExpired):
            return "listenKey expired"
        elif isinstance(ev, wu.EventStreamTerminated):
            return "event stream terminated"
        else:  # balanceUpdate (an outboundAccountPosition follows it), TRADE_LITE, ACCOUNT_CONFIG_UPDATE
            self.notices[type(ev).__name__] += 1
        return None

    def _order(self, ev: OrderEvent) -> None:
        admitted = self.s.tracker.admit(ev)
        if admitted is not None:
            self._emit(admitted)

    def _bad(self, why: str, exc: Exception, msg: Any) -> None:
        self.counters[why] += 1
        preview = msg[:160] if isinstance(msg, str | bytes) else str(msg)[:160]
        log.warning(
            "dropped a user-data frame of %s (%s): %s: %s [%r]", self.s.account, self.s.market.value, why, exc, preview
        )

    # ---- recovery -----------------------------------------------------------------------------------------
    async def reconcile(self, since_ms: int) -> None:
        """Bring the emitted state up to date from REST after a gap that started at ``since_ms``."""
        self.notices["reconciled"] += 1
        fills: dict[str, list[Fill]] = {}
        tracker = self.s.tracker
        todo = {t.client_order_id: t for t in (*tracker.open_orders(), *tracker.missing_fills())}
        for t in todo.values():
            try:
                order = await self._query(t.symbol, t.client_order_id)
            except Exception as exc:  # one order that cannot be read now: the next gap (or a query) covers it
                log.warning("reconciling order %s of %s: %s", t.client_order_id, self.s.account, exc)
                continue
            if t.symbol not in fills:
                fills[t.symbol] = await self.ex.fills(t.symbol, since_ms * MS)
            self._missed_fills(order, fills[t.symbol])
            ev = self.s.tracker.admit(order_event(order))
            if ev is not None:
                self._emit(ev)
        now = time.time_ns()
        balances = await self.ex.balances()
        self._emit(
            BalanceEvent(
                account=self.s.account, market=self.s.market, balances=tuple(balances), reason="SNAPSHOT", event_ns=now
            )
        )
        if self.s.market is Market.USDM:
            positions = await self.ex.positions()
            self._emit(
                PositionEvent(account=self.s.account, positions=tuple(positions), reason="SNAPSHOT", event_ns=now)
            )

    async def _query(self, symbol: str, coid: str) -> Order:
        return await self.ex.fetch_order(symbol, coid, action="reconcile")

    def _missed_fills(self, order: Order, fills: list[Fill]) -> None:
        t = self.s.tracker.get(order.client_order_id)
        if t is None:
            return
        mine = [f for f in fills if f.venue_order_id == order.venue_order_id and f.trade_id not in t.trade_ids]
        total = Decimal(order.qty)
        cum = t.filled_qty
        for f in mine:  # ``fills`` is oldest first
            f = msgspec.structs.replace(f, client_order_id=order.client_order_id)
            cum += Decimal(f.qty)
            done = cum >= total
            ev = OrderEvent(
                account=order.account,
                symbol=order.symbol,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                kind=OrderEventKind.FILL if done else OrderEventKind.PARTIAL_FILL,
                status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
                side=order.side,
                order_type=order.order_type,
                qty=order.qty,
                price=order.price,
                filled_qty=format(cum, "f"),
                fill=f,
                reason="recovered from REST after a user-stream gap",
                event_ns=f.event_ns,
                recv_ns=time.time_ns(),
            )
            admitted = self.s.tracker.admit(ev)
            if admitted is not None:
                self.notices["recovered fills"] += 1
                self._emit(admitted)


async def _close(sock: Any) -> None:
    api = getattr(getattr(sock, "_client", None), "ws_api", None)
    if getattr(sock, "_subscription_id", None) is not None and api is not None and not ws_api_open(api):
        # a Spot subscription dies with its WebSocket-API connection: nothing to unsubscribe, and sending the
        # unsubscribe now would open a second socket beside python-binance's own reconnect (ws_api_reconnecting)
        api.unregister_subscription_queue(sock._subscription_id)
        sock._subscription_id = None
    try:
        await asyncio.wait_for(sock.__aexit__(None, None, None), 2.0)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # an unsubscribe that cannot be answered on a dead socket
        log.debug("closing a user socket: %s", exc)
