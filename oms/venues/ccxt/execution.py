"""``ExecutionClient`` over ccxt's unified REST API: orders, queries, account state, settings, transfers.

Every call goes through ``_call``: ccxt's exception becomes the interface's typed error naming the action,
the order and the account (``failed to cancel order X for bybit/sub_mm: ...``). A state-changing request
whose answer never came raises ``UnknownOutcome`` (never "failed", never re-sent); ``query_order`` settles
it by the client order id. A rejected timestamp (``ClockSkew``, Binance -1021) resyncs the shared clock and
retries the call once when it is idempotent (queries, cancels, settings), never a placement.

ccxt's trades carry the venue's order id but no client order id, so the client remembers the mapping of
every order it has seen (placed, queried, streamed) and asks the venue for one it has not.

Where ccxt keeps trigger orders in a book of their own (``metadata.trigger_book``: Binance USD-M's Algo Order
API), the client remembers which of its orders are trigger orders and passes ccxt's ``trigger`` flag to query,
cancel and list them; once triggered, such an order is the ordinary order it became (same client order id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import ccxt
import msgspec

from oms.archive.records import Funding
from oms.keys.provider import Credentials
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
    OrderType,
    PlaceOrder,
    Position,
    PositionMode,
    Transfer,
    TransferEvent,
    TransferKind,
    TransferStatus,
)
from oms.venues.ccxt import parse, settings
from oms.venues.ccxt.errors import to_venue_error
from oms.venues.ccxt.instruments import CcxtInstruments
from oms.venues.ccxt.metadata import trigger_book
from oms.venues.ccxt.session import Session
from oms.venues.ccxt.ws_orders import OPERATIONS, REST, WS, WsOrders
from oms.venues.errors import (
    ClockSkew,
    NetworkError,
    OrderNotFound,
    Rejected,
    UnknownOutcome,
    Unsupported,
    VenueError,
)
from oms.venues.interface import VenueContext
from oms.venues.metadata import Capabilities, CommissionRates, VenueMetadata

log = logging.getLogger(__name__)

_WALLET = {Market.SPOT: "spot", Market.USDM: "swap"}
DAY_MS = 86_400_000


class CcxtExecution:
    """One account's trading on one market through one ccxt.pro instance (shared with its user stream)."""

    def __init__(
        self,
        ctx: VenueContext,
        session: Session,
        instruments: CcxtInstruments,
        capabilities: Capabilities,
        metadata: VenueMetadata,
    ) -> None:
        self.context = ctx
        self.capabilities = capabilities
        self.metadata = metadata
        self.session = session
        self.account = str(ctx.account)
        self.market = ctx.market
        self.instruments = instruments
        self.hedge_mode = False
        self._cid_by_venue_id: dict[str, str] = {}
        self._symbol_by_cid: dict[str, str] = {}
        # trigger orders in a separate book, by client order id -> the type placed (ccxt's unified order shows a
        # trailing stop as "market", and the order a trigger became as its new type)
        self._trigger_cids: dict[str, OrderType] = {}
        self.replaced: dict[str, str] = {}  # venue order id cancelled by a cancel-replace -> its client order id
        self.user_stream: Any = None  # the user stream, told about orders placed here (set by the connector)
        opts = ctx.options
        self.ws = WsOrders(
            session, ctx.endpoints.ws_api_url, ctx.limiter,
            timeout_s=float(opts.get("ws_api_timeout_s", 2.0)), cooldown_s=float(opts.get("ws_cooldown_s", 5.0)),
            enabled=bool(opts.get("ws_api_orders", True)),
        )  # fmt: skip

    @property
    def exchange(self) -> Any:
        """The session's current ccxt instance (a key switch replaces it)."""
        return self.session.exchange

    # --- plumbing ----------------------------------------------------------------------------------

    async def _call(
        self,
        action: str,
        order: str | None,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        state_changing: bool,
        idempotent: bool,
    ) -> Any:
        for attempt in (0, 1):
            try:
                return await fn(*args)
            except (TimeoutError, ccxt.BaseError, ConnectionError) as exc:
                cause = exc
                err = to_venue_error(
                    exc,
                    state_changing=state_changing,
                    action=action,
                    account=self.account,
                    order=order,
                    headers=getattr(self.exchange, "last_response_headers", None),
                    answer=getattr(self.exchange, "last_json_response", None),
                )
            if isinstance(err, ClockSkew) and attempt == 0:
                await self.context.clock.resync()
                if idempotent:
                    continue
            raise err from cause
        raise AssertionError("unreachable")

    async def _ws_or_rest(
        self, op: str, action: str, order: str | None, args: tuple[Any, ...], ws_args: tuple[Any, ...] | None = None
    ) -> Any:
        """ccxt's WebSocket call for ``op`` (with ``ws_args``, default ``args``) where ``WsOrders.route`` says so,
        else (or after a cancel's failed WebSocket attempt) its REST call; see ``oms.venues.ccxt.ws_orders``."""
        ws_name, rest_name, _ = OPERATIONS[op]
        path, reason = self.ws.route(op)
        if path == WS and op == "place" and ws_args is None:
            path, reason = REST, "rest-only: order params"
        if path == WS:
            await self.ws.charge(op)
            t0 = time.perf_counter_ns()
            try:
                answer = await asyncio.wait_for(getattr(self.exchange, ws_name)(*(ws_args or args)), self.ws.timeout_s)
            except (TimeoutError, ccxt.BaseError, ConnectionError) as exc:
                err = to_venue_error(exc, state_changing=True, action=action, account=self.account, order=order)
                if not isinstance(err, UnknownOutcome | NetworkError):  # the venue answered
                    self.ws.record(op, WS, reason, t0, type(err).__name__)
                    raise err from exc
                self.ws.failed()
                self.ws.record(op, WS, reason, t0, "no answer")
                if op == "place":  # it may have reached the venue: resolved by its client order id, never re-sent
                    raise UnknownOutcome(
                        f"sent over the WebSocket API, no answer ({type(exc).__name__}: {exc})",
                        account=self.account, action=action, order=order,
                    ) from exc  # fmt: skip
                reason = f"ws failed: {type(exc).__name__}"
            else:
                self.ws.record(op, WS, reason, t0, "ok")
                return answer
        t0 = time.perf_counter_ns()
        try:
            answer = await self._call(
                action, order, getattr(self.exchange, rest_name), *args, state_changing=True, idempotent=op == "cancel"
            )
        except VenueError as err:
            self.ws.record(op, REST, reason, t0, type(err).__name__)
            raise
        self.ws.record(op, REST, reason, t0, "ok")
        return answer

    def remember(self, order: Order) -> Order:
        if order.venue_order_id:
            self._cid_by_venue_id[order.venue_order_id] = order.client_order_id
        self._symbol_by_cid[order.client_order_id] = order.symbol
        if self.user_stream is not None:
            self.user_stream.track(order)
        return order

    def _order(self, o: Any, cid: str | None = None, symbol: str | None = None, strategy: str = "") -> Order:
        o = dict(o)
        # An order keeps the client order id it was placed with. ccxt reports the one of the request it
        # answers, which for a cancel is the cancel's own on some venues (Binance Spot's DELETE answer): the id
        # remembered for the venue order id wins, then the id the request named.
        known = self._cid_by_venue_id.get(str(o.get("id"))) if o.get("id") is not None else None
        if known or cid:
            o["clientOrderId"] = known or cid
        if not o.get("symbol") and symbol:
            o["symbol"] = symbol
        order = parse.order(self.account, o, strategy)
        placed = self._trigger_cids.get(order.client_order_id)
        if placed is not None and order.order_type is not placed:
            order = msgspec.structs.replace(order, order_type=placed)
        return self.remember(order)

    def _event(self, order: Order, kind: OrderEventKind | None = None) -> OrderEvent:
        return parse.order_event(
            order, kind or parse.event_kind(None, order) or OrderEventKind.ACCEPTED, time.time_ns()
        )

    @property
    def trigger_book(self) -> bool:
        return trigger_book(getattr(self.exchange, "features", None) or {}, self.market)

    def _is_trigger(self, cmd: PlaceOrder) -> bool:
        t = cmd.order_type
        return self.trigger_book and (t.has_trigger or t is OrderType.TRAILING_STOP_MARKET)

    @staticmethod
    def _triggered(o: Any) -> bool:
        """A trigger order of the separate book that has become an ordinary order."""
        info = o.get("info") if isinstance(o, dict) else None
        return isinstance(info, dict) and info.get("algoStatus") in ("TRIGGERING", "TRIGGERED", "FINISHED")

    # --- orders ------------------------------------------------------------------------------------

    async def place(self, cmd: PlaceOrder) -> OrderEvent:
        cid = cmd.client_order_id
        if cid is None:
            raise ValueError(f"place order for {self.account}: no client order id (use with_client_order_id())")
        if not self.capabilities.supports(cmd.order_type):
            raise Unsupported(
                f"{self.exchange.id} {self.market} has no {cmd.order_type} orders", account=self.account,
                action="place", order=cid,
            )  # fmt: skip
        symbol, typ, side, amount, price, params = parse.create_order_args(cmd, self.hedge_mode)
        self._symbol_by_cid[cid] = cmd.symbol
        if self._is_trigger(cmd):
            self._trigger_cids[cid] = cmd.order_type
        if self._is_trigger(cmd):  # the trigger book's own calls (query, cancel, list) are REST ones
            o = await self._call(
                "place", cid, self.exchange.create_order, symbol, typ, side, amount, price, params,
                state_changing=True, idempotent=False,
            )  # fmt: skip
        else:
            ws_params = self.ws.place_params(params)
            o = await self._ws_or_rest(
                "place", "place", cid, (symbol, typ, side, amount, price, params),
                None if ws_params is None else (symbol, typ, side, amount, price, ws_params),
            )  # fmt: skip
        if o.get("amount") is None or o.get("status") is None:  # a venue that answers only the id
            order = await self.query_order(cmd.symbol, cid)
        else:
            order = self._order(o, cid, cmd.symbol, cmd.strategy)
        return self._event(order)

    async def place_batch(self, cmds: Sequence[PlaceOrder]) -> list[OrderEvent | VenueError]:
        """One ``createOrders`` request per ``max_batch`` commands where the market has it, else one by one
        (concurrently). Each result is the event or the typed error of that order (not raised)."""
        if not (self.capabilities.batch_orders and len(cmds) > 1):
            results = await asyncio.gather(*(self.place(c) for c in cmds), return_exceptions=True)
            return [r if isinstance(r, OrderEvent | VenueError) else _as_error(r, self.account) for r in results]
        out: list[OrderEvent | VenueError] = []
        size = max(1, self.capabilities.max_batch)
        for start in range(0, len(cmds), size):
            chunk = list(cmds[start : start + size])
            out.extend(await self._batch(chunk))
        return out

    async def _batch(self, cmds: list[PlaceOrder]) -> list[OrderEvent | VenueError]:
        batch = []
        for cmd in cmds:
            symbol, typ, side, amount, price, params = parse.create_order_args(cmd, self.hedge_mode)
            batch.append(
                {"symbol": symbol, "type": typ, "side": side, "amount": amount, "price": price, "params": params}
            )
            self._symbol_by_cid[str(cmd.client_order_id)] = cmd.symbol
        ids = ", ".join(str(c.client_order_id) for c in cmds)
        answers = await self._call(
            "place", ids, self.exchange.create_orders, batch, state_changing=True, idempotent=False
        )
        # ccxt sorts a batch's answers by time (a refused order, without one, comes first): match them to the
        # commands by client order id, and the refused ones to the remaining commands in their order
        by_cid = {str(o.get("clientOrderId")): o for o in answers if o.get("id") is not None}
        refused = iter([o for o in answers if o.get("id") is None])
        out: list[OrderEvent | VenueError] = []
        for cmd in cmds:
            o = by_cid.get(str(cmd.client_order_id))
            if o is not None:
                out.append(self._event(self._order(o, cmd.client_order_id, cmd.symbol, cmd.strategy)))
                continue
            text = f"{self.exchange.id} {parse.raw_info(next(refused, {}))}"
            err = to_venue_error(
                ccxt.InvalidOrder(text), state_changing=True, action="place", account=self.account,
                order=cmd.client_order_id,
            )  # fmt: skip
            out.append(err)
        return out

    async def amend(self, cmd: AmendOrder) -> OrderEvent:
        """Change price and/or quantity (ccxt ``editOrder``): in place where ``capabilities.amend``; as one
        cancel-replace where ``capabilities.cancel_replace`` (Spot: the same client order id, a new venue order id)."""
        if not (self.capabilities.amend or self.capabilities.cancel_replace):
            raise Unsupported(
                f"{self.exchange.id} {self.market} cannot amend in place", account=self.account, action="amend",
                order=cmd.client_order_id,
            )  # fmt: skip
        current = await self.query_order(cmd.symbol, cmd.client_order_id)
        typ = "limit" if current.order_type.has_limit_price else "market"
        amount = float(cmd.qty or current.qty)
        price_text = cmd.price or current.price
        params: dict[str, Any] = {"clientOrderId": cmd.client_order_id}
        replace = not self.capabilities.amend
        if replace:
            if current.order_type is OrderType.LIMIT_MAKER:
                params["postOnly"] = True
            # the old order's cancel is the replace's first half: the user stream does not report it as the end
            # of the client order id (``replaced``); kept after an unknown outcome, which the caller resolves
            self.replaced[str(current.venue_order_id)] = cmd.client_order_id
        try:
            o = await self._call(
                "amend", cmd.client_order_id, self.exchange.edit_order, current.venue_order_id, cmd.symbol, typ,
                cmd.side.value, amount, float(price_text) if price_text else None, params,
                state_changing=True, idempotent=False,
            )  # fmt: skip
        except UnknownOutcome:
            raise
        except VenueError:
            if replace:
                self.replaced.pop(str(current.venue_order_id), None)
            raise
        order = self._order(o, cmd.client_order_id, cmd.symbol)
        return self._event(order, OrderEventKind.AMENDED if order.status.is_open else None)

    async def cancel(self, cmd: CancelOrder) -> OrderEvent:
        if cmd.client_order_id in self._trigger_cids:
            cancelled = await self._cancel_trigger(cmd)
            if cancelled is not None:
                return cancelled
        vid = cmd.venue_order_id or self._venue_id_of(cmd.client_order_id)
        o = await self._ws_or_rest(
            "cancel", "cancel", cmd.client_order_id, (vid, cmd.symbol, {"clientOrderId": cmd.client_order_id})
        )
        if o.get("amount") is None or o.get("status") is None:
            order = await self.query_order(cmd.symbol, cmd.client_order_id)
        else:
            order = self._order(o, cmd.client_order_id, cmd.symbol)
        return self._event(order)

    async def _cancel_trigger(self, cmd: CancelOrder) -> OrderEvent | None:
        """Cancel a trigger order waiting in its book; None when it has triggered (cancel it as an order)."""
        cid = cmd.client_order_id
        try:
            await self._call(
                "cancel", cid, self.exchange.cancel_order, None, cmd.symbol, {"clientOrderId": cid, "trigger": True},
                state_changing=True, idempotent=True,
            )  # fmt: skip
        except (OrderNotFound, Rejected):
            if self._triggered(await self._fetch_trigger(cmd.symbol, cid)):
                return None
            raise
        return self._event(await self.query_order(cmd.symbol, cid))

    async def _fetch_trigger(self, symbol: str, cid: str) -> Any:
        return await self._call(
            "query", cid, self.exchange.fetch_order, None, symbol, {"clientOrderId": cid, "trigger": True},
            state_changing=False, idempotent=True,
        )  # fmt: skip

    def _venue_id_of(self, cid: str) -> str | None:
        for vid, c in self._cid_by_venue_id.items():
            if c == cid:
                return vid
        return None

    async def cancel_all(self, cmd: CancelAll) -> list[OrderEvent]:
        """One ``cancelAllOrders`` per symbol (every symbol with open orders when ``cmd.symbol`` is None), or a
        loop of cancels where the venue has no such call."""
        open_orders = await self.open_orders(cmd.symbol)
        symbols = [cmd.symbol] if cmd.symbol else sorted({o.symbol for o in open_orders})
        out: list[OrderEvent] = []
        for symbol in symbols:
            mine = [o for o in open_orders if o.symbol == symbol]
            if not self.capabilities.cancel_all:
                for o in mine:
                    out.append(
                        await self.cancel(
                            CancelOrder(account=self.account, symbol=symbol, client_order_id=o.client_order_id)
                        )
                    )
                continue
            answer = await self._call(
                f"cancel all orders on {symbol}", None, self.exchange.cancel_all_orders, symbol,
                state_changing=True, idempotent=True,
            )  # fmt: skip
            if any(o.client_order_id in self._trigger_cids for o in mine):
                await self._call(
                    f"cancel all trigger orders on {symbol}", None, self.exchange.cancel_all_orders, symbol,
                    {"trigger": True}, state_changing=True, idempotent=True,
                )  # fmt: skip
            parsed = {}
            for o in answer if isinstance(answer, list) else ():
                try:
                    order = self._order(o, symbol=symbol)
                except parse.BadValue:
                    continue
                parsed[order.client_order_id] = order
            for o in mine:  # the venue answered without (some of) the orders: read what became of each
                if o.client_order_id not in parsed:
                    parsed[o.client_order_id] = await self.query_order(symbol, o.client_order_id)
            out.extend(self._event(o) for o in parsed.values())
        return out

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        """The order as the venue has it now, by client order id; ``OrderNotFound`` when it has none. A trigger
        order of a separate book is read there until it triggers, then as the order it became."""
        cid = client_order_id
        if cid in self._trigger_cids:
            o = await self._fetch_trigger(symbol, cid)
            if not self._triggered(o):
                return self._order(o, cid, symbol)
        try:
            o = await self._call(
                "query", cid, self.exchange.fetch_order, None, symbol, {"clientOrderId": cid},
                state_changing=False, idempotent=True,
            )  # fmt: skip
        except OrderNotFound:
            if not self.trigger_book or cid in self._trigger_cids or cid in self._symbol_by_cid:
                raise
            o = await self._fetch_trigger(symbol, cid)  # an order this client did not place: maybe a trigger one
            self._trigger_cids[cid] = parse.order_type(o)
            if self._triggered(o):
                return await self.query_order(symbol, cid)
            return self._order(o, cid, symbol)
        return self._order(o, cid, symbol)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        answer = await self._call(
            "list open orders", None, self.exchange.fetch_open_orders, symbol, state_changing=False, idempotent=True
        )
        if self.trigger_book:
            waiting = await self._call(
                "list open trigger orders", None, self.exchange.fetch_open_orders, symbol, None, None,
                {"trigger": True}, state_changing=False, idempotent=True,
            )  # fmt: skip
            for o in waiting:
                if o.get("clientOrderId"):
                    self._trigger_cids.setdefault(str(o["clientOrderId"]), parse.order_type(o))
            answer = [*answer, *waiting]
        return [self._order(o) for o in answer if o.get("clientOrderId")]

    async def fills(self, symbol: str, since_ns: int, until_ns: int | None = None) -> list[Fill]:
        """Our fills on ``symbol`` in ``[since_ns, until_ns)``, oldest first, every page (windows of the
        venue's ``untilDays`` and pages of its ``limit``, from ccxt's ``features``)."""
        feature = self._features().get("fetchMyTrades") or {}
        window_ms = int((feature.get("untilDays") or 7) * DAY_MS)
        limit = int(feature.get("limit") or 500)
        start = since_ns // parse.MS
        # "now" on the venue's clock, with a second of slack for the offset's error (no fill is in the future)
        end = until_ns // parse.MS if until_ns is not None else self.context.clock.server_time_ms() + 1000
        seen: set[str] = set()
        fills: list[Fill] = []
        while start < end:
            stop = min(end, start + window_ms)
            trades = await self._call(
                f"list fills on {symbol}", None, self.exchange.fetch_my_trades, symbol, start, limit,
                {"until": stop - 1}, state_changing=False, idempotent=True,
            )  # fmt: skip
            for t in trades:
                ts = t.get("timestamp") or 0
                if str(t.get("id")) in seen or not start <= ts < stop:
                    continue
                seen.add(str(t.get("id")))
                cid = await self.client_order_id_for(symbol, str(t.get("order")))
                if cid is not None:
                    fills.append(parse.fill(self.account, t, cid))
            if len(trades) >= limit:  # a full page: go on from its last trade
                start = max(start + 1, int(max(t.get("timestamp") or 0 for t in trades)))
            else:
                start = stop
        fills.sort(key=lambda f: (f.event_ns, f.trade_id))
        return fills

    def _features(self) -> dict[str, Any]:
        features = getattr(self.exchange, "features", None) or {}
        if self.market is Market.SPOT:
            return features.get("spot") or {}
        return (features.get("swap") or {}).get("linear") or {}

    async def client_order_id_for(self, symbol: str, venue_order_id: str) -> str | None:
        """The client order id of a venue order id (remembered, else asked of the venue; None if unknown)."""
        cid = self._cid_by_venue_id.get(venue_order_id)
        if cid is not None:
            return cid
        try:
            o = await self._call(
                "query", f"id {venue_order_id}", self.exchange.fetch_order, venue_order_id, symbol,
                state_changing=False, idempotent=True,
            )  # fmt: skip
        except OrderNotFound:
            return None
        if not o.get("clientOrderId"):
            return None
        return self._order(o, symbol=symbol).client_order_id

    # --- account -----------------------------------------------------------------------------------

    async def balances(self) -> list[Balance]:
        b = await self._call("read balances", None, self.exchange.fetch_balance, state_changing=False, idempotent=True)
        return list(parse.balances(self.account, self.market, b, time.time_ns()))

    async def commission(self, symbol: str) -> CommissionRates:
        """The account's commission on ``symbol``: ccxt's ``fetch_trading_fee``, the venue's own strings where its
        answer has them. On Binance Spot that method reads ``/sapi/v1/asset/tradeFee``; the account endpoint
        ``GET /api/v3/account/commission`` (ccxt's implicit ``privateGetAccountCommission``) is read instead, as the
        Binance connector does: standard + special + tax, before a BNB discount."""
        if not self.capabilities.commission_rates:
            raise Unsupported("the venue does not report commission rates", account=self.account,
                              action=f"read the commission on {symbol}")  # fmt: skip
        action = f"read the commission on {symbol}"
        ex = self.exchange
        if self.market is Market.SPOT and hasattr(ex, "privateGetAccountCommission"):
            await self._call("load markets", None, ex.load_markets, state_changing=False, idempotent=True)
            venue = ex.market(symbol)["id"]
            body = await self._call(action, None, ex.privateGetAccountCommission, {"symbol": venue},
                                    state_changing=False, idempotent=True)  # fmt: skip
            parts = [body.get(k) or {} for k in ("standardCommission", "specialCommission", "taxCommission")]
            maker = sum((Decimal(str(p.get("maker", "0"))) for p in parts), Decimal(0))
            taker = sum((Decimal(str(p.get("taker", "0"))) for p in parts), Decimal(0))
        else:
            fee = await self._call(action, None, ex.fetch_trading_fee, symbol, state_changing=False, idempotent=True)
            info = fee.get("info") if isinstance(fee.get("info"), dict) else {}
            maker = Decimal(str(info.get("makerCommissionRate") or ex.number_to_string(fee["maker"])))
            taker = Decimal(str(info.get("takerCommissionRate") or ex.number_to_string(fee["taker"])))
        return CommissionRates(symbol=symbol, maker=_plain(maker), taker=_plain(taker))

    async def positions(self, symbol: str | None = None) -> list[Position]:
        if self.market is not Market.USDM:
            return []
        symbols = [symbol] if symbol else None
        rows = await self._call(
            "read positions", None, self.exchange.fetch_positions, symbols, state_changing=False, idempotent=True
        )
        return [parse.position(self.account, p) for p in rows if p.get("contracts")]

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        answer = await self._call(
            f"set leverage {leverage} on {symbol}", None, self.exchange.set_leverage, leverage, symbol,
            state_changing=True, idempotent=True,
        )  # fmt: skip
        got = (answer or {}).get("leverage") or (answer or {}).get("longLeverage") or leverage
        return AccountSettings(account=self.account, symbol=symbol, leverage=int(got), event_ns=time.time_ns())

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        try:
            await self._call(
                f"set margin type {margin_type} on {symbol}", None, self.exchange.set_margin_mode,
                margin_type.value, symbol, state_changing=True, idempotent=True,
            )  # fmt: skip
        except Rejected as exc:
            if not isinstance(exc.__cause__, ccxt.NoChange):  # already so: the goal holds
                raise
        return AccountSettings(account=self.account, symbol=symbol, margin_type=margin_type, event_ns=time.time_ns())

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        try:
            await self._call(
                f"set position mode {mode}", None, self.exchange.set_position_mode, mode is PositionMode.HEDGE,
                state_changing=True, idempotent=True,
            )  # fmt: skip
        except Rejected as exc:  # refused: success if the account is in that mode already (ccxt's NoChange, or
            if not isinstance(exc.__cause__, ccxt.NoChange):  # a venue code ccxt does not map: ask the venue)
                self.hedge_mode = mode is not PositionMode.HEDGE
                if await self.position_mode() is not mode:
                    raise
        self.hedge_mode = mode is PositionMode.HEDGE
        return AccountSettings(account=self.account, position_mode=mode, event_ns=time.time_ns())

    async def position_mode(self) -> PositionMode:
        if self.market is not Market.USDM:
            return PositionMode.ONE_WAY
        if getattr(self.exchange, "has", {}).get("fetchPositionMode") is not True:
            return PositionMode.HEDGE if self.hedge_mode else PositionMode.ONE_WAY
        answer = await self._call(
            "read position mode", None, self.exchange.fetch_position_mode, None, state_changing=False, idempotent=True
        )
        self.hedge_mode = bool((answer or {}).get("hedged"))
        return PositionMode.HEDGE if self.hedge_mode else PositionMode.ONE_WAY

    async def symbol_settings(self, symbol: str | None = None) -> list[AccountSettings]:
        """USD-M: each symbol's leverage and margin type (ccxt's ``fetchLeverages``; ``settings``). Not part of
        ``ExecutionClient``: the daemon reads it, where a connector has it, before enforcing its targets."""
        return await settings.symbol_settings(self, symbol)

    async def funding_payments(self, since_ns: int, until_ns: int | None = None) -> list[Funding]:
        """USD-M funding fees since ``since_ns`` (ccxt's ``fetchFundingHistory``; ``settings``)."""
        return await settings.funding_payments(self, since_ns, until_ns)

    async def transfer(self, transfer: Transfer) -> TransferEvent:
        """Move an asset between this account's markets (ccxt's unified ``transfer``). Transfers between
        accounts (main <-> sub) are not in ccxt's unified API: ``Unsupported``."""
        t = transfer
        if t.kind is not TransferKind.MARKET or t.from_account != t.to_account:
            raise Unsupported(
                "transfers between accounts are not part of ccxt's unified API", account=self.account,
                action=f"transfer {t.transfer_id}",
            )  # fmt: skip
        try:
            answer = await self._call(
                f"transfer {t.transfer_id}", None, self.exchange.transfer, t.asset, float(t.amount),
                _WALLET[t.from_market], _WALLET[t.to_market], state_changing=True, idempotent=False,
            )  # fmt: skip
        except UnknownOutcome as exc:
            return TransferEvent(transfer=t, status=TransferStatus.UNKNOWN, reason=str(exc), event_ns=time.time_ns())
        vid = (answer or {}).get("id")
        return TransferEvent(
            transfer=t, status=TransferStatus.DONE, venue_transfer_id=None if vid is None else str(vid),
            event_ns=time.time_ns(),
        )  # fmt: skip

    async def find_transfer(self, transfer: Transfer, since_ns: int | None = None) -> TransferEvent | None:
        """ccxt's unified API keeps no history of transfers by our id: ``Unsupported``."""
        raise Unsupported(
            "ccxt's unified API has no transfer history by client id", account=self.account,
            action=f"find transfer {transfer.transfer_id}",
        )  # fmt: skip

    async def sub_account_balances(self, account: str, market: Market) -> list[Balance]:
        """ccxt's unified API has no master-key read of a sub-account's wallet (``has`` has no such entry; only
        per-exchange implicit endpoints): ``Unsupported``, and each sub-account is read with its own key."""
        raise Unsupported(
            "ccxt's unified API cannot read a sub-account's balances with the main key", account=self.account,
            action=f"read the {Market(market).value} balances of sub-account {account}",
        )  # fmt: skip

    async def server_time_ns(self) -> int:
        ms = await self._call("read server time", None, self.exchange.fetch_time, state_changing=False, idempotent=True)
        return int(ms) * parse.MS

    async def set_credentials(self, creds: Credentials) -> None:
        """Sign with the new key from the next request: a new ccxt instance with the key replaces the current
        one (its private streams re-subscribe with it). The old key is unused once this returns; ``AuthError``
        (the old instance kept) if the venue refuses the new key."""
        if (self.exchange.apiKey, self.exchange.secret) == (creds.api_key, creds.secret):
            return
        old = self.session.exchange
        await self.session.switch_key(creds.api_key, creds.secret)
        try:
            await self._call(
                "check the new key", None, self.exchange.fetch_balance, state_changing=False, idempotent=True
            )
        except VenueError:
            new, self.session.exchange = self.session.exchange, old
            await new.close()
            raise
        if self.user_stream is not None:  # its watchers wait on the old instance: move them to the new one
            await self.user_stream.restart()
        await old.close()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def _as_error(exc: BaseException, account: str) -> VenueError:
    return VenueError(f"{type(exc).__name__}: {exc}", account=account, action="place")


def _plain(rate: Decimal) -> str:
    """A rate as a plain decimal string without trailing zeros (``0.00100000`` -> ``0.001``)."""
    return "0" if rate == 0 else format(rate.normalize(), "f")
