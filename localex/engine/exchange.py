"""The ``Exchange`` facade: accounts, keys, wallets, transfers, orders, futures settings, market data.

Every public method is one atomic operation: when it returns, the book, balances and positions are
consistent, pending stops have been triggered, and every event it caused has been delivered to the
listeners (order events as they happen; depth, book ticker, kline and account events at the end).

``Exchange`` is the top of a stack of layers (see ``exchange_state``); this module holds the orders, market data,
replay and conservation checks.
"""

from __future__ import annotations

from . import errors as E
from .accounts import Account
from .event_types import AggTradeEvent, BookTickerEvent, OrderEvent, TradeEvent
from .exchange_state import FUNDING_INTERVAL_NS, DepthSnapshot
from .futures import (
    initial_margin,
)
from .futures_settings import FuturesSettings
from .marketdata import INTERVALS, Ticker24h
from .markets import SPOT, USDM
from .types import NEW, PARTIALLY_FILLED, WALLET_SPOT, X_AMENDMENT, Fill, Kline, Order, OrderRequest, OrderResult


class Exchange(FuturesSettings):
    """The local exchange's core. See CONTRACT.md for the full contract; the layers below it, ``exchange_state``."""

    # ================================================================================ orders
    def place_order(self, account_id: str, req: OrderRequest) -> OrderResult:
        """Validate, reserve and execute a new order; returns its snapshot and its taker fills."""
        acc = self.ledger.accounts.get(account_id) or self.ledger.get(account_id)
        m = self.matcher
        if not self._depth:  # _begin(), inline
            self._settle_due()
        self._depth += 1
        try:
            done = m.place_spot_limit(acc, req) if req.type == "LIMIT" else None
            if done is None:
                order = m.build(acc, req)
                fills = m.place(acc, order)
            else:
                order, fills = done
        finally:
            self._end()
        st = order.status
        if st == NEW or st == PARTIALLY_FILLED:
            order = order.snapshot()  # still open: it changes later, the caller gets a copy
        return OrderResult(order, fills)

    def test_order(self, account_id: str, req: OrderRequest) -> None:
        """Every check of ``place_order`` (filters, duplicates, balance/margin), nothing placed."""
        acc = self.ledger.get(account_id)
        m = self.matcher
        order = m.build(acc, req)
        key = (order.market, order.symbol)
        spec = order.spec
        assert spec is not None
        if spec.is_futures:
            opening = m._opening_lots(acc, order, order.orig_qty)
            price = order.price or m._ref_price(order, key)
            im = initial_margin(price * opening * spec.notional_unit, acc.leverage_of(order.symbol))
            if opening and im > m.available(acc) and not acc.unlimited:
                raise E.margin_insufficient()
            return
        if order.side == "BUY":
            need = order.quote_order_qty or spec.lock_quote(
                (order.price or order.stop_price or m._ref_price(order, key)) * order.orig_qty * spec.notional_unit
            )
            asset = spec.quote_asset
        else:
            need = order.orig_qty * spec.qty_unit
            asset = spec.base_asset
        b = acc.spot.get(asset)
        if (b.free if b else 0) < need and not acc.unlimited:
            raise E.insufficient_balance()

    def batch_orders(self, account_id: str, reqs: list[OrderRequest]) -> list[OrderResult | E.ExchangeError]:
        """Place each request in order; a failure becomes its ExchangeError in the result list."""
        out: list[OrderResult | E.ExchangeError] = []
        for r in reqs:
            try:
                out.append(self.place_order(account_id, r))
            except E.ExchangeError as exc:
                out.append(exc)
        return out

    def _find(
        self, acc: Account, market: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        key = (market, symbol)
        self.spec(market, symbol)
        if order_id is not None:
            o = self.matcher.orders[key].get(int(order_id))
            if o is None or o.account_id != acc.account_id:
                return None
            if client_order_id and o.client_order_id != client_order_id:
                return None
            return o
        if client_order_id:
            o = acc.open_by_client_id.get((market, symbol, client_order_id))
            if o is not None:
                return o
            for o in reversed(list(self.matcher.orders[key].values())):
                if o.account_id == acc.account_id and o.client_order_id == client_order_id:
                    return o
            return None
        raise E.ExchangeError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")

    def cancel_order(
        self, account_id: str, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """Cancel one open order; -2011 "Unknown order sent." if unknown or not open."""
        acc = self.ledger.accounts.get(account_id) or self.ledger.get(account_id)
        orders = self.matcher.orders.get((market, symbol))
        if orders is not None and order_id.__class__ is int and not client_order_id:
            o = orders.get(order_id)  # ``_find`` by orderId, inline
            if o is not None and o.account_id != acc.account_id:
                o = None
        else:
            o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None or (o.status != NEW and o.status != PARTIALLY_FILLED):
            raise E.unknown_order_cancel()
        if not self._depth:  # _begin(), inline
            self._settle_due()
        self._depth += 1
        try:
            self.matcher.cancel(acc, o)
        finally:
            self._end()
        return o  # closed for good: never changes again, no copy needed (see CONTRACT.md)

    def cancel_all(self, account_id: str, market: str, symbol: str) -> list[Order]:
        """Cancel every open order (and pending stop) of the account on the symbol."""
        acc = self.ledger.get(account_id)
        self.spec(market, symbol)
        orders = list(acc.open_orders.get((market, symbol), {}).values())
        self._begin()
        try:
            for o in orders:
                self.matcher.cancel(acc, o)
        finally:
            self._end()
        return orders  # all closed for good (see CONTRACT.md)

    def modify_order(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        side: str,
        quantity: str,
        price: str,
    ) -> Order:
        """Amend a resting LIMIT order (futures PUT /fapi/v1/order): cancel and re-place, same ids.

        The order loses queue priority, may match at once, and keeps its orderId and clientOrderId.
        """
        acc = self.ledger.get(account_id)
        o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None or not o.is_open:
            raise E.ExchangeError(-2013, "Order does not exist.")
        if o.type != "LIMIT" or side != o.side:
            raise E.ExchangeError(-1130, "Data sent for parameter 'side' is not valid.")
        spec = self.spec(market, symbol)
        new_qty = spec.parse_qty(quantity)
        new_price = spec.parse_price(price)
        self.matcher.check_percent_price(spec, new_price)
        if new_qty <= o.executed_qty:
            raise E.ExchangeError(-4020, "Invalid quantity.")
        m = self.matcher
        key = (market, symbol)
        self._begin()
        try:
            m.books[key].side(o.side).remove(o)
            m.dirty.add(key)
            m._release(acc, o)
            old = (o.orig_qty, o.price)
            o.orig_qty, o.price = new_qty, new_price
            try:
                m._reserve(acc, o, key)
            except E.ExchangeError:
                o.orig_qty, o.price = old
                m._reserve(acc, o, key)
                m.books[key].side(o.side).add(o)
                raise
            o.update_ns = self.clock()
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_AMENDMENT, o.snapshot(), None, o.update_ns))
            m._execute(acc, o, key, m.books[key])
        finally:
            self._end()
        return o.snapshot()

    def get_order(
        self, account_id: str, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """One order (any status); -2013 "Order does not exist." if unknown."""
        acc = self.ledger.get(account_id)
        o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None:
            raise E.no_such_order()
        return o.snapshot()

    def open_orders(self, account_id: str, market: str, symbol: str | None = None) -> list[Order]:
        """Open orders (also pending stops), by symbol then order id."""
        acc = self.ledger.get(account_id)
        if symbol is not None:
            self.spec(market, symbol)
        out = [
            o.snapshot()
            for (mk, sym), bucket in sorted(acc.open_orders.items())
            if mk == market and (symbol is None or sym == symbol)
            for o in bucket.values()
        ]
        out.sort(key=lambda o: (o.symbol, o.order_id))
        return out

    def all_orders(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[Order]:
        """The account's orders on the symbol (all statuses), order id ascending, at most ``limit``."""
        self.spec(market, symbol)
        acc = self.ledger.get(account_id)
        out = [
            o
            for o in self.matcher.orders[(market, symbol)].values()
            if o.account_id == acc.account_id
            and (order_id is None or o.order_id >= order_id)
            and (start_ns is None or o.time_ns >= start_ns)
            and (end_ns is None or o.time_ns <= end_ns)
        ]
        out = out[:limit] if order_id is not None or start_ns is not None else out[-limit:]
        return [o.snapshot() for o in out]

    def my_trades(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        """The account's fills on the symbol, trade id ascending."""
        self.spec(market, symbol)
        self.ledger.get(account_id)
        fills = self.matcher.fills.get((account_id, market, symbol), [])
        out = [
            f
            for f in fills
            if (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start_ns is None or f.time_ns >= start_ns)
            and (end_ns is None or f.time_ns <= end_ns)
        ]
        return out[:limit] if from_id is not None or start_ns is not None else out[-limit:]

    # ================================================================================ market data
    def depth(self, market: str, symbol: str, limit: int = 100) -> DepthSnapshot:
        """Order book snapshot, best first, with the update id of the diff stream."""
        self.spec(market, symbol)
        b = self.matcher.books[(market, symbol)]
        return DepthSnapshot(b.update_id, b.bids.depth(limit), b.asks.depth(limit), self.clock())

    def recent_trades(self, market: str, symbol: str, limit: int = 500) -> list[TradeEvent]:
        """Newest ``limit`` public trades, oldest first."""
        self.spec(market, symbol)
        t = list(self.matcher.md[(market, symbol)].trades)
        return t[-limit:] if limit > 0 else []

    def agg_trades(
        self,
        market: str,
        symbol: str,
        from_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[AggTradeEvent]:
        """Aggregate trades (kept: the newest 1000)."""
        self.spec(market, symbol)
        a = [
            x
            for x in self.matcher.md[(market, symbol)].aggs
            if (from_id is None or x.agg_id >= from_id)
            and (start_ns is None or x.time_ns >= start_ns)
            and (end_ns is None or x.time_ns <= end_ns)
        ]
        return a[:limit] if from_id is not None or start_ns is not None else a[-limit:]

    def klines(
        self,
        market: str,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Candles of ``interval`` (see ``marketdata.INTERVALS``); -1120 "Invalid interval." otherwise."""
        self.spec(market, symbol)
        if interval not in INTERVALS:
            raise E.ExchangeError(-1120, "Invalid interval.")
        return self.matcher.md[(market, symbol)].get_klines(interval, start_ms, end_ms, limit)

    def ticker_24h(self, market: str, symbol: str) -> Ticker24h:
        """Rolling 24h statistics."""
        self.spec(market, symbol)
        return self.matcher.md[(market, symbol)].ticker_24h(self.clock())

    def book_ticker(self, market: str, symbol: str) -> BookTickerEvent:
        """Best bid/ask now."""
        self.spec(market, symbol)
        b = self.matcher.books[(market, symbol)]
        bb, ba = b.bids.best(), b.asks.best()
        return BookTickerEvent(
            market, symbol, b.update_id, bb, b.bids.qty.get(bb, 0), ba, b.asks.qty.get(ba, 0), self.clock()
        )

    def last_price(self, market: str, symbol: str) -> int:
        """Last trade price in ticks (0 before the first trade)."""
        self.spec(market, symbol)
        return self.matcher.md[(market, symbol)].last_price

    def record_path_price(self, market: str, symbol: str, ticks: int) -> None:
        """Feed a replayed path price into the klines (no trade)."""
        self.matcher.md[(market, symbol)].on_price(ticks, self.clock())
        self.matcher.dirty.add((market, symbol))

    # ================================================================================ replay
    def advance(self, now_ns: int | None = None) -> None:
        """Move time to ``now_ns`` (default: the clock): charge the funding times passed, move the replay.

        With a replay, several funding times passed in one advance are each charged at their own marks: the
        replay is moved to each funding time, that time is charged, then the replay moves on to ``now_ns``.
        """
        now = self.clock() if now_ns is None else now_ns
        replay = self.replay
        while self.next_funding_ns <= now:
            t = self.next_funding_ns
            if replay is not None and not self._depth:
                self._depth += 1  # the frame of the move, without settling (t is settled right here)
                try:
                    replay.advance(t)  # type: ignore[attr-defined]
                finally:
                    self._end()
            self.settle_funding(t)
        if replay is not None:
            replay.advance(now)  # type: ignore[attr-defined]

    # ================================================================================ checks
    def totals(self, wallet: str = WALLET_SPOT) -> dict[str, int]:
        """Sum over every account (including liquidity and fees) of free + locked per asset."""
        out: dict[str, int] = {}
        for acc in self.ledger.accounts.values():
            for a, b in acc.wallet(wallet).items():
                out[a] = out.get(a, 0) + b.free + b.locked
        return out

    def futures_equity_total(self) -> int:
        """Sum over every account of USDT futures wallet + unrealised PnL at the current marks."""
        total = 0
        for acc in self.ledger.accounts.values():
            b = acc.futures.get("USDT")
            total += b.free if b else 0
            for (sym, _), p in acc.positions.items():
                spec = self._specs[(USDM, sym)]
                total += self.matcher.mark_of(sym) * p.qty * spec.notional_unit - p.cost
        return total


__all__ = ["Exchange", "DepthSnapshot", "SPOT", "USDM"]


__all__ = ["FUNDING_INTERVAL_NS", "DepthSnapshot", "Exchange"]
