"""Reference L2 book: two dicts price -> quantity (see kernels/book.py for the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kernels.book import APPLIED, ASK, BID, GAP, NEEDS_SNAPSHOT, NOT_READY, SNAPSHOT, STALE, SYNCED


def better(side: int, p1: int, p2: int) -> bool:
    return p1 > p2 if side == BID else p1 < p2


@dataclass
class Book:
    depth: int  # levels kept per side
    sides: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    last_id: int = 0
    state: int = 0
    gaps: int = 0
    updates: int = 0

    def best_first(self, side: int) -> list[int]:
        """Prices of a side, best first."""
        return sorted(self.sides[side], reverse=(side == BID))

    def set_level(self, side: int, price: int, qty: int) -> None:
        levels = self.sides[side]
        if qty == 0:
            levels.pop(price, None)
            return
        levels[price] = qty
        if len(levels) > self.depth:  # keep the best `depth` levels
            del levels[self.best_first(side)[-1]]
        other = 1 - side
        for p in [p for p in self.sides[other] if not better(other, price, p)]:
            del self.sides[other][p]  # crossed by the newer update: stale

    def snapshot(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], last_id: int) -> None:
        self.sides = ({}, {})
        for side, updates in ((BID, bids), (ASK, asks)):
            for price, qty in updates:
                if qty > 0:
                    self.set_level(side, price, qty)
        self.last_id = last_id
        self.state = SNAPSHOT

    def diff(self, first_id: int, last_id: int, prev_id: int, updates: list[tuple[int, int, int]]) -> int:
        if self.state not in (SNAPSHOT, SYNCED):
            return NOT_READY
        if last_id <= self.last_id:
            return STALE
        if self.state == SNAPSHOT:
            in_sequence = first_id <= self.last_id + 1
        elif prev_id >= 0:
            in_sequence = prev_id == self.last_id
        else:
            in_sequence = first_id == self.last_id + 1
        if not in_sequence:
            self.state = NEEDS_SNAPSHOT
            self.gaps += 1
            return GAP
        for side, price, qty in updates:
            self.set_level(side, price, qty)
        self.last_id = last_id
        self.state = SYNCED
        self.updates += len(updates)
        return APPLIED

    def levels(self, side: int) -> list[tuple[int, int]]:
        return [(p, self.sides[side][p]) for p in self.best_first(side)]

    def depth_qty(self, side: int, n_levels: int, limit_price: int) -> int:
        chosen = self.levels(side)[:n_levels] if n_levels > 0 else self.levels(side)
        return sum(q for p, q in chosen if limit_price <= 0 or not better(side, limit_price, p))

    def fill_cost(self, side: int, qty: int, limit_price: int) -> tuple[int, int, int]:
        filled = cost = last = 0
        for p, q in self.levels(side):
            if filled >= qty or (limit_price > 0 and better(side, limit_price, p)):
                break
            take = min(qty - filled, q)
            filled, cost, last = filled + take, cost + take * p, p
        return filled, cost, last


def consolidate(books: list[Book], side: int, max_levels: int) -> list[tuple[int, int, list[int]]]:
    """(price, total qty, qty per book) best first, at most max_levels."""
    prices = sorted({p for b in books for p in b.sides[side]}, reverse=(side == BID))[:max_levels]
    return [(p, sum(b.sides[side].get(p, 0) for b in books), [b.sides[side].get(p, 0) for b in books]) for p in prices]
