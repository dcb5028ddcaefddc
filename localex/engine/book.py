"""A price-time priority order book of one symbol: int tick keys, one FIFO deque per price level.

Per side a dict price -> deque of resting orders, a dict price -> total remaining lots, and a sorted
list of prices (bisect; best bid is the last element, best ask the first). The book only stores
orders; matching, settlement and events live in ``matching``. It records which levels changed since
the last ``take_changes()`` so the engine can publish depth diffs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from .types import BUY, Order


class BookSide:
    """One side of a book. ``prices`` ascending for both sides."""

    __slots__ = ("is_bid", "levels", "qty", "prices", "changed")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, deque[Order]] = {}
        self.qty: dict[int, int] = {}
        self.prices: list[int] = []
        self.changed: set[int] = set()

    def best(self) -> int:
        """Best price in ticks, 0 if the side is empty."""
        p = self.prices
        if not p:
            return 0
        return p[-1] if self.is_bid else p[0]

    def add(self, order: Order) -> None:
        """Append ``order`` at the back of its price level."""
        price = order.price
        level = self.levels.get(price)
        if level is None:
            self.levels[price] = deque((order,))
            self.qty[price] = order.orig_qty - order.executed_qty
            insort(self.prices, price)
        else:
            level.append(order)
            self.qty[price] += order.orig_qty - order.executed_qty
        self.changed.add(price)

    def remove(self, order: Order) -> None:
        """Remove a resting order (cancel / expire)."""
        price = order.price
        level = self.levels[price]
        level.remove(order)
        if level:
            self.qty[price] -= order.orig_qty - order.executed_qty
        else:
            self._drop_level(price)
        self.changed.add(price)

    def reduce(self, price: int, lots: int) -> None:
        """The head order of ``price`` traded ``lots`` (the caller pops it when it is done)."""
        self.qty[price] -= lots
        self.changed.add(price)

    def pop_head(self, price: int) -> None:
        """Drop the head order of a level (filled or expired); drops the level when it empties."""
        level = self.levels[price]
        level.popleft()
        if not level:
            self._drop_level(price)
        self.changed.add(price)

    def _drop_level(self, price: int) -> None:
        del self.levels[price]
        del self.qty[price]
        prices = self.prices
        i = bisect_left(prices, price)
        del prices[i]

    def depth(self, limit: int) -> list[tuple[int, int]]:
        """Best ``limit`` levels as (price ticks, total lots), best first."""
        p = self.prices
        sel = p[: -limit - 1 : -1] if self.is_bid else p[:limit]
        q = self.qty
        return [(x, q[x]) for x in sel]

    def take_changes(self) -> list[tuple[int, int]]:
        """Levels changed since the last call with their current totals (0 = gone), and reset."""
        if not self.changed:
            return []
        q = self.qty
        out = [(p, q.get(p, 0)) for p in sorted(self.changed, reverse=self.is_bid)]
        self.changed.clear()
        return out

    def __len__(self) -> int:
        return len(self.prices)


class Book:
    """Both sides of one (market, symbol) book plus its depth update id."""

    __slots__ = ("bids", "asks", "update_id")

    def __init__(self) -> None:
        self.bids = BookSide(True)
        self.asks = BookSide(False)
        self.update_id = 0

    def side(self, side: str) -> BookSide:
        """The side an order of ``side`` rests on."""
        return self.bids if side == BUY else self.asks

    def opposite(self, side: str) -> BookSide:
        """The side an order of ``side`` matches against."""
        return self.asks if side == BUY else self.bids

    def crossed(self) -> bool:
        """True if best bid >= best ask (must never hold after matching)."""
        b, a = self.bids.best(), self.asks.best()
        return bool(b and a and b >= a)
