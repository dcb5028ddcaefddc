"""Reservations: the funds an order holds while open (spot locked balances, futures order margin), their
release, and the futures available balance and mark price they are measured against.
"""

from __future__ import annotations

from . import errors as E
from .accounts import Account
from .book import BookSide
from .futures import initial_margin
from .markets import SymbolSpec
from .types import (
    BUY,
    WALLET_SPOT,
    Balance,
    Order,
)
from .validation import OrderValidation


class Reservations(OrderValidation):
    """Locks, margins and their release."""

    def _reserve(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        spec = order.spec
        assert spec is not None
        if spec.is_futures:
            self._reserve_margin(acc, order, key, spec)
            return
        if order.side == BUY:
            asset = spec.quote_asset
            if order.quote_order_qty:
                need = order.quote_order_qty
            elif order.price:
                need = spec.lock_quote(order.price * order.orig_qty * spec.notional_unit)
            elif order.stop_price:
                need = spec.lock_quote(order.stop_price * order.orig_qty * spec.notional_unit)
            else:
                need = spec.lock_quote(self._walk_cost(self.books[key].asks, order.orig_qty, spec.notional_unit))
        else:
            asset = spec.base_asset
            need = order.orig_qty * spec.qty_unit
            if order.quote_order_qty:
                lots = self._walk_qty_for_quote(self.books[key].bids, order.quote_order_qty, spec)
                need = lots * spec.qty_unit
        self._lock_spot(acc, order, asset, need)

    def _lock_spot(self, acc: Account, order: Order, asset: str, need: int) -> None:
        """Move ``need`` of ``asset`` from free to locked for ``order`` (-2010 when it is not there)."""
        bal = acc.bal(acc.spot, asset)
        if bal.free < need and not acc.unlimited:
            raise E.insufficient_balance()
        bal.free -= need
        bal.locked += need
        order.locked = need
        if self.em.active:
            self.em.touch(acc.account_id, WALLET_SPOT, asset)

    @staticmethod
    def _walk_cost(side: BookSide, lots: int, nu: int) -> int:
        cost = 0
        for p in side.prices:
            q = side.qty[p]
            take = q if q < lots else lots
            cost += p * take * nu
            lots -= take
            if lots <= 0:
                break
        return cost

    @staticmethod
    def _walk_qty_for_quote(side: BookSide, quote: int, spec: SymbolSpec) -> int:
        lots = 0
        nu = spec.notional_unit
        quote *= spec.quote_scale  # fine units: each fill then settles at most its share of ``quote``
        for p in reversed(side.prices):
            q = side.qty[p]
            can = quote // (p * nu)
            take = q if q < can else can
            lots += take
            quote -= take * p * nu
            if take < q:
                break
        return lots

    def _opening_lots(self, acc: Account, order: Order, lots: int) -> int:
        if order.reduce_only or order.close_position:
            return 0
        pos = acc.positions.get((order.symbol, order.position_side))
        q = pos.qty if pos else 0
        if q and (q > 0) != (order.side == BUY):
            return max(0, lots - abs(q))
        return lots

    def _reserve_margin(self, acc: Account, order: Order, key: tuple[str, str], spec: SymbolSpec) -> None:
        opening = self._opening_lots(acc, order, order.orig_qty)
        if not opening:
            return
        price = order.price or self._ref_price(order, key) or self.mark.get(order.symbol, 0)
        im = initial_margin(price * opening * spec.notional_unit, acc.leverage_of(order.symbol))
        if not acc.unlimited and im > self.available(acc):
            raise E.margin_insufficient()
        order.margin = im
        acc.order_margin += im

    def available(self, acc: Account) -> int:
        """Futures available balance (USDT, 1e-8): wallet + cross uPnL - position IM - isolated - order IM."""
        bal = acc.futures.get("USDT")
        avail = (bal.free if bal else 0) - acc.order_margin
        for pos in acc.positions.values():
            if not pos.qty:
                continue
            spec = self.specs[("usdm", pos.symbol)]
            mark = self.mark_of(pos.symbol)
            if acc.margin_type_of(pos.symbol) == "ISOLATED":
                avail -= pos.isolated_margin
            else:
                nu = spec.notional_unit
                avail += mark * pos.qty * nu - pos.cost
                avail -= initial_margin(abs(mark * pos.qty * nu), acc.leverage_of(pos.symbol))
        return avail

    def mark_of(self, symbol: str) -> int:
        """Mark price of a futures symbol: replayed price, else last trade, else mid."""
        m = self.mark.get(symbol)
        if m:
            return m
        key = ("usdm", symbol)
        last = self.md[key].last_price
        if last:
            return last
        b = self.books[key]
        bid, ask = b.bids.best(), b.asks.best()
        return (bid + ask) // 2 if bid and ask else bid or ask

    def _release(self, acc: Account, order: Order) -> None:
        """Return what the order still holds (spot locked funds, futures order margin)."""
        if order.locked:
            spec = order.spec
            assert spec is not None
            asset = spec.quote_asset if order.side == BUY else spec.base_asset
            bal = acc.spot.get(asset)
            if bal is None:
                bal = acc.spot[asset] = Balance(asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = 0
            if self.em.active:
                self.em.touch(acc.account_id, WALLET_SPOT, asset)
        if order.margin:
            acc.order_margin -= order.margin
            order.margin = 0
