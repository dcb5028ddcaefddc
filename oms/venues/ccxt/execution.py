"""Order entry and account queries over ccxt's unified REST API, answered in model types.

Every call goes through ``_call``: ccxt's exception becomes the interface's typed error naming the action,
the order and the account (``failed to cancel order X for bybit/sub_mm: ...``); a state-changing request
whose answer never came becomes ``UNKNOWN`` (never "failed", never re-sent) and ``resolve`` settles it by
the client order id; a rejected timestamp (``InvalidNonce``) resyncs ccxt's clock offset and retries the
call once when it is idempotent (queries, cancels).

ccxt's trades carry the venue's order id but no client order id, so the client remembers the mapping from
every order it has seen (placed, queried, streamed) and asks the venue for an order it has not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt

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
    PlaceOrder,
    Position,
    PositionMode,
    Transfer,
    TransferEvent,
    TransferKind,
    TransferStatus,
)
from oms.venues.ccxt import parse
from oms.venues.ccxt.capabilities import native
from oms.venues.ccxt.errors import Kind, classify
from oms.venues.ccxt.errors_map import venue_error
from oms.venues.ccxt.instruments import CcxtInstruments

log = logging.getLogger(__name__)

_CCXT_ACCOUNT = {Market.SPOT: "spot", Market.USDM: "swap"}


class CcxtExecution:
    def __init__(self, exchange: Any, account: str, market: Market, instruments: CcxtInstruments) -> None:
        self.exchange = exchange
        self.account = account  # "exchange/name"
        self.market = market
        self.instruments = instruments
        self.hedge_mode = False
        self._cid_by_venue_id: dict[str, str] = {}
        self._symbol_by_cid: dict[str, str] = {}
        self.clock_resyncs = 0

    # --- plumbing ----------------------------------------------------------------------------------

    async def _call(
        self,
        action: str,
        target: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        state_changing: bool,
        idempotent: bool,
        **kwargs: Any,
    ) -> Any:
        for attempt in (0, 1):
            try:
                return await fn(*args, **kwargs)
            except (TimeoutError, ccxt.BaseError, ConnectionError) as exc:
                c = classify(exc, state_changing=state_changing)
                if c.kind is Kind.CLOCK and attempt == 0:
                    await self._resync_clock()
                    if idempotent:
                        continue
                raise venue_error(c, action=action, target=target, account=self.account, cause=exc) from exc
        raise AssertionError("unreachable")

    async def _resync_clock(self) -> None:
        """Measure the venue's clock again (ccxt's ``load_time_difference``) and sign with the offset."""
        self.clock_resyncs += 1
        try:
            await self.exchange.load_time_difference()
            self.exchange.options["adjustForTimeDifference"] = True
        except ccxt.BaseError as exc:
            log.warning("%s: clock resync failed: %s", self.account, exc)

    def remember(self, order: Order) -> Order:
        if order.venue_order_id:
            self._cid_by_venue_id[order.venue_order_id] = order.client_order_id
        self._symbol_by_cid[order.client_order_id] = order.symbol
        return order

    def _order(self, o: Any, strategy: str = "") -> Order:
        return self.remember(parse.order(self.account, o, strategy))

    def client_order_id_of(self, venue_order_id: str) -> str | None:
        return self._cid_by_venue_id.get(venue_order_id)

    # --- orders ------------------------------------------------------------------------------------

    async def place(self, cmd: PlaceOrder) -> Order:
        cmd = cmd.with_client_order_id()
        cid = cmd.client_order_id
        assert cid is not None
        self.instruments.get(cmd.symbol).check_order(cmd.price if cmd.order_type.has_limit_price else None, cmd.qty)
        symbol, typ, side, amount, price, params = parse.create_order_args(cmd, self.hedge_mode)
        self._symbol_by_cid[cid] = cmd.symbol
        o = await self._call(
            "place",
            f"order {cid}",
            self.exchange.create_order,
            symbol,
            typ,
            side,
            amount,
            price,
            params,
            state_changing=True,
            idempotent=False,
        )
        o = dict(o)
        o.setdefault("clientOrderId", cid)
        if not o.get("clientOrderId"):
            o["clientOrderId"] = cid
        if not o.get("symbol"):
            o["symbol"] = cmd.symbol
        if o.get("amount") is None or o.get("status") is None:  # a venue that answers only the id
            return await self.query(cmd.symbol, cid) or self._order({**o, "amount": amount, "status": "open"})
        return self._order(o, cmd.strategy)

    async def place_batch(self, cmds: list[PlaceOrder]) -> list[Order | Exception]:
        """Place several orders: one native batch request where the venue has one for this market (ccxt
        ``createOrders``), else concurrently one by one. Each result is the ``Order`` or its typed error."""
        cmds = [c.with_client_order_id() for c in cmds]
        if native(self.exchange.has, "createOrders") and self.market is Market.USDM and len(cmds) > 1:
            batch = []
            for cmd in cmds:
                symbol, typ, side, amount, price, params = parse.create_order_args(cmd, self.hedge_mode)
                batch.append(
                    {"symbol": symbol, "type": typ, "side": side, "amount": amount, "price": price, "params": params}
                )
                self._symbol_by_cid[str(cmd.client_order_id)] = cmd.symbol
            ids = ", ".join(str(c.client_order_id) for c in cmds)
            answers = await self._call(
                "place", f"orders {ids}", self.exchange.create_orders, batch, state_changing=True, idempotent=False
            )
            out: list[Order | Exception] = []
            for cmd, o in zip(cmds, answers, strict=False):
                try:
                    out.append(self._order(o, cmd.strategy))
                except parse.BadValue:
                    c = classify(ccxt.InvalidOrder(f"{self.exchange.id} {o.get('info')}"), state_changing=True)
                    out.append(
                        venue_error(c, action="place", target=f"order {cmd.client_order_id}", account=self.account)
                    )
            return out
        results = await asyncio.gather(*(self.place(c) for c in cmds), return_exceptions=True)
        return [r if isinstance(r, Order | Exception) else RuntimeError(str(r)) for r in results]

    async def amend(self, cmd: AmendOrder) -> Order:
        """Change price and/or quantity in place (ccxt ``editOrder``)."""
        current = await self.query(cmd.symbol, cmd.client_order_id)
        if current is None:
            c = classify(
                ccxt.OrderNotFound(f"{self.exchange.id} no open order {cmd.client_order_id}"), state_changing=False
            )
            raise venue_error(c, action="amend", target=f"order {cmd.client_order_id}", account=self.account)
        typ = "limit" if current.order_type.has_limit_price else "market"
        amount = float(cmd.qty or current.qty)
        price = float(cmd.price or current.price) if (cmd.price or current.price) else None
        o = await self._call(
            "amend",
            f"order {cmd.client_order_id}",
            self.exchange.edit_order,
            current.venue_order_id,
            cmd.symbol,
            typ,
            cmd.side.value,
            amount,
            price,
            {"clientOrderId": cmd.client_order_id},
            state_changing=True,
            idempotent=False,
        )
        o = dict(o)
        o["clientOrderId"] = o.get("clientOrderId") or cmd.client_order_id
        return self._order(o)

    async def cancel(self, cmd: CancelOrder) -> Order:
        vid = cmd.venue_order_id or self._venue_id_of(cmd.client_order_id)
        o = await self._call(
            "cancel",
            f"order {cmd.client_order_id}",
            self.exchange.cancel_order,
            vid,
            cmd.symbol,
            {"clientOrderId": cmd.client_order_id},
            state_changing=True,
            idempotent=True,
        )
        o = dict(o)
        o["clientOrderId"] = o.get("clientOrderId") or cmd.client_order_id
        o["symbol"] = o.get("symbol") or cmd.symbol
        if o.get("amount") is None or o.get("status") is None:
            return await self.query(cmd.symbol, cmd.client_order_id) or self._order(o)
        return self._order(o)

    def _venue_id_of(self, cid: str) -> str | None:
        for vid, c in self._cid_by_venue_id.items():
            if c == cid:
                return vid
        return None

    async def cancel_all(self, cmd: CancelAll) -> list[Order]:
        """Cancel every open order on a symbol (or on all symbols the account has open orders on)."""
        symbols = [cmd.symbol] if cmd.symbol else sorted({o.symbol for o in await self.open_orders()})
        out: list[Order] = []
        for symbol in symbols:
            before = await self.open_orders(symbol)
            answer = await self._call(
                "cancel all orders", f"on {symbol}", self.exchange.cancel_all_orders, symbol,
                state_changing=True, idempotent=True,
            )  # fmt: skip
            parsed = []
            for o in answer if isinstance(answer, list) else ():
                try:
                    parsed.append(self._order(o))
                except parse.BadValue:
                    continue
            if not parsed:  # the venue answered without the orders: read what became of each
                for b in before:
                    after = await self.query(symbol, b.client_order_id)
                    if after is not None:
                        parsed.append(after)
            out.extend(parsed)
        return out

    async def query(self, symbol: str, client_order_id: str) -> Order | None:
        """The order by its client order id; None when the venue has no such order."""
        try:
            o = await self._call(
                "query",
                f"order {client_order_id}",
                self.exchange.fetch_order,
                None,
                symbol,
                {"clientOrderId": client_order_id},
                state_changing=False,
                idempotent=True,
            )
        except Exception as exc:
            if getattr(exc, "kind", None) == "not_found" or isinstance(exc.__cause__, ccxt.OrderNotFound):
                return None
            raise
        o = dict(o)
        o["clientOrderId"] = o.get("clientOrderId") or client_order_id
        return self._order(o)

    async def resolve(self, symbol: str, client_order_id: str, attempts: int = 3) -> Order | None:
        """Settle an UNKNOWN outcome: the order's true state by its client order id (None: it never reached
        the venue). Network errors during the query are retried ``attempts`` times."""
        for i in range(attempts):
            try:
                return await self.query(symbol, client_order_id)
            except Exception as exc:
                if i == attempts - 1 or getattr(exc, "kind", None) not in ("network", "unknown", "rate_limited"):
                    raise
                await asyncio.sleep(0.1 * (i + 1))
        return None

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        answer = await self._call(
            "list open orders", f"on {symbol or 'all symbols'}", self.exchange.fetch_open_orders, symbol,
            state_changing=False, idempotent=True,
        )  # fmt: skip
        return [self._order(o) for o in answer if o.get("clientOrderId")]

    async def fills_since(self, since_ns: int, symbol: str | None = None) -> list[Fill]:
        """Our fills at or after ``since_ns`` (oldest first), each with its order's client order id."""
        symbols = [symbol] if symbol else sorted(set(self._symbol_by_cid.values()))
        fills: list[Fill] = []
        for s in symbols:
            trades = await self._call(
                "list fills", f"on {s}", self.exchange.fetch_my_trades, s, since_ns // parse.MS,
                state_changing=False, idempotent=True,
            )  # fmt: skip
            for t in trades:
                cid = await self.client_order_id_for(s, str(t.get("order")))
                if cid is None:
                    continue
                fills.append(parse.fill(self.account, t, cid))
        fills.sort(key=lambda f: (f.event_ns, f.trade_id))
        return fills

    async def client_order_id_for(self, symbol: str, venue_order_id: str) -> str | None:
        cid = self._cid_by_venue_id.get(venue_order_id)
        if cid is not None:
            return cid
        try:
            o = await self._call(
                "query", f"order id {venue_order_id}", self.exchange.fetch_order, venue_order_id, symbol,
                state_changing=False, idempotent=True,
            )  # fmt: skip
        except Exception as exc:
            log.warning("%s: cannot learn the client order id of venue order %s: %s", self.account, venue_order_id, exc)
            return None
        if not o.get("clientOrderId"):
            return None
        return self._order(o).client_order_id

    # --- account -----------------------------------------------------------------------------------

    async def balances(self) -> list[Balance]:
        b = await self._call("read balances", "", self.exchange.fetch_balance, state_changing=False, idempotent=True)
        return list(parse.balances(self.account, self.market, b, time.time_ns()))

    async def positions(self, symbols: list[str] | None = None) -> list[Position]:
        if self.market is not Market.USDM:
            return []
        rows = await self._call(
            "read positions", "", self.exchange.fetch_positions, symbols, state_changing=False, idempotent=True
        )
        return [parse.position(self.account, p) for p in rows if p.get("contracts")]

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        await self._call(
            "set leverage", f"on {symbol}", self.exchange.set_leverage, leverage, symbol,
            state_changing=True, idempotent=True,
        )  # fmt: skip
        return AccountSettings(account=self.account, symbol=symbol, leverage=leverage, event_ns=time.time_ns())

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        try:
            await self._call(
                "set margin type", f"on {symbol}", self.exchange.set_margin_mode, margin_type.value, symbol,
                state_changing=True, idempotent=True,
            )  # fmt: skip
        except Exception as exc:
            if not isinstance(exc.__cause__, ccxt.NoChange):  # already so: the goal holds
                raise
        return AccountSettings(account=self.account, symbol=symbol, margin_type=margin_type, event_ns=time.time_ns())

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        try:
            await self._call(
                "set position mode", mode.value, self.exchange.set_position_mode, mode is PositionMode.HEDGE,
                state_changing=True, idempotent=True,
            )  # fmt: skip
        except Exception as exc:
            if not isinstance(exc.__cause__, ccxt.NoChange):
                raise
        self.hedge_mode = mode is PositionMode.HEDGE
        return AccountSettings(account=self.account, position_mode=mode, event_ns=time.time_ns())

    async def transfer(self, t: Transfer) -> TransferEvent:
        """Move an asset between this account's markets (ccxt's unified ``transfer``). Transfers between
        accounts (main <-> sub) are not part of ccxt's unified API: they raise the not-supported error."""
        if t.kind is not TransferKind.MARKET or t.from_account != t.to_account:
            c = classify(
                ccxt.NotSupported(f"{self.exchange.id} sub-account transfers are not in ccxt's unified API"),
                state_changing=False,
            )
            raise venue_error(c, action="transfer", target=f"transfer {t.transfer_id}", account=self.account)
        try:
            answer = await self._call(
                "transfer", f"transfer {t.transfer_id}", self.exchange.transfer, t.asset, float(t.amount),
                _CCXT_ACCOUNT[t.from_market], _CCXT_ACCOUNT[t.to_market], state_changing=True, idempotent=False,
            )  # fmt: skip
        except Exception as exc:
            if getattr(exc, "kind", None) != "unknown":
                raise
            return TransferEvent(transfer=t, status=TransferStatus.UNKNOWN, reason=str(exc), event_ns=time.time_ns())
        vid = answer.get("id")
        return TransferEvent(
            transfer=t,
            status=TransferStatus.DONE,
            venue_transfer_id=None if vid is None else str(vid),
            event_ns=time.time_ns(),
        )
