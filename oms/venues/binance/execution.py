"""``ExecutionClient`` of one Binance account on one market, over ``MarketSession.request``.

Every answer about an order is folded through the session's ``OrderTracker`` and, when it changes something,
also handed to the account's user stream (``sinks``), so the stream is complete whichever comes first, the
stream's event or the request's answer (the later one is dropped as a duplicate).

A placement whose answer never came raises ``UnknownOutcome`` after the order is marked ``unknown``; a
background task resolves it by its client order id (``resolve``): a venue status settles it, and "no such
order" once its ``recvWindow`` has passed means it never reached the book (``not_found`` -> ``rejected``).
Nothing is re-sent.

USD-M conditional orders (stop, take-profit, trailing stop) go through Binance's Algo Order API
(``algo_place``/``algo_cancel``/``algo_query``/...): named by ``clientAlgoId`` = the model's client order id,
which the order their trigger creates carries too. Until the trigger they are known to the algo endpoints
only; after it, the ordinary order endpoints tell their state and fills (``fetch_order``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from oms.archive.records import Funding
from oms.keys import Credentials
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
    PositionSide,
    Transfer,
    TransferEvent,
    TransferKind,
    TransferStatus,
)
from oms.venues.binance import codes, parse, replace
from oms.venues.binance import wire_rest as wr
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.instruments import BinanceInstruments
from oms.venues.binance.metadata import METADATA
from oms.venues.binance.orders import (
    OrderNotExpressible,
    algo_params,
    amend_params,
    is_conditional,
    place_params,
    spot_amend_params,
)
from oms.venues.binance.session import MarketSession
from oms.venues.errors import AuthError, OrderNotFound, Rejected, UnknownOutcome, Unsupported, VenueError
from oms.venues.interface import VenueContext
from oms.venues.metadata import CommissionRates

log = logging.getLogger(__name__)
MS = 1_000_000
NO_CHANGE = {-4046, -4059}  # "No need to change margin type." / "No need to change position side."
WALLET = {Market.SPOT: "SPOT", Market.USDM: "USDT_FUTURE"}
Sink = Callable[[object], None]


def order_event(
    order: Order, kind: OrderEventKind | None = None, code: int | None = None, reason: str = ""
) -> OrderEvent:
    """The event an answer about ``order`` stands for (``kind`` from its status unless given)."""
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


class BinanceExecution:
    """Orders and account state of one account on one Binance market (``oms.venues.ExecutionClient``)."""

    def __init__(self, ctx: VenueContext, instruments: BinanceInstruments, settings: BinanceSettings | None = None):
        self.context = ctx
        self.instruments = instruments
        self.settings = settings or BinanceSettings.from_options(ctx.options)
        self.metadata = METADATA[ctx.market]
        self.capabilities = self.metadata.capabilities
        self.session = MarketSession(ctx, self.settings)
        self.sinks: list[Sink] = []
        self.resolving: dict[str, asyncio.Task[Order | None]] = {}
        self.algo: set[str] = set()  # client order ids of conditional orders (the Algo Order API's)
        if getattr(ctx.clock, "fetch", True) is None:  # a clock nobody feeds yet: this client is its source
            ctx.clock.bind(self.server_time_ns)  # type: ignore[attr-defined]

    # ---- plumbing ------------------------------------------------------------------------------------------
    @property
    def market(self) -> Market:
        return self.context.market

    @property
    def account(self) -> str:
        return self.session.account

    async def _ready(self) -> MarketSession:
        s = self.session
        if s.symbols is None:
            await self.instruments.load()
            s.symbols = self.instruments.symbols
        await s.ensure_started()
        return s

    def publish(self, event: object) -> None:
        for sink in self.sinks:
            sink(event)

    def _order(self, body: Any, strategy: str = "") -> Order:
        kind = wr.FuturesOrder if self.market is Market.USDM else wr.SpotOrder
        return parse.parse_to_order(wr.convert(body, kind), self.account, self.session.symbol_table, strategy)

    def _algo_order(self, body: Any, strategy: str = "") -> Order:
        algo = wr.convert(body, wr.AlgoOrder)
        self.algo.add(algo.clientAlgoId)
        return parse.parse_algo_to_order(algo, self.account, self.session.symbol_table, strategy)

    def _answer(self, order: Order, kind: OrderEventKind | None = None) -> OrderEvent:
        """The answer as an event: through the tracker (published if new), with the machine's status."""
        ev = order_event(order, kind)
        admitted = self.session.tracker.admit(ev)
        if admitted is not None:
            self.publish(admitted)
            return admitted
        t = self.session.tracker.get(order.client_order_id)
        return msgspec.structs.replace(ev, status=t.status) if t is not None and t.status is not ev.status else ev

    def _own(self, cmd: PlaceOrder, kind: OrderEventKind, code: int | None = None, reason: str = "") -> OrderEvent:
        """Our own event about a placement (unknown outcome, rejection), published."""
        coid = cmd.client_order_id or ""
        status = self.session.tracker.mark(coid, kind)
        ev = OrderEvent(
            account=self.account,
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
        self.publish(ev)
        return ev

    # ---- orders ---------------------------------------------------------------------------------------------
    async def place(self, cmd: PlaceOrder) -> OrderEvent:
        s = await self._ready()
        coid = cmd.client_order_id
        if coid is None:
            raise ValueError("place: the command has no client order id (use PlaceOrder.with_client_order_id())")
        conditional = is_conditional(cmd, self.market)
        try:
            if conditional:
                params = algo_params(cmd, s.symbol_table, self.settings.recv_window_ms)
            else:
                params = place_params(cmd, self.market, s.symbol_table, self.settings.recv_window_ms)
        except (OrderNotExpressible, KeyError, ValueError) as exc:
            raise Unsupported(str(exc), account=self.account, action="place", order=coid) from None
        s.tracker.expect(coid, cmd.symbol)
        if conditional:
            self.algo.add(coid)
        try:
            body = await s.request("algo_place" if conditional else "place", params, action="place", coid=coid)
        except UnknownOutcome:
            self._own(cmd, OrderEventKind.OUTCOME_UNKNOWN, reason="sent, no answer")
            self._start_resolve(cmd.symbol, coid)
            raise
        except Rejected as exc:
            self._own(cmd, OrderEventKind.REJECTED, exc.code, exc.venue_message)
            raise
        except (AuthError, VenueError):
            s.tracker.orders.pop(coid, None)  # not placed (rate limit, auth, not sent): forget it
            raise
        if conditional:
            return self._answer(self._algo_order(body, cmd.strategy))
        return self._answer(self._order(body, cmd.strategy))

    def _start_resolve(self, symbol: str, coid: str) -> None:
        if coid not in self.resolving:
            task = asyncio.get_running_loop().create_task(self.resolve(symbol, coid), name=f"resolve {coid}")
            self.resolving[coid] = task
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved"

    async def resolve(self, symbol: str, coid: str, attempts: int = 100) -> Order | None:
        """The true state of an UNKNOWN placement, by its client order id (None: it never reached the book).

        "No such order" counts only once the placement's ``recvWindow`` has passed; before that it may still
        arrive. The venue being unreachable is waited out (``attempts`` queries at most).
        """
        deadline = self.session.server_ms() + self.settings.recv_window_ms + 250
        try:
            for _ in range(attempts):
                try:
                    return await self.query_order(symbol, coid)
                except OrderNotFound:
                    if self.session.server_ms() > deadline:
                        self._not_found(symbol, coid)
                        return None
                    await asyncio.sleep(min(0.25, max(0.01, (deadline - self.session.server_ms()) / 1000)))
                except VenueError as exc:
                    log.warning("resolving order %s for %s: %s", coid, self.account, exc)
                    await asyncio.sleep(0.25)
            raise UnknownOutcome(
                f"still unresolved after {attempts} queries", account=self.account, action="resolve", order=coid
            )
        finally:
            self.resolving.pop(coid, None)

    def _not_found(self, symbol: str, coid: str) -> None:
        t = self.session.tracker.get(coid)
        if t is None or not t.status.is_open:
            return
        status = self.session.tracker.mark(coid, OrderEventKind.NOT_FOUND)
        reason = "never reached the book (not found after its recvWindow)"
        self.publish(
            OrderEvent(
                account=self.account,
                symbol=symbol,
                client_order_id=coid,
                kind=OrderEventKind.NOT_FOUND,
                status=status,
                reason=reason,
                event_ns=time.time_ns(),
            )
        )

    async def amend(self, cmd: AmendOrder) -> OrderEvent:
        if self.market is Market.SPOT:
            return await self._amend_spot(cmd)
        s = await self._ready()
        current = await self.query_order(cmd.symbol, cmd.client_order_id)
        price = cmd.price or current.price
        if price is None:
            raise Unsupported(
                "only priced orders can be amended", account=self.account, action="amend", order=cmd.client_order_id
            )
        try:
            params = amend_params(cmd, s.symbol_table, cmd.qty or current.qty, price, self.settings.recv_window_ms)
        except OrderNotExpressible as exc:
            raise Unsupported(str(exc), account=self.account, action="amend", order=cmd.client_order_id) from None
        body = await s.request("amend", params, action="amend", coid=cmd.client_order_id)
        return self._answer(self._order(body), OrderEventKind.AMENDED)

    async def _amend_spot(self, cmd: AmendOrder) -> OrderEvent:
        """Binance Spot amends in place only a lower quantity (``order.amend.keepPriority``: same order id, same
        place in the queue); a new price is a new order (cancel-replace), which this call does not do."""
        s = await self._ready()
        coid = cmd.client_order_id
        current = await self.query_order(cmd.symbol, coid)
        if cmd.price is not None and current.price is not None and Decimal(cmd.price) != Decimal(current.price):
            raise Unsupported(
                "Binance Spot amends only the quantity in place (a new price is a cancel-replace: a new order)",
                account=self.account,
                action="amend",
                order=coid,
            )
        if cmd.qty is None:
            raise Unsupported("a Spot amend needs the new quantity", account=self.account, action="amend", order=coid)
        try:
            params = spot_amend_params(cmd, s.symbol_table, self.settings.recv_window_ms)
        except OrderNotExpressible as exc:
            raise Unsupported(str(exc), account=self.account, action="amend", order=coid) from None
        body = await s.request("amend", params, action="amend", coid=coid)
        row = dict(body["amendedOrder"])
        row["origQty"] = row.pop("qty")
        row["cummulativeQuoteQty"] = row.pop("cumulativeQuoteQty", "0")
        row["updateTime"] = body.get("transactTime", 0)
        row.pop("origClientOrderId", None)  # the order before the amend; ``clientOrderId`` names it now
        return self._answer(self._order(row), OrderEventKind.AMENDED)

    async def cancel_replace(self, old: str, cmd: PlaceOrder) -> tuple[OrderEvent, OrderEvent]:
        """Spot: cancel ``old`` and place ``cmd`` in one request (STOP_ON_FAILURE; ``replace.cancel_replace``)."""
        return await replace.cancel_replace(self, old, cmd)

    async def funding_payments(self, since_ns: int, until_ns: int | None = None) -> list[Funding]:
        """USD-M funding fees since ``since_ns`` from the income history (``replace.funding_payments``)."""
        return await replace.funding_payments(self, since_ns, until_ns)

    async def cancel(self, cmd: CancelOrder) -> OrderEvent:
        s = await self._ready()
        coid = cmd.client_order_id
        params = {"symbol": s.symbol_table.venue(cmd.symbol), "origClientOrderId": coid}
        t = s.tracker.get(coid)
        if t is not None and t.status.is_open:
            s.tracker.mark(coid, OrderEventKind.CANCEL_SENT)
        try:
            if coid in self.algo:
                cancelled = await self._cancel_algo(s, params["symbol"], coid)
                if cancelled is not None:
                    return self._answer(cancelled)
            body = await s.request("cancel", params, action="cancel", coid=coid)
        except Rejected:
            t = s.tracker.get(coid)
            if t is not None and t.status is OrderStatus.PENDING_CANCEL:
                s.tracker.mark(coid, OrderEventKind.CANCEL_REJECTED)
            raise
        return self._answer(self._order(body))

    async def _cancel_algo(self, s: MarketSession, venue: str, coid: str) -> Order | None:
        """Cancel a conditional order waiting for its trigger; None when it has triggered (its order is then
        cancelled as an ordinary one). The answer names the order only: its state is read back."""
        try:
            await s.request("algo_cancel", {"symbol": venue, "clientAlgoId": coid}, action="cancel", coid=coid)
        except (Rejected, OrderNotFound):
            algo = wr.convert(
                await s.request("algo_query", {"clientAlgoId": coid}, action="cancel", coid=coid), wr.AlgoOrder
            )
            if parse.algo_triggered(algo):
                return None
            raise
        algo = await s.request("algo_query", {"clientAlgoId": coid}, action="cancel", coid=coid)
        return self._algo_order(algo)

    async def cancel_all(self, cmd: CancelAll) -> list[OrderEvent]:
        s = await self._ready()
        symbols = [cmd.symbol] if cmd.symbol is not None else sorted({o.symbol for o in await self.open_orders()})
        out: list[OrderEvent] = []
        for symbol in symbols:
            before = await self.open_orders(symbol)
            for o in before:
                t = s.tracker.get(o.client_order_id)
                if t is not None and t.status.is_open:
                    s.tracker.mark(o.client_order_id, OrderEventKind.CANCEL_SENT)
            venue = s.symbol_table.venue(symbol)
            regular = [o for o in before if o.client_order_id not in self.algo]
            if regular or self.market is Market.SPOT:
                body = await s.request("cancel_all", {"symbol": venue}, action="cancel all orders")
            else:
                body = {}
            if any(o.client_order_id in self.algo for o in before):
                await s.request("algo_cancel_all", {"symbol": venue}, action="cancel all conditional orders")
            if isinstance(body, list):  # Spot: the cancelled orders
                out.extend(self._answer(self._order(row)) for row in body if "clientOrderId" in row)
            else:  # USD-M answers {"code": 200, "msg": ...}: what was open is cancelled now
                out.extend(
                    self._answer(msgspec.structs.replace(o, status=OrderStatus.CANCELED), OrderEventKind.CANCELED)
                    for o in before
                )
        return out

    async def place_batch(self, cmds: Sequence[PlaceOrder]) -> list[OrderEvent | VenueError]:
        """USD-M ``batchOrders`` (5 per request); Spot one by one. One result per command, errors not raised."""
        out: list[OrderEvent | VenueError] = []
        if not self.capabilities.batch_orders:
            for c in cmds:
                try:
                    out.append(await self.place(c))
                except VenueError as exc:
                    out.append(exc)
            return out
        s = await self._ready()
        for i in range(0, len(cmds), self.capabilities.max_batch):
            out.extend(await self._batch(s, list(cmds[i : i + self.capabilities.max_batch])))
        return out

    async def _batch(self, s: MarketSession, chunk: list[PlaceOrder]) -> list[OrderEvent | VenueError]:
        rows: list[dict[str, Any] | VenueError] = []
        for c in chunk:
            try:
                p = place_params(c, self.market, s.symbol_table, self.settings.recv_window_ms)
            except (OrderNotExpressible, KeyError, ValueError) as exc:
                rows.append(Unsupported(str(exc), account=self.account, action="place", order=c.client_order_id))
                continue
            p.pop("recvWindow", None)
            rows.append(p)
            s.tracker.expect(c.client_order_id or "", c.symbol)
        sent = [r for r in rows if isinstance(r, dict)]
        try:
            body = await s.request("batch", {"batchOrders": sent}, action="place batch") if sent else []
        except UnknownOutcome:
            for c in chunk:
                self._own(c, OrderEventKind.OUTCOME_UNKNOWN, reason="batch sent, no answer")
                self._start_resolve(c.symbol, c.client_order_id or "")
            raise
        answers = iter(body)
        out: list[OrderEvent | VenueError] = []
        for c, r in zip(chunk, rows, strict=True):
            if isinstance(r, VenueError):
                out.append(r)
                continue
            row = next(answers)
            if "orderId" not in row:
                code, msg = int(row.get("code", 0)), str(row.get("msg", ""))
                self._own(c, OrderEventKind.REJECTED, code, msg)
                out.append(Rejected(code, msg, account=self.account, action="place", order=c.client_order_id))
            else:
                out.append(self._answer(self._order(row, c.strategy)))
        return out

    # ---- queries ----------------------------------------------------------------------------------------------
    async def fetch_order(self, symbol: str, client_order_id: str, action: str = "query") -> Order:
        """The venue's state of one order by client order id (the tracker untouched). A conditional order is
        read from the Algo Order API until its trigger, then as the ordinary order it became; an id this
        client did not place is looked for among both."""
        s = await self._ready()
        coid = client_order_id
        venue = s.symbol_table.venue(symbol)
        params = {"symbol": venue, "origClientOrderId": coid}
        known = s.tracker.get(coid) is not None
        if self.market is Market.USDM and coid in self.algo:
            body = await s.request("algo_query", {"clientAlgoId": coid}, action=action, coid=coid)
            algo = wr.convert(body, wr.AlgoOrder)
            if not parse.algo_triggered(algo):
                return self._algo_order(body)
            return self._order(await s.request("query", params, action=action, coid=coid))
        try:
            return self._order(await s.request("query", params, action=action, coid=coid))
        except OrderNotFound:
            if self.market is not Market.USDM or known:
                raise
        body = await s.request("algo_query", {"clientAlgoId": coid}, action=action, coid=coid)
        return self._algo_order(body)

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        s = await self._ready()
        order = await self.fetch_order(symbol, client_order_id)
        if s.tracker.get(client_order_id) is not None:
            ev = self._answer(order)
            if ev.status is not order.status:
                order = msgspec.structs.replace(order, status=ev.status)
        return order

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        s = await self._ready()
        params = {"symbol": s.symbol_table.venue(symbol)} if symbol else {}
        body = await s.request("open_orders", params, action="list open orders")
        out = [self._order(row) for row in body if row.get("symbol") in s.symbol_table.to_unified]
        if self.market is Market.USDM:  # conditional orders waiting for their trigger
            rows = await s.request("algo_open_orders", params, action="list open conditional orders")
            out += [self._algo_order(row) for row in rows if row.get("symbol") in s.symbol_table.to_unified]
        for o in out:  # an order found open is known from now on: its events pass (what was known stays)
            s.tracker.learn(o)
        return out

    async def load_open_orders(self) -> list[Order]:
        """Every open order into the tracker (at start), so that their events are recognised."""
        orders = await self.open_orders()
        for o in orders:
            self.session.tracker.load(o)
        return orders

    async def fills(self, symbol: str, since_ns: int, until_ns: int | None = None) -> list[Fill]:
        s = await self._ready()
        venue = s.symbol_table.venue(symbol)
        kind = wr.FuturesTrade if self.market is Market.USDM else wr.SpotTrade
        names = {t.venue_order_id: t.client_order_id for t in s.tracker.orders.values() if t.venue_order_id}
        until_ms = until_ns // MS if until_ns is not None else None
        params: dict[str, Any] = {"symbol": venue, "startTime": since_ns // MS, "limit": 1000}
        out: list[Fill] = []
        while True:
            rows = [wr.convert(r, kind) for r in await s.request("trades", dict(params), action="list fills")]
            for t in rows:
                if until_ms is not None and t.time >= until_ms:
                    continue
                if t.time * MS >= since_ns:
                    out.append(parse.parse_to_fill(t, self.account, s.symbol_table, names.get(str(t.orderId), "")))
            if len(rows) < 1000:
                break
            params = {"symbol": venue, "fromId": max(t.id for t in rows) + 1, "limit": 1000}
        out.sort(key=lambda f: (f.event_ns, int(f.trade_id)))
        return out

    async def balances(self) -> list[Balance]:
        s = await self._ready()
        now = time.time_ns()
        if self.market is Market.SPOT:
            body = await s.request("account", {}, action="read balances")
            rows = parse.parse_to_balances(wr.convert(body, wr.SpotAccount), self.account, now)
        else:
            body = await s.request("balances", {}, action="read balances")
            rows = parse.parse_to_balances(wr.convert(body, list[wr.FuturesBalance]), self.account, now)
        return [b for b in rows if b.free.strip("0.") or b.locked.strip("0.")]

    async def commission(self, symbol: str) -> CommissionRates:
        """The account's commission on ``symbol``: Spot ``GET /api/v3/account/commission`` (standard + special +
        tax, the rate Binance charges before a BNB discount), USD-M ``GET /fapi/v1/commissionRate``."""
        s = await self._ready()
        venue = s.symbol_table.venue(symbol)
        body = await s.request("commission", {"symbol": venue}, action=f"read the commission on {symbol}")
        try:
            if self.market is Market.SPOT:
                parts = [body.get(k) or {} for k in ("standardCommission", "specialCommission", "taxCommission")]
                maker = sum((Decimal(str(p.get("maker", "0"))) for p in parts), Decimal(0))
                taker = sum((Decimal(str(p.get("taker", "0"))) for p in parts), Decimal(0))
            else:
                maker, taker = Decimal(str(body["makerCommissionRate"])), Decimal(str(body["takerCommissionRate"]))
        except (AttributeError, KeyError, ArithmeticError) as exc:
            raise Rejected(None, f"unreadable commission answer {body!r}: {exc}", account=self.account,
                           action=f"read the commission on {symbol}") from None  # fmt: skip
        return CommissionRates(symbol=symbol, maker=_plain(maker), taker=_plain(taker))

    async def positions(self, symbol: str | None = None) -> list[Position]:
        if self.market is not Market.USDM:
            return []
        s = await self._ready()
        params = {"symbol": s.symbol_table.venue(symbol)} if symbol else {}
        rows = wr.convert(await s.request("positions", params, action="read positions"), list[wr.FuturesPosition])
        known = s.symbol_table.to_unified
        return [
            parse.parse_to_position(r, self.account, s.symbol_table)
            for r in rows
            if r.symbol in known and r.positionAmt.strip("-0.")
        ]

    async def adl_quantiles(self, symbol: str | None = None) -> dict[tuple[str, PositionSide], int]:
        """USD-M: the auto-deleveraging quantile (0 none .. 4 first in line) of each open position, by (unified
        symbol, position side), from ``GET /fapi/v1/adlQuantile``. Not part of ``ExecutionClient``: a venue
        without it has no such method."""
        self._futures_only("read ADL quantiles")
        s = await self._ready()
        params = {"symbol": s.symbol_table.venue(symbol)} if symbol else {}
        rows = await s.request("adl_quantile", params, action="read ADL quantiles")
        out: dict[tuple[str, PositionSide], int] = {}
        for row in rows if isinstance(rows, list) else []:
            unified = s.symbol_table.to_unified.get(str(row.get("symbol", "")))
            if unified is None:
                continue
            for side, q in dict(row.get("adlQuantile") or {}).items():
                if side in ("LONG", "SHORT", "BOTH"):
                    out[(unified, PositionSide(side.lower()))] = int(q)
        return out

    async def symbol_settings(self, symbol: str | None = None) -> list[AccountSettings]:
        """USD-M: each symbol's leverage, margin type and its maximum notional (``GET /fapi/v1/symbolConfig``:
        what positionRisk v3 no longer reports). Not part of ``ExecutionClient``."""
        self._futures_only("read symbol settings")
        s = await self._ready()
        params = {"symbol": s.symbol_table.venue(symbol)} if symbol else {}
        rows = await s.request("symbol_config", params, action="read symbol settings")
        out = []
        for row in rows if isinstance(rows, list) else []:
            unified = s.symbol_table.to_unified.get(str(row.get("symbol", "")))
            if unified is not None:
                isolated = str(row.get("marginType", "")).upper() == "ISOLATED"
                margin = MarginType.ISOLATED if isolated else MarginType.CROSS
                lev, cap = int(row.get("leverage", 0)), str(row.get("maxNotionalValue") or "0")
                out.append(AccountSettings(account=self.account, symbol=unified, leverage=lev, max_notional=cap,
                                           margin_type=margin))  # fmt: skip
        return out

    # ---- futures settings ---------------------------------------------------------------------------------
    def _futures_only(self, action: str) -> None:
        if self.market is not Market.USDM:
            raise Unsupported("this is a USD-M futures setting", account=self.account, action=action)

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        self._futures_only("set leverage")
        s = await self._ready()
        params = {"symbol": s.symbol_table.venue(symbol), "leverage": int(leverage)}
        body = await s.request("leverage", params, action=f"set leverage of {symbol}")
        max_notional = body.get("maxNotionalValue")
        return AccountSettings(
            account=self.account,
            symbol=symbol,
            leverage=int(body["leverage"]),
            max_notional=str(max_notional) if max_notional is not None else None,
            event_ns=time.time_ns(),
        )

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        self._futures_only("set margin type")
        s = await self._ready()
        mt = MarginType(margin_type)
        params = {"symbol": s.symbol_table.venue(symbol), "marginType": mt.value.upper()}
        try:
            await s.request("margin_type", params, action=f"set margin type of {symbol}")
        except Rejected as exc:
            if exc.code not in NO_CHANGE:
                raise
        return AccountSettings(account=self.account, symbol=symbol, margin_type=mt, event_ns=time.time_ns())

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        self._futures_only("set position mode")
        s = await self._ready()
        mode = PositionMode(mode)
        params = {"dualSidePosition": "true" if mode is PositionMode.HEDGE else "false"}
        try:
            await s.request("position_mode", params, action="set position mode")
        except Rejected as exc:
            if exc.code not in NO_CHANGE:
                raise
        return AccountSettings(account=self.account, position_mode=mode, event_ns=time.time_ns())

    async def position_mode(self) -> PositionMode:
        if self.market is not Market.USDM:
            return PositionMode.ONE_WAY
        s = await self._ready()
        body = await s.request("get_position_mode", {}, action="read position mode")
        return PositionMode.HEDGE if body.get("dualSidePosition") else PositionMode.ONE_WAY

    # ---- transfers ---------------------------------------------------------------------------------------
    async def transfer(self, transfer: Transfer) -> TransferEvent:
        """Universal sub-account transfer (this client must be the main account's), or a market transfer of
        this account (Spot <-> USD-M wallet)."""
        s = await self._ready()
        me = self.context.account.name
        src, dst = transfer.from_account.split("/", 1)[1], transfer.to_account.split("/", 1)[1]
        if transfer.kind is TransferKind.MARKET or (src == dst == me):
            kind = "MAIN_UMFUTURE" if Market(transfer.to_market) is Market.USDM else "UMFUTURE_MAIN"
            op, params = "transfer", {"type": kind, "asset": transfer.asset, "amount": transfer.amount}
        else:
            params = {
                "fromAccountType": WALLET[Market(transfer.from_market)],
                "toAccountType": WALLET[Market(transfer.to_market)],
                "asset": transfer.asset,
                "amount": transfer.amount,
                "clientTranId": transfer.transfer_id,
            }
            for key, name in (("fromEmail", src), ("toEmail", dst)):
                if name != me:
                    ref = self.context.account_refs.get(name)
                    if ref is None:
                        raise Unsupported(
                            f"no venue id (email) known for account {name}", account=self.account, action="transfer"
                        )
                    params[key] = ref
            op = "sub_transfer"
        body = await s.request(op, params, action=f"transfer {transfer.transfer_id}")
        return TransferEvent(
            transfer=transfer,
            status=TransferStatus.DONE,
            venue_transfer_id=str(body.get("tranId", "")) or None,
            event_ns=time.time_ns(),
        )

    async def find_transfer(self, transfer: Transfer, since_ns: int | None = None) -> TransferEvent | None:
        """The universal sub-account transfer ``transfer`` as the venue's history has it (by its
        ``clientTranId``, the transfer id), or None if the venue never executed it. Binance answers one side at
        a time (the sender's, ``fromEmail``; none for the main account) and at most 7 days per query: from
        ``since_ns`` (default: 7 days ago, less 5 minutes) on."""
        s = await self._ready()
        me = self.context.account.name
        src = transfer.from_account.split("/", 1)[1]
        # startTime only: the venue answers startTime + 7 days, which reaches past its own now whatever our
        # clock estimate is off by (an endTime from here could end just before a transfer it has just made)
        week_ms = 7 * 24 * 3600 * 1000
        start_ms = max(self.context.clock.server_time_ms() - week_ms + 300_000, (since_ns or 0) // MS)
        params: dict[str, Any] = {"clientTranId": transfer.transfer_id, "startTime": start_ms}
        if src != me:
            ref = self.context.account_refs.get(src)
            if ref is None:
                raise Unsupported(f"no venue id (email) known for account {src}", account=self.account,
                                  action=f"find transfer {transfer.transfer_id}")  # fmt: skip
            params["fromEmail"] = ref
        body = await s.request("sub_transfer_history", params, action=f"find transfer {transfer.transfer_id}")
        rows = body.get("result", []) if isinstance(body, dict) else body
        for row in rows or ():
            if row.get("clientTranId") == transfer.transfer_id:
                ok = str(row.get("status", "SUCCESS")).upper() == "SUCCESS"
                return TransferEvent(
                    transfer=transfer,
                    status=TransferStatus.DONE if ok else TransferStatus.FAILED,
                    venue_transfer_id=str(row.get("tranId", "")) or None,
                    reason="" if ok else f"venue status {row.get('status')}",
                    event_ns=int(row.get("createTimeStamp", 0)) * MS or time.time_ns(),
                )
        return None

    async def sub_account_balances(self, account: str, market: Market) -> list[Balance]:
        """A sub-account's wallet read with the main account's key: Spot from ``GET /sapi/v4/sub-account/assets``
        (decimal strings; v3 gives JSON numbers), USD-M from ``GET /sapi/v2/sub-account/futures/account``
        (``futuresType=1``), whose ``maxWithdrawAmount`` is the ``free`` a transfer can take out and the rest of
        ``walletBalance`` is ``locked``. The master endpoints are on the Spot API: the main account's Spot client."""
        name = account.split("/", 1)[1] if "/" in account else account
        action = f"read the {market.value} balances of sub-account {name}"
        if self.market is not Market.SPOT:
            raise Unsupported("the master endpoints are on the main account's Spot client", account=self.account,
                              action=action)  # fmt: skip
        ref = self.context.account_refs.get(name)
        if ref is None:
            raise Unsupported("no venue id (email) known for it", account=self.account, action=action)
        s = await self._ready()
        now, who = time.time_ns(), f"{self.context.exchange}/{name}"
        out: list[Balance] = []
        if Market(market) is Market.SPOT:
            body = await s.request("sub_assets", {"email": ref}, action=action)
            for r in (body.get("balances") or []) if isinstance(body, dict) else []:
                free, locked = Decimal(str(r.get("free", "0"))), Decimal(str(r.get("locked", "0")))
                if free or locked:
                    out.append(Balance(account=who, market=Market.SPOT, asset=r["asset"], free=_dec(free),
                                       locked=_dec(locked), event_ns=now))  # fmt: skip
            return out
        body = await s.request("sub_futures_account", {"email": ref, "futuresType": 1}, action=action)
        resp = body.get("futureAccountResp", {}) if isinstance(body, dict) else {}
        for r in resp.get("assets") or []:
            free = Decimal(str(r.get("maxWithdrawAmount", "0")))
            locked = max(Decimal(str(r.get("walletBalance", "0"))) - free, Decimal(0))
            if free or locked:
                out.append(Balance(account=who, market=Market.USDM, asset=r["asset"], free=_dec(free),
                                   locked=_dec(locked), event_ns=now))  # fmt: skip
        return out

    # ---- clock, keys, life ----------------------------------------------------------------------------------
    async def server_time_ns(self) -> int:
        await self.session.ensure_started()
        return await self.session.fetch_server_time_ms() * MS

    async def set_credentials(self, creds: Credentials) -> None:
        """Every later request (REST and WebSocket API) is signed with ``creds``; nothing holds the old key:
        Binance's WebSocket API here signs per request (no ``session.logon``)."""
        if Market(creds.market) is not self.market:
            raise ValueError(
                f"set_credentials: a {creds.market} key for the {self.market.value} client of {self.account}"
            )
        self.session.set_key(creds.api_key, creds.secret)

    async def close(self) -> None:
        for task in list(self.resolving.values()):
            task.cancel()
        await self.session.close()


def _dec(x: Decimal) -> str:
    """A decimal string without exponent or trailing zeros (``"0"`` for zero)."""
    text = format(x.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def _plain(rate: Decimal) -> str:
    """A rate as a plain decimal string without trailing zeros (``0.00100000`` -> ``0.001``)."""
    return "0" if rate == 0 else format(rate.normalize(), "f")
