"""Order entry and account queries of one account on one market, over ``MarketSession.request``.

Every answer about an order is folded through the session's ``OrderTracker`` and, when it changes something,
published as an ``OrderEvent`` on the connector's event queue, so the event stream is complete whether the
user stream or the request answer comes first (the later one is dropped as a duplicate).

A placement whose answer never came raises ``UnknownOutcome`` after the order is marked ``unknown``; a
background task resolves it by its client order id (``resolve``): a venue status settles it, and "no such
order" once its ``recvWindow`` has passed means it never reached the book (``rejected`` via ``not_found``).
Nothing is re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from oms.venues.errors import OrderNotFound, Rejected, UnknownOutcome, Unsupported, VenueError

from oms.model import (
    AccountSettings,
    AmendOrder,
    Balance,
    CancelAll,
    CancelOrder,
    Fill,
    MarginType,
    Market,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PlaceOrder,
    Position,
    PositionMode,
)
from oms.venues.binance import codes, parse
from oms.venues.binance import wire_rest as wr
from oms.venues.binance.orders import OrderNotExpressible, amend_params, place_params
from oms.venues.binance.session import MarketSession

log = logging.getLogger(__name__)
MS = 1_000_000
NO_CHANGE = {-4046, -4059}  # "No need to change margin type." / "No need to change position side."

Publish = Callable[[object], None]


def order_event(
    order: Order, kind: OrderEventKind | None = None, code: int | None = None, reason: str = ""
) -> OrderEvent:
    """The event a REST/WS-API answer stands for (``kind`` from its status unless given)."""
    return OrderEvent(
        account=order.account,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id,
        kind=kind or codes.STATUS_KIND[order.status],
        status=order.status,
        side=order.side,
        order_type=order.order_type,
        qty=order.qty,
        price=order.price,
        filled_qty=order.filled_qty,
        avg_price=order.avg_price,
        code=code,
        reason=reason,
        event_ns=order.updated_ns or time.time_ns(),
        recv_ns=time.time_ns(),
    )


class MarketExecution:
    """Execution on one market of one account."""

    def __init__(self, session: MarketSession, publish: Publish) -> None:
        self.s = session
        self.publish = publish
        self.resolving: dict[str, asyncio.Task[Order | None]] = {}

    @property
    def market(self) -> Market:
        return self.s.market

    def _order(self, body: Any, strategy: str = "") -> Order:
        kind = wr.FuturesOrder if self.market is Market.USDM else wr.SpotOrder
        return parse.parse_to_order(wr.convert(body, kind), self.s.account, self.s.symbol_table, strategy)

    def _admit(self, order: Order, kind: OrderEventKind | None = None) -> Order:
        ev = self.s.tracker.admit(order_event(order, kind))
        if ev is not None:
            self.publish(ev)
        t = self.s.tracker.get(order.client_order_id)
        if t is not None and t.status is not order.status:
            return _with_status(order, t.status)
        return order

    # ---- orders ---------------------------------------------------------------------------------------------
    async def place(self, cmd: PlaceOrder) -> Order:
        cmd = cmd.with_client_order_id()
        coid = cmd.client_order_id
        assert coid is not None
        try:
            params = place_params(cmd, self.market, self.s.symbol_table, self.s.settings.recv_window_ms)
        except (OrderNotExpressible, KeyError, ValueError) as exc:
            raise Unsupported(str(exc), account=self.s.account, action="place", order=coid) from None
        self.s.tracker.expect(coid, cmd.symbol)
        try:
            body = await self.s.request("place", params, action="place", coid=coid)
        except UnknownOutcome:
            self._mark(coid, OrderEventKind.OUTCOME_UNKNOWN, cmd)
            self._start_resolve(cmd.symbol, coid)
            raise
        except Rejected as exc:
            self._mark(coid, OrderEventKind.REJECTED, cmd, exc.code, exc.venue_message)
            raise
        return self._admit(self._order(body, cmd.strategy))

    def _mark(
        self, coid: str, kind: OrderEventKind, cmd: PlaceOrder, code: int | None = None, reason: str = ""
    ) -> None:
        status = self.s.tracker.mark(coid, kind)
        self.publish(
            OrderEvent(
                account=self.s.account,
                symbol=cmd.symbol,
                client_order_id=coid,
                kind=kind,
                status=status,
                side=cmd.side,
                order_type=cmd.order_type,
                qty=cmd.qty,
                price=cmd.price,
                code=code,
                reason=reason,
                event_ns=time.time_ns(),
            )
        )

    def _start_resolve(self, symbol: str, coid: str) -> None:
        if coid not in self.resolving:
            self.resolving[coid] = asyncio.get_running_loop().create_task(self.resolve(symbol, coid))

    async def resolve(self, symbol: str, coid: str, attempts: int = 50) -> Order | None:
        """The true state of an order whose placement is UNKNOWN, by its client order id.

        Returns the venue's order, or None when it never reached the book (then it is ``rejected``): "no such
        order" counts only once the placement's ``recvWindow`` has passed, before that it may still arrive.
        """
        deadline = self.s.server_ms() + self.s.settings.recv_window_ms + 200
        try:
            for _ in range(attempts):
                try:
                    return await self.query_order(symbol, coid)
                except OrderNotFound:
                    if self.s.server_ms() > deadline:
                        self._not_found(symbol, coid)
                        return None
                    await asyncio.sleep(min(0.25, max(0.01, (deadline - self.s.server_ms()) / 1000)))
                except VenueError as exc:  # the venue is unreachable right now: try again shortly
                    log.warning("resolving order %s for %s: %s", coid, self.s.account, exc)
                    await asyncio.sleep(0.25)
            raise UnknownOutcome(
                f"still unresolved after {attempts} queries", account=self.s.account, action="resolve", order=coid
            )
        finally:
            self.resolving.pop(coid, None)

    def _not_found(self, symbol: str, coid: str) -> None:
        t = self.s.tracker.get(coid)
        if t is None or not t.status.is_open:
            return
        status = self.s.tracker.mark(coid, OrderEventKind.NOT_FOUND)
        self.publish(
            OrderEvent(
                account=self.s.account,
                symbol=symbol,
                client_order_id=coid,
                kind=OrderEventKind.NOT_FOUND,
                status=status,
                reason="never reached the book (not found after its recvWindow)",
                event_ns=time.time_ns(),
            )
        )

    async def cancel(self, cmd: CancelOrder) -> Order:
        symbols = self.s.symbol_table
        params = {"symbol": symbols.venue(cmd.symbol), "origClientOrderId": cmd.client_order_id}
        t = self.s.tracker.get(cmd.client_order_id)
        if t is not None and t.status.is_open:
            self.s.tracker.mark(cmd.client_order_id, OrderEventKind.CANCEL_SENT)
        try:
            body = await self.s.request("cancel", params, action="cancel", coid=cmd.client_order_id)
        except Rejected as exc:
            t = self.s.tracker.get(cmd.client_order_id)
            if t is not None and t.status is OrderStatus.PENDING_CANCEL:
                self.s.tracker.mark(cmd.client_order_id, OrderEventKind.CANCEL_REJECTED)
            raise exc
        return self._admit(self._order(body))

    async def amend(self, cmd: AmendOrder) -> Order:
        if self.market is not Market.USDM:
            raise Unsupported(
                "Binance Spot has no in-place amend (cancel and place anew)",
                account=self.s.account,
                action="amend",
                order=cmd.client_order_id,
            )
        current = await self.query_order(cmd.symbol, cmd.client_order_id)
        qty = cmd.qty or current.qty
        price = cmd.price or current.price
        if price is None:
            raise Unsupported("only priced orders can be amended", account=self.s.account, action="amend")
        try:
            params = amend_params(cmd, self.s.symbol_table, qty, price, self.s.settings.recv_window_ms)
        except OrderNotExpressible as exc:
            raise Unsupported(str(exc), account=self.s.account, action="amend", order=cmd.client_order_id) from None
        body = await self.s.request("amend", params, action="amend", coid=cmd.client_order_id)
        return self._admit(self._order(body), OrderEventKind.AMENDED)

    async def cancel_all(self, cmd: CancelAll) -> list[Order]:
        symbols = self.s.symbol_table
        if cmd.symbol is not None:
            targets = [cmd.symbol]
        else:
            targets = sorted({o.symbol for o in await self.open_orders()})
        out: list[Order] = []
        for symbol in targets:
            before = await self.open_orders(symbol) if self.market is Market.USDM else []
            body = await self.s.request("cancel_all", {"symbol": symbols.venue(symbol)}, action="cancel all orders")
            if isinstance(body, list):
                out.extend(self._admit(self._order(row)) for row in body if "clientOrderId" in row)
            else:  # USD-M answers {"code": 200, "msg": ...}: the orders that were open are now cancelled
                for o in before:
                    out.append(self._admit(_with_status(o, OrderStatus.CANCELED), OrderEventKind.CANCELED))
        return out

    async def place_batch(self, cmds: list[PlaceOrder]) -> list[Order | VenueError]:
        """USD-M ``batchOrders`` (up to 5 per request); each row is an order or the error of that order."""
        if self.market is not Market.USDM:
            raise Unsupported("Binance Spot has no batch order entry", account=self.s.account, action="place batch")
        cmds = [c.with_client_order_id() for c in cmds]
        out: list[Order | VenueError] = []
        for i in range(0, len(cmds), 5):
            chunk = cmds[i : i + 5]
            rows = []
            for c in chunk:
                p = place_params(c, self.market, self.s.symbol_table, self.s.settings.recv_window_ms)
                p.pop("recvWindow", None)
                p.pop("newOrderRespType", None)
                rows.append(p)
                self.s.tracker.expect(c.client_order_id or "", c.symbol)
            body = await self.s.request("batch", {"batchOrders": rows}, action="place batch")
            for c, row in zip(chunk, body, strict=False):
                if "code" in row and "orderId" not in row:
                    err = Rejected(int(row["code"]), str(row.get("msg", "")), account=self.s.account, action="place")
                    err.order = c.client_order_id
                    self.s.tracker.mark(c.client_order_id or "", OrderEventKind.REJECTED)
                    out.append(err)
                else:
                    out.append(self._admit(self._order(row, c.strategy)))
        return out

    # ---- queries ----------------------------------------------------------------------------------------------
    async def query_order(self, symbol: str, coid: str) -> Order:
        params = {"symbol": self.s.symbol_table.venue(symbol), "origClientOrderId": coid}
        body = await self.s.request("query", params, action="query", coid=coid)
        order = self._order(body)
        if self.s.tracker.get(coid) is not None:
            return self._admit(order)
        return order

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        params = {"symbol": self.s.symbol_table.venue(symbol)} if symbol else {}
        body = await self.s.request("open_orders", params, action="list open orders")
        return [self._order(row) for row in body]

    async def load_open_orders(self) -> list[Order]:
        """Every open order into the tracker (at start-up), so their events are recognised."""
        orders = await self.open_orders()
        for o in orders:
            self.s.tracker.load(o)
        return orders

    async def fills_since(self, symbol: str, since_ns: int, coids: dict[str, str] | None = None) -> list[Fill]:
        """The account's fills on ``symbol`` from ``since_ns`` (Binance needs the symbol)."""
        params = {"symbol": self.s.symbol_table.venue(symbol), "startTime": since_ns // MS}
        body = await self.s.request("trades", params, action="list fills")
        kind = wr.FuturesTrade if self.market is Market.USDM else wr.SpotTrade
        names = coids if coids is not None else self._coids_by_venue_id()
        out = []
        for row in body:
            t = wr.convert(row, kind)
            out.append(parse.parse_to_fill(t, self.s.account, self.s.symbol_table, names.get(str(t.orderId), "")))
        return out

    def _coids_by_venue_id(self) -> dict[str, str]:
        return {t.venue_order_id: t.client_order_id for t in self.s.tracker.orders.values() if t.venue_order_id}

    async def balances(self) -> list[Balance]:
        now = time.time_ns()
        if self.market is Market.SPOT:
            body = await self.s.request("account", {}, action="read balances")
            return parse.parse_to_balances(wr.convert(body, wr.SpotAccount), self.s.account, now)
        body = await self.s.request("balances", {}, action="read balances")
        return parse.parse_to_balances(wr.convert(body, list[wr.FuturesBalance]), self.s.account, now)

    async def positions(self) -> list[Position]:
        if self.market is not Market.USDM:
            return []
        body = await self.s.request("positions", {}, action="read positions")
        rows = wr.convert(body, list[wr.FuturesPosition])
        return [
            parse.parse_to_position(r, self.s.account, self.s.symbol_table)
            for r in rows
            if r.symbol in self.s.symbol_table.to_unified
        ]

    # ---- futures settings ---------------------------------------------------------------------------------
    def _futures_only(self, action: str) -> None:
        if self.market is not Market.USDM:
            raise Unsupported("a USD-M futures setting", account=self.s.account, action=action)

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        self._futures_only("set leverage")
        params = {"symbol": self.s.symbol_table.venue(symbol), "leverage": int(leverage)}
        body = await self.s.request("leverage", params, action=f"set leverage of {symbol}")
        return AccountSettings(
            account=self.s.account,
            symbol=symbol,
            leverage=int(body["leverage"]),
            max_notional=str(body.get("maxNotionalValue")) if body.get("maxNotionalValue") is not None else None,
            event_ns=time.time_ns(),
        )

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        self._futures_only("set margin type")
        params = {"symbol": self.s.symbol_table.venue(symbol), "marginType": margin_type.value.upper()}
        try:
            await self.s.request("margin_type", params, action=f"set margin type of {symbol}")
        except Rejected as exc:
            if exc.code not in NO_CHANGE:
                raise
        return AccountSettings(account=self.s.account, symbol=symbol, margin_type=margin_type, event_ns=time.time_ns())

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        self._futures_only("set position mode")
        params = {"dualSidePosition": "true" if mode is PositionMode.HEDGE else "false"}
        try:
            await self.s.request("position_mode", params, action="set position mode")
        except Rejected as exc:
            if exc.code not in NO_CHANGE:
                raise
        return AccountSettings(account=self.s.account, position_mode=mode, event_ns=time.time_ns())


def _with_status(order: Order, status: OrderStatus) -> Order:
    return msgspec.structs.replace(order, status=status)
