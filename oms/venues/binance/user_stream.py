"""The user-data stream of one account on one market, kept alive and complete.

Spot subscribes on the WebSocket API (``userDataStream.subscribe.signature``, python-binance's ``user_socket``);
USD-M opens a listenKey (``futures_user_socket``, which keeps it alive). Frames are decoded into the wire
structs (``msgspec``), parsed into model events, passed through the order tracker and published.

Recovery: ``listenKeyExpired``, ``eventStreamTerminated``, a closed socket (python-binance queues an
``{"e": "error"}``), a silent stream while orders are open (``silence_s``), or a key rotation each end the
subscription; the loop subscribes again and then reconciles from REST from just before the gap: the open
orders' states, the fills in the gap (each applied once: the tracker drops what the stream already said),
balances and, on USD-M, positions. Bad frames, unknown symbols and over-precise decimals are counted in
``counters`` and logged; nothing ends the loop but ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec

from oms.model import BalanceEvent, Fill, Market, Order, OrderEvent, OrderEventKind, OrderStatus, PositionEvent
from oms.venues.binance import parse
from oms.venues.binance import wire_rest as wr
from oms.venues.binance import wire_user as wu
from oms.venues.binance.client import raw_frames, socket_manager
from oms.venues.binance.execution import MarketExecution, Publish, order_event
from oms.venues.binance.session import MarketSession
from oms.venues.binance.symbols import BadDecimal, UnknownSymbol

log = logging.getLogger(__name__)
MS = 1_000_000
GAP_MARGIN_MS = 2_000  # reconcile from this long before the last event seen


class UserStream:
    """One account's user data on one market; ``run()`` is the task, ``stop()`` ends it."""

    def __init__(self, session: MarketSession, execution: MarketExecution, publish: Publish) -> None:
        self.s = session
        self.ex = execution
        self.publish = publish
        self.counters: Counter[str] = Counter()
        self.subscribed = asyncio.Event()
        self.reconciled = asyncio.Event()
        self._stop = False
        self._rotate = False
        self._last_ms = 0
        self._sub_ms = 0
        self._gap_since_ms: int | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- control ---------------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"user-stream {self.s.account}")
        return self._task

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def rotate(self) -> None:
        """Subscribe again under the session's (new) key; the gap is reconciled from REST."""
        self._rotate = True

    # ---- the loop --------------------------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = 0.1
        while not self._stop:
            sock = None
            try:
                sock = await self._open()
                self._sub_ms = self.s.server_ms()
                self.counters["subscribed"] += 1
                backoff = 0.1
                self.subscribed.set()
                if self._gap_since_ms is not None:
                    await self.reconcile(self._gap_since_ms)
                    self._gap_since_ms = None
                self.reconciled.set()
                reason = await self._pump(sock)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the venue refused or the socket failed: try again after a while
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("user stream of %s (%s): %s", self.s.account, self.s.market.value, reason)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.subscribed.clear()
                self.reconciled.clear()
                if sock is not None:
                    await _close(sock)
            if self._gap_since_ms is None:
                last = self._last_ms or self.s.server_ms()
                self._gap_since_ms = min(last, self.s.server_ms()) - GAP_MARGIN_MS
            self.counters[f"resubscribe: {reason.split(':')[0]}"] += 1
            log.info(
                "user stream of %s (%s) ended (%s): subscribing again", self.s.account, self.s.market.value, reason
            )

    async def _open(self) -> Any:
        assert self.s.client is not None
        bsm = socket_manager(self.s.client, self.s.endpoints, self.s.settings.keepalive_s)
        if self.s.market is Market.SPOT:
            sock = bsm.user_socket()
        else:
            sock = raw_frames(bsm.futures_user_socket())
        self._rotate = False
        try:
            await asyncio.wait_for(sock.__aenter__(), max(5.0, self.s.settings.ws_timeout_s * 3))
        except BaseException:
            await _close(sock)
            raise
        return sock

    async def _pump(self, sock: Any) -> str:
        silence = self.s.settings.silence_s
        while not self._stop:
            if self._rotate:
                return "key rotated"
            try:
                msg = await asyncio.wait_for(sock.recv(), min(silence, 1.0))
            except TimeoutError:
                if self.s.tracker.has_open() and self.s.server_ms() - self._quiet_since() > silence * 1000:
                    return "silent while orders are open"
                continue
            if isinstance(msg, dict) and msg.get("e") == "error":
                return f"socket: {msg.get('type')} {msg.get('m')}"
            end = self.handle(msg)
            if end is not None:
                return end
        return "stopped"

    def _quiet_since(self) -> int:
        return max(self._last_ms, self._sub_ms)

    # ---- one frame ------------------------------------------------------------------------------------------
    def handle(self, msg: Any) -> str | None:
        """Decode, parse, gate and publish one user-data frame; a reason string when the stream must end."""
        recv_ns = time.time_ns()
        self._last_ms = recv_ns // MS + (self.s.client.timestamp_offset if self.s.client is not None else 0)
        try:
            if self.s.market is Market.SPOT:
                ev: Any = wu.convert_spot_user(msg) if isinstance(msg, dict) else wu.decode_spot_user(msg)
            else:
                ev = wu.convert_futures_user(msg) if isinstance(msg, dict) else wu.decode_futures_user(msg)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._bad("bad frame", exc, msg)
            return None
        try:
            return self._dispatch(ev, recv_ns)
        except (UnknownSymbol, BadDecimal, ValueError, KeyError) as exc:
            self._bad(type(exc).__name__, exc, msg)
            return None

    def _dispatch(self, ev: Any, recv_ns: int) -> str | None:
        s = self.s
        if isinstance(ev, wu.ExecutionReport):
            self._order(parse.parse_to_order_event(ev, s.account, s.symbol_table, recv_ns))
        elif isinstance(ev, wu.OrderTradeUpdate):
            self._order(parse.parse_to_futures_order_event(ev, s.account, s.symbol_table, recv_ns))
        elif isinstance(ev, wu.OutboundAccountPosition):
            self.publish(parse.parse_to_spot_balance_event(ev, s.account, recv_ns))
        elif isinstance(ev, wu.AccountUpdate):
            for e in parse.parse_to_futures_account_events(ev, s.account, s.symbol_table, recv_ns):
                self.publish(e)
        elif isinstance(ev, wu.ListenKeyExpired):
            return "listenKey expired"
        elif isinstance(ev, wu.EventStreamTerminated):
            return "event stream terminated"
        else:  # balanceUpdate (an outboundAccountPosition follows), TRADE_LITE, ACCOUNT_CONFIG_UPDATE
            self.counters[f"notice {type(ev).__name__}"] += 1
        return None

    def _order(self, ev: OrderEvent) -> None:
        admitted = self.s.tracker.admit(ev)
        if admitted is not None:
            self.publish(admitted)
        else:
            self.counters["dropped order events"] += 1

    def _bad(self, why: str, exc: Exception, msg: Any) -> None:
        self.counters[why] += 1
        preview = msg[:120] if isinstance(msg, str | bytes) else str(msg)[:120]
        log.warning(
            "dropped a user-data frame of %s (%s): %s: %s [%r]", self.s.account, self.s.market.value, why, exc, preview
        )

    # ---- recovery -----------------------------------------------------------------------------------------
    async def reconcile(self, since_ms: int) -> None:
        """Bring the published state up to date from REST after a gap that started at ``since_ms``."""
        self.counters["reconciled"] += 1
        open_orders = self.s.tracker.open_orders()
        fills_by_symbol: dict[str, list[Fill]] = {}
        for t in open_orders:
            try:
                order = await self._query(t.symbol, t.client_order_id)
            except Exception as exc:
                log.warning("reconciling order %s of %s: %s", t.client_order_id, self.s.account, exc)
                continue
            if order is None:
                continue
            if t.symbol not in fills_by_symbol:
                fills_by_symbol[t.symbol] = await self.ex.fills_since(t.symbol, since_ms * MS)
            self._missed_fills(order, fills_by_symbol[t.symbol])
            ev = self.s.tracker.admit(order_event(order))
            if ev is not None:
                self.publish(ev)
        now = time.time_ns()
        balances = await self.ex.balances()
        self.publish(
            BalanceEvent(
                account=self.s.account, market=self.s.market, balances=tuple(balances), reason="SNAPSHOT", event_ns=now
            )
        )
        if self.s.market is Market.USDM:
            positions = await self.ex.positions()
            self.publish(
                PositionEvent(account=self.s.account, positions=tuple(positions), reason="SNAPSHOT", event_ns=now)
            )

    async def _query(self, symbol: str, coid: str) -> Order | None:
        params = {"symbol": self.s.symbol_table.venue(symbol), "origClientOrderId": coid}
        body = await self.s.request("query", params, action="reconcile", coid=coid)
        kind = wr.FuturesOrder if self.s.market is Market.USDM else wr.SpotOrder
        return parse.parse_to_order(wr.convert(body, kind), self.s.account, self.s.symbol_table)

    def _missed_fills(self, order: Order, fills: list[Fill]) -> None:
        t = self.s.tracker.get(order.client_order_id)
        if t is None:
            return
        mine = [f for f in fills if f.venue_order_id == order.venue_order_id and f.trade_id not in t.trade_ids]
        total = Decimal(order.qty)
        cum = t.filled_qty
        for f in sorted(mine, key=lambda f: (f.event_ns, int(f.trade_id) if f.trade_id.isdigit() else 0)):
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
                self.counters["recovered fills"] += 1
                self.publish(admitted)


async def _close(sock: Any) -> None:
    try:
        await asyncio.wait_for(sock.__aexit__(None, None, None), 2.0)
    except BaseException as exc:  # an unsubscribe that cannot be answered on a dead socket
        if isinstance(exc, asyncio.CancelledError):
            raise
        log.debug("closing a user socket: %s", exc)
