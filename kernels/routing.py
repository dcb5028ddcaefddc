"""Smart order routing: pick a venue and account for an order, and find cross-venue arbitrage.

``route_order`` scores candidates (one per venue x account). A candidate names the venue's book for
the instrument, the account's taker fee (from its fee tier, ``fee_tier``), what the account can spend
(money units to buy, quantity units to sell) and its rate-limit headroom (orders it may still
send now). For each candidate it walks the book up to the limit price and computes the money the
order would cost (buy: notional + fee) or bring (sell: notional - fee). Candidates without headroom
or balance are skipped with a reason; among the rest the one that fills the most wins, then the
best money, then the lower index.

``arbitrage`` walks every ordered pair of venue books (buy on one, sell on the other) while the bid
net of the seller's fee beats the ask plus the buyer's fee, level by level, and reports the
quantity and the exact profit (money units; each level's profit rounded down) of every profitable
pair.

Money is int64 units of 1e-8 USDT (``mult`` money units per price unit x quantity unit) and fees are
in ppm of notional, rounded up against us.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.book import ASK, BID, M_NASK, M_NBID, PX, QTY, fill_cost
from kernels.codes import BUY
from kernels.fixed import PPM, mul3_sat, mul_div_ceil, mul_div_floor

ROUTE_OK = 0
NO_HEADROOM = 1
NO_BALANCE = 2
NO_LIQUIDITY = 3
ROUTE_REASONS = {
    ROUTE_OK: "eligible",
    NO_HEADROOM: "no rate-limit headroom",
    NO_BALANCE: "balance too small for the order",
    NO_LIQUIDITY: "no liquidity within the limit",
}


@njit(cache=True)
def fee_tier(thresholds, fees_ppm, volume):
    """Fee (ppm) of the highest tier whose volume threshold (ascending) is <= volume."""
    fee = fees_ppm[0]
    for t in range(thresholds.shape[0]):
        if volume >= thresholds[t]:
            fee = fees_ppm[t]
    return fee


@njit(cache=True)
def route_order(
    lv,
    meta,
    side,
    qty,
    limit_price,
    mult,
    cand_books,
    cand_fee_ppm,
    cand_available,
    cand_headroom,
    out_reason,
    out_filled,
    out_money,
):
    """Score every candidate (see the module doc); returns the chosen index or -1.

    Per candidate k: out_reason[k] (ROUTE_OK or why not), out_filled[k] (quantity the book can fill)
    and out_money[k] (buy: cost including fee; sell: proceeds net of fee)."""
    book_side = ASK if side == BUY else BID
    chosen = -1
    for k in range(cand_books.shape[0]):
        filled, cost, _ = fill_cost(lv, meta, cand_books[k], book_side, qty, limit_price)
        notional = mul3_sat(cost, mult, 1)
        fee = mul_div_ceil(notional, cand_fee_ppm[k], PPM)
        money = notional + fee if side == BUY else notional - fee
        out_filled[k] = filled
        out_money[k] = money
        if cand_headroom[k] < 1:
            out_reason[k] = NO_HEADROOM
        elif filled == 0:
            out_reason[k] = NO_LIQUIDITY
        elif (side == BUY and money > cand_available[k]) or (side != BUY and filled > cand_available[k]):
            out_reason[k] = NO_BALANCE
        else:
            out_reason[k] = ROUTE_OK
            if (
                chosen < 0
                or filled > out_filled[chosen]
                or (
                    filled == out_filled[chosen]
                    and (money < out_money[chosen] if side == BUY else money > out_money[chosen])
                )
            ):
                chosen = k
    return chosen


@njit(cache=True)
def _pair_profit(lv, meta, bx, by, fee_x, fee_y, mult):
    """Buy on book bx (its asks), sell on book by (its bids): (quantity, profit) while profitable."""
    i = meta[bx, M_NASK] - 1
    j = meta[by, M_NBID] - 1
    if i < 0 or j < 0:
        return np.int64(0), np.int64(0)
    ask_left = lv[bx, ASK, QTY, i]
    bid_left = lv[by, BID, QTY, j]
    qty = 0
    profit = 0
    while i >= 0 and j >= 0:
        ask = lv[bx, ASK, PX, i]
        bid = lv[by, BID, PX, j]
        margin = bid * (PPM - fee_y) - ask * (PPM + fee_x)  # per unit, in price units x ppm
        if margin <= 0:
            break
        q = min(ask_left, bid_left)
        qty += q
        profit += mul_div_floor(margin, q * mult, PPM)
        ask_left -= q
        bid_left -= q
        if ask_left == 0:
            i -= 1
            if i >= 0:
                ask_left = lv[bx, ASK, QTY, i]
        if bid_left == 0:
            j -= 1
            if j >= 0:
                bid_left = lv[by, BID, QTY, j]
    return qty, profit


@njit(cache=True)
def arbitrage(lv, meta, books, fee_ppm, mult):
    """Every profitable (buy venue, sell venue) pair: rows of (buy index, sell index, quantity,
    profit in money units), most profitable first."""
    n = books.shape[0]
    rows = np.zeros((n * (n - 1), 4), dtype=np.int64)
    count = 0
    for x in range(n):
        for y in range(n):
            if x == y:
                continue
            qty, profit = _pair_profit(lv, meta, books[x], books[y], fee_ppm[x], fee_ppm[y], mult)
            if qty > 0 and profit > 0:
                rows[count, 0] = x
                rows[count, 1] = y
                rows[count, 2] = qty
                rows[count, 3] = profit
                count += 1
    rows = rows[:count]
    order = np.argsort(-rows[:, 3], kind="mergesort")
    return rows[order].copy()
