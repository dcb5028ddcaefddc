"""Order validation, placement, matching, settlement and stop triggers for all books.

``Matcher`` owns the books, every order and fill, and the pending stop orders. Matching is
price-time priority; the taker trades at the maker's price. Spot settlement moves locked funds and
charges the commission in the received asset; futures settlement updates positions, realises PnL
into the USDT futures wallet and charges the commission in USDT. Every fee goes to the fee account.
"""

from __future__ import annotations

from bisect import insort
from collections import deque

from . import errors as E
from .accounts import Account
from .book import Book, BookSide
from .event_types import AggTradeEvent, OrderEvent, TradeEvent
from .fees import FeeSchedule
from .markets import SPOT, parse_decimal
from .matcher_state import MAX_TRIGGER_ROUNDS, TRIGGERED_TYPE
from .settlement import Settlement
from .types import (
    BUY,
    CANCELED,
    EXPIRED,
    EXPIRED_IN_MATCH,
    FILLED,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    TRAILING_STOP_MARKET,
    X_CANCELED,
    X_EXPIRED,
    X_NEW,
    X_TRADE,
    X_TRADE_PREVENTION,
    Fill,
    Order,
    OrderRequest,
)


class Matcher(Settlement):
    """All books, orders, fills and stop orders; see the module docstring. Built on ``Settlement``, which
    builds on ``Reservations``, ``OrderValidation`` and ``MatcherState``."""

    # ================================================================================ placement
    def place(self, acc: Account, order: Order) -> list[Fill]:
        """Reserve funds, assign the id and run the order (or park it as a stop). Returns taker fills."""
        key = (order.market, order.symbol)
        self._check_open_limits(acc, order, key)
        if order.type in TRIGGERED_TYPE:
            self._reserve(acc, order, key)
            self._register(acc, order, key)
            order.is_working = False
            order.working_ns = -1
            if order.type == TRAILING_STOP_MARKET and not order.activation_price:
                order.trail_extreme = self._trigger_price(order, key)
            self.stops[key].append(order)
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
            return []
        book = self.books[key]
        if order.type == LIMIT_MAKER or order.time_in_force == GTX:
            best = book.opposite(order.side).best()
            if best and (order.price >= best if order.side == BUY else order.price <= best):
                raise E.post_only_spot() if order.market == SPOT else E.post_only_futures()
        if order.time_in_force == FOK and not self._fok_fillable(book, order):
            if order.market != SPOT:
                raise E.ExchangeError(
                    -5021,
                    "Due to the order could not be filled immediately, the FOK "
                    "order has been rejected. The order will not be recorded in "
                    "the order history",
                )
            self._register(acc, order, key)
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return []
        self._reserve(acc, order, key)
        self._register(acc, order, key)
        if self.em.active:
            self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
        return self._execute(acc, order, key, book)

    def place_spot_limit(self, acc: Account, req: OrderRequest) -> tuple[Order, list[Fill]] | None:
        """``build`` + ``place`` of a spot LIMIT order in one go (the hot path of the server).

        None, with nothing changed, when the request is not a plain spot LIMIT whose strings were seen
        before (see ``_build_spot_limit``): the caller then takes the general path. Same checks, same
        clock reads, same state and events as ``place(build(req))``; a resting GTC order that crosses
        nothing skips the matching loop.
        """
        key = (req.market, req.symbol)
        spec = self.specs.get(key)
        if spec is None or spec.is_futures:
            return None
        order = self._build_spot_limit(acc, req, spec)
        if order is None:
            return None
        side = order.side
        price = order.price
        qty = order.orig_qty
        tif = order.time_in_force
        # ---- place
        book = self.books[key]
        if tif == FOK and not self._fok_fillable(book, order):
            return order, self.place(acc, order)
        if side == BUY:
            buy = True
            asset = spec.quote_asset
            need = price * qty * spec.notional_unit
            if spec.quote_scale != 1:
                need = spec.lock_quote(need)
            opp = book.asks.prices
            crosses = bool(opp) and opp[0] <= price
        else:
            buy = False
            asset = spec.base_asset
            need = qty * spec.qty_unit
            opp = book.bids.prices
            crosses = bool(opp) and opp[-1] >= price
        bucket = acc.open_orders.get(key)  # _check_open_limits, inline (a LIMIT order is never algo)
        if bucket is not None and len(bucket) >= spec.max_num_orders and not acc.unlimited:
            raise E.max_open_orders(False)
        self._lock_spot(acc, order, asset, need)
        em = self.em
        # _register
        oid = self.next_order_id[key]
        self.next_order_id[key] = oid + 1
        order.order_id = oid
        self.orders[key][oid] = order
        if bucket is None:
            bucket = acc.open_orders[key] = {}
        bucket[oid] = order
        acc.open_by_client_id[(order.market, order.symbol, order.client_order_id)] = order
        if em.active:
            em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
        if crosses or tif != GTC:
            return order, self._execute(acc, order, key, book)
        # nothing to match: rest at the back of the level (``_execute`` + ``_conclude`` + ``BookSide.add``)
        fills: list[Fill] = []
        bside = book.bids if buy else book.asks
        level = bside.levels.get(price)
        if level is None:
            bside.levels[price] = deque((order,))
            bside.qty[price] = qty
            insort(bside.prices, price)
        else:
            level.append(order)
            bside.qty[price] += qty
        bside.changed.add(price)
        self.dirty.add(key)
        return order, fills

    def _check_open_limits(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        """MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS of the symbol, before anything is reserved."""
        bucket = acc.open_orders.get(key)
        if not bucket or acc.unlimited:
            return
        spec = order.spec
        assert spec is not None
        if len(bucket) >= spec.max_num_orders:
            raise E.max_open_orders(spec.is_futures)
        if (
            order.type in TRIGGERED_TYPE
            and sum(1 for o in self.stops[key] if o.account_id == acc.account_id) >= spec.max_num_algo_orders
        ):
            raise E.max_algo_orders(spec.is_futures)

    def _register(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        oid = self.next_order_id[key]
        self.next_order_id[key] = oid + 1
        order.order_id = oid
        self.orders[key][oid] = order
        bucket = acc.open_orders.get(key)
        if bucket is None:
            bucket = acc.open_orders[key] = {}
        bucket[oid] = order
        acc.open_by_client_id[(order.market, order.symbol, order.client_order_id)] = order

    @staticmethod
    def _unregister(acc: Account, order: Order) -> None:
        market, symbol = order.market, order.symbol
        bucket = acc.open_orders.get((market, symbol))
        if bucket is not None:
            bucket.pop(order.order_id, None)
        cid_key = (market, symbol, order.client_order_id)
        by_cid = acc.open_by_client_id
        if by_cid.get(cid_key) is order:
            del by_cid[cid_key]

    @staticmethod
    def _fok_fillable(book: Book, order: Order) -> bool:
        opp = book.opposite(order.side)
        need = order.orig_qty
        prices = opp.prices if order.side == BUY else reversed(opp.prices)
        for p in prices:
            if order.price and (p > order.price if order.side == BUY else p < order.price):
                break
            need -= opp.qty[p]
            if need <= 0:
                return True
        return False

    # ================================================================================ matching
    def _execute(self, acc: Account, order: Order, key: tuple[str, str], book: Book) -> list[Fill]:
        """Match ``order`` as taker at the makers' prices, then rest, fill or expire it."""
        fills: list[Fill] = []
        buy = order.side == BUY
        opp = book.asks if buy else book.bids
        limit = order.price
        by_quote = order.quote_order_qty
        if order.reduce_only and order.market != SPOT:
            self._clip_reduce_only(acc, order)
        prices = opp.prices
        levels = opp.levels
        spec = order.spec
        assert spec is not None
        nu = spec.notional_unit
        scale = spec.quote_scale
        plain = not by_quote and order.market == SPOT  # spot makers are never reduce-only
        last_agg = None
        expired_in_match = False
        while prices:
            if order.orig_qty <= order.executed_qty and not by_quote:
                break
            best = prices[0] if buy else prices[-1]
            if limit and (best > limit if buy else best < limit):
                break
            maker = levels[best][0]
            if maker.account_id == order.account_id and order.self_trade_prevention_mode != STP_NONE:
                if self._self_trade(order, maker, opp):
                    expired_in_match = True
                    break
                continue
            if plain:  # ``_lots`` of a quantity-based spot taker, inline
                remaining = order.orig_qty - order.executed_qty
                mrem = maker.orig_qty - maker.executed_qty
                lots = remaining if remaining < mrem else mrem
                if buy and order.locked * scale < best * lots * nu:
                    lots = order.locked * scale // (best * nu)
                    if lots <= 0:
                        break
            else:
                lots = self._lots(order, maker, best)
            if lots < 0:  # the maker was expired (reduce-only without position): next one
                continue
            if lots == 0:
                break
            last_agg = self._trade(acc, order, maker, best, lots, opp, fills, last_agg)
        if last_agg is not None and self.em.want_agg:
            self.em.emit(last_agg)
        self._conclude(acc, order, key, book, expired_in_match, bool(fills))
        return fills

    @staticmethod
    def _clip_reduce_only(acc: Account, order: Order) -> None:
        """A reduce-only order never increases exposure: clip it to the position."""
        pos = acc.positions.get((order.symbol, order.position_side))
        size = abs(pos.qty) if pos else 0
        if order.orig_qty > size:
            order.orig_qty = size if size > order.executed_qty else order.executed_qty

    def _self_trade(self, order: Order, maker: Order, opp: BookSide) -> bool:
        """Apply the taker's STP mode against its own maker; True if the taker must stop (expire)."""
        mode = order.self_trade_prevention_mode
        if mode in (STP_EXPIRE_MAKER, STP_EXPIRE_BOTH):
            mk_acc = self.ledger.accounts[maker.account_id]
            opp.remove(maker)
            self.dirty.add((maker.market, maker.symbol))
            maker.prevented_qty += maker.orig_qty - maker.executed_qty
            self._finish(mk_acc, maker, EXPIRED_IN_MATCH, X_TRADE_PREVENTION if maker.market == SPOT else X_EXPIRED)
        return mode in (STP_EXPIRE_TAKER, STP_EXPIRE_BOTH)

    def _lots(self, order: Order, maker: Order, best: int) -> int:
        """Lots the taker can trade with ``maker`` at ``best`` (0: stop matching, -1: maker expired)."""
        spec = order.spec
        assert spec is not None
        nu = spec.notional_unit
        remaining = order.orig_qty - order.executed_qty
        mrem = maker.orig_qty - maker.executed_qty
        scale = spec.quote_scale
        if order.quote_order_qty:
            can = (order.quote_order_qty - order.cum_quote) * scale // (best * nu)
            lots = can if can < mrem else mrem
        else:
            lots = remaining if remaining < mrem else mrem
            if order.side == BUY and order.market == SPOT and order.locked * scale < best * lots * nu:
                lots = order.locked * scale // (best * nu)
        if lots <= 0:
            return 0
        if maker.reduce_only and maker.market != SPOT:
            mk_acc = self.ledger.accounts[maker.account_id]
            mpos = mk_acc.positions.get((maker.symbol, maker.position_side))
            msize = abs(mpos.qty) if mpos else 0
            if msize == 0:
                self.books[(maker.market, maker.symbol)].side(maker.side).remove(maker)
                self._finish(mk_acc, maker, EXPIRED, X_EXPIRED)
                return -1
            lots = min(lots, msize)
        return lots

    def _conclude(
        self, acc: Account, order: Order, key: tuple[str, str], book: Book, expired_in_match: bool, traded: bool
    ) -> None:
        """After matching: expire (STP, IOC/FOK/MARKET), fill, or rest the remainder in the book.

        An order filled by this matching is closed without another event: its last TRADE event already said
        FILLED, as Binance's does."""
        held, self._held = self._held, None
        if order.quote_order_qty and order.executed_qty and not expired_in_match:
            order.orig_qty = order.executed_qty
            if held is not None:  # the last trade filled it: that event says so
                held.order.status = FILLED
                held.order.orig_qty = order.executed_qty
                self.em.emit(held)
            self._finish(acc, order, FILLED, None, emit=held is None)
            return
        if held is not None:
            self.em.emit(held)
        if expired_in_match:
            order.prevented_qty += order.orig_qty - order.executed_qty
            self._finish(acc, order, EXPIRED_IN_MATCH, X_TRADE_PREVENTION if order.market == SPOT else X_EXPIRED)
            return
        if order.quote_order_qty:
            order.orig_qty = order.executed_qty
            self._finish(
                acc, order, FILLED if order.executed_qty else EXPIRED, None if order.executed_qty else X_EXPIRED
            )
            return
        remaining = order.orig_qty - order.executed_qty
        if remaining <= 0:
            self._finish(acc, order, FILLED, None, emit=not traded)
            return
        if order.type == MARKET or order.time_in_force in (IOC, FOK):
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return
        spec = order.spec
        assert spec is not None
        if order.locked and order.side == BUY and order.market == SPOT:
            # a spot buy that took better prices returns its surplus lock before resting
            surplus = order.locked - spec.lock_quote(order.price * remaining * spec.notional_unit)
            if surplus > 0:
                bal = acc.bal(acc.spot, spec.quote_asset)
                bal.locked -= surplus
                bal.free += surplus
                order.locked -= surplus
        book.side(order.side).add(order)
        self.dirty.add(key)

    def _trade(
        self,
        acc: Account,
        taker: Order,
        maker: Order,
        price: int,
        lots: int,
        opp: BookSide,
        fills: list[Fill],
        last_agg: AggTradeEvent | None,
    ) -> AggTradeEvent | None:
        spec = taker.spec
        assert spec is not None
        key = (taker.market, taker.symbol)
        md = self.md[key]
        now = self.clock()
        tid = md.next_trade_id
        md.next_trade_id = tid + 1
        mk_acc = self.ledger.accounts[maker.account_id]
        quote = price * lots * spec.notional_unit
        if spec.quote_scale != 1:
            quote = spec.settled_quote(quote)  # the settlement rule (markets.py): truncated to 1e-8, both sides
        buy = taker.side == BUY
        if spec.is_futures:
            t_fill = self._settle_futures(acc, taker, price, lots, quote, tid, False, now, spec)
            m_fill = self._settle_futures(mk_acc, maker, price, lots, quote, tid, True, now, spec)
        else:
            t_fill = self._settle_spot(acc, taker, price, lots, quote, tid, False, now, spec)
            m_fill = self._settle_spot(mk_acc, maker, price, lots, quote, tid, True, now, spec)
        fills.append(t_fill)
        opp.qty[price] -= lots  # opp.reduce(price, lots), inline
        opp.changed.add(price)
        trade = TradeEvent(
            taker.market,
            taker.symbol,
            tid,
            price,
            lots,
            taker.order_id if buy else maker.order_id,
            maker.order_id if buy else taker.order_id,
            not buy,
            now,
        )
        md.trades.append(trade)  # md.record_trade(trade), inline
        md.last_price = price
        md._pending.append(trade)
        if last_agg is not None and last_agg.price == price and last_agg.last_trade_id == tid - 1:
            last_agg.qty += lots
            last_agg.last_trade_id = tid
        else:
            if last_agg is not None and self.em.want_agg:
                self.em.emit(last_agg)  # the previous aggregate is complete
            last_agg = AggTradeEvent(taker.market, taker.symbol, md.next_agg_id, price, lots, tid, tid, not buy, now)
            md.next_agg_id += 1
            md.aggs.append(last_agg)
        self.dirty.add(key)
        maker_done = maker.executed_qty >= maker.orig_qty
        if maker_done:
            opp.pop_head(price)
        em = self.em
        if em.active:
            if em.want_trade:
                em.emit(trade)
            taker.status = (
                FILLED if taker.executed_qty >= taker.orig_qty and not taker.quote_order_qty else PARTIALLY_FILLED
            )
            taker_event = OrderEvent(acc.account_id, X_TRADE, taker.snapshot(), t_fill, now)
            if taker.quote_order_qty:  # filled or not is known after its matching (``_conclude``)
                if self._held is not None:
                    em.emit(self._held)
                self._held = taker_event
            else:
                em.emit(taker_event)
        if maker_done:
            self._finish(mk_acc, maker, FILLED, None, m_fill)
        else:
            maker.status = PARTIALLY_FILLED
            if em.active:
                em.emit(OrderEvent(mk_acc.account_id, X_TRADE, maker.snapshot(), m_fill, now))
        taker.status = PARTIALLY_FILLED
        return last_agg

    def _finish(
        self,
        acc: Account,
        order: Order,
        status: str,
        exec_type: str | None,
        fill: Fill | None = None,
        emit: bool = True,
    ) -> None:
        """Close an order: release what it holds, drop it from the open index, emit the event (unless ``emit`` is
        False: an event already told it)."""
        order.status = status
        order.update_ns = self.clock()
        if order.locked or order.margin:
            self._release(acc, order)
        self._unregister(acc, order)
        if emit and self.em.active:
            # a closed order never changes again: the event carries it without a copy
            self.em.emit(OrderEvent(acc.account_id, exec_type or X_TRADE, order, fill, order.update_ns))

    # ================================================================================ cancel
    def cancel(self, acc: Account, order: Order, status: str = CANCELED, exec_type: str = X_CANCELED) -> None:
        """Cancel an open order (resting or pending stop)."""
        key = (order.market, order.symbol)
        if order.is_working:
            book = self.books[key]
            (book.bids if order.side == BUY else book.asks).remove(order)
            self.dirty.add(key)
        else:
            self.stops[key].remove(order)
        self._finish(acc, order, status, exec_type)

    # ================================================================================ stops
    def check_stops(self, key: tuple[str, str]) -> None:
        """Trigger every pending stop of ``key`` whose condition holds; repeat while trades move prices."""
        for _ in range(MAX_TRIGGER_ROUNDS):
            pending = self.stops[key]
            if not pending:
                return
            fired: list[Order] = []
            for order in pending:
                p = self._trigger_price(order, key)
                if not p:
                    continue
                if order.type == TRAILING_STOP_MARKET:
                    if self._trail(order, p):
                        fired.append(order)
                elif self._triggers(order, p):
                    fired.append(order)
            if not fired:
                return
            for order in fired:
                pending.remove(order)
                self._fire(order, key)

    @staticmethod
    def _trail(order: Order, p: int) -> bool:
        buy = order.side == BUY
        if not order.trail_extreme:
            act = order.activation_price
            if act and (p > act if buy else p < act):
                return False
            order.trail_extreme = p
        if buy:
            order.trail_extreme = min(order.trail_extreme, p)
        else:
            order.trail_extreme = max(order.trail_extreme, p)
        bp = int(parse_decimal("callbackRate", order.callback_rate) * 100)
        ext = order.trail_extreme
        if buy:
            return p * 10000 >= ext * (10000 + bp)
        return p * 10000 <= ext * (10000 - bp)

    def _fire(self, order: Order, key: tuple[str, str]) -> None:
        acc = self.ledger.accounts[order.account_id]
        self._release(acc, order)
        order.type = TRIGGERED_TYPE[order.type]
        if order.type == MARKET:
            order.price = 0
            order.time_in_force = GTC if order.market != SPOT else ""
        order.is_working = True
        order.working_ns = self.clock()
        if order.close_position:
            pos = acc.positions.get((order.symbol, order.position_side))
            size = abs(pos.qty) if pos else 0
            if not size or (pos.qty > 0) == (order.side == BUY):  # type: ignore[union-attr]
                self._finish(acc, order, EXPIRED, X_EXPIRED)
                return
            order.orig_qty = size
            order.reduce_only = True
        try:
            self._reserve(acc, order, key)
        except E.ExchangeError:
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return
        if self.em.active:
            self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.working_ns))
        book = self.books[key]
        if order.type == LIMIT and (order.time_in_force == GTX):
            best = book.opposite(order.side).best()
            if best and (order.price >= best if order.side == BUY else order.price <= best):
                self._finish(acc, order, EXPIRED, X_EXPIRED)
                return
        self._execute(acc, order, key, book)

    def is_open(self, order: Order) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return order.status in (NEW, PARTIALLY_FILLED)


__all__ = ["FeeSchedule", "Matcher"]
