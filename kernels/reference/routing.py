"""Reference routing and arbitrage over reference books (see kernels/routing.py)."""

from __future__ import annotations

from kernels.book import ASK, BID
from kernels.codes import BUY
from kernels.reference.book import Book
from kernels.routing import NO_BALANCE, NO_HEADROOM, NO_LIQUIDITY, ROUTE_OK


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def fee_tier(thresholds: list[int], fees_ppm: list[int], volume: int) -> int:
    eligible = [fee for threshold, fee in zip(thresholds, fees_ppm, strict=True) if volume >= threshold]
    return eligible[-1] if eligible else fees_ppm[0]


def route_order(
    books: list[Book], side: int, qty: int, limit_price: int, mult: int, candidates: list[tuple[int, int, int, int]]
):
    """candidates: (book index, fee ppm, available, headroom). Returns (chosen, [(reason, filled, money)])."""
    scored = []
    for book, fee_ppm, available, headroom in candidates:
        filled, cost, _ = books[book].fill_cost(ASK if side == BUY else BID, qty, limit_price)
        notional = cost * mult
        fee = ceil_div(notional * fee_ppm, 1_000_000)
        money = notional + fee if side == BUY else notional - fee
        if headroom < 1:
            reason = NO_HEADROOM
        elif filled == 0:
            reason = NO_LIQUIDITY
        elif (money > available) if side == BUY else (filled > available):
            reason = NO_BALANCE
        else:
            reason = ROUTE_OK
        scored.append((reason, filled, money))
    eligible = [k for k, (reason, _, _) in enumerate(scored) if reason == ROUTE_OK]
    if not eligible:
        return -1, scored
    sign = 1 if side == BUY else -1
    return min(eligible, key=lambda k: (-scored[k][1], sign * scored[k][2], k)), scored


def arbitrage(books: list[Book], fee_ppm: list[int], mult: int) -> list[tuple[int, int, int, int]]:
    rows = []
    for x, buy_book in enumerate(books):
        for y, sell_book in enumerate(books):
            if x == y:
                continue
            asks = [list(level) for level in buy_book.levels(ASK)]
            bids = [list(level) for level in sell_book.levels(BID)]
            qty = profit = 0
            while asks and bids:
                margin = bids[0][0] * (1_000_000 - fee_ppm[y]) - asks[0][0] * (1_000_000 + fee_ppm[x])
                if margin <= 0:
                    break
                q = min(asks[0][1], bids[0][1])
                qty += q
                profit += margin * q * mult // 1_000_000
                for levels in (asks, bids):
                    levels[0][1] -= q
                    if levels[0][1] == 0:
                        levels.pop(0)
            if qty > 0 and profit > 0:
                rows.append((x, y, qty, profit))
    return sorted(rows, key=lambda row: -row[3])
