"""A liquidity parent across several accounts' books (``PlaceParent.route``): where its children go and how big.

The parent's own account and each routed one (this daemon's accounts) trade the parent's symbol on their own
exchange, each with its own book in the daemon's market data (``BookView``). ``venues`` resolves them once (an
unknown account or symbol, a limit off an instrument's tick grid, or lot steps that differ refuse the parent);
``sizes`` sizes one round of children: per venue, the book's quantity at or better than the limit
(``BookView.depth_within``), no more than the account's free balance buys or sells (``free_of``), in whole
lots; when together they offer more than the parent has left, what is left is shared in proportion to them
(``kernels.execution.allocate``, the core of ``split_liquidity``), never more than a venue offers. A share
below its venue's minimum goes to the venues with room instead (no child below a venue's minimum is made).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernels import execution as X
from oms.model import Instrument
from stream.emulation import plans
from stream.emulation.book import BookView

FreeOf = Callable[[str, Instrument, int, int], int | None]  # (account, instrument, side, limit) -> units or None


@dataclass(frozen=True)
class Venue:
    account: str
    i: int
    ins: Instrument
    limit: int  # the parent's limit price in this instrument's units


def venues(book: BookView, exchange_of, account: str, route, symbol: str, price: str) -> list[Venue]:
    """The parent's account first, then its route's (ValueError naming what is wrong)."""
    out: list[Venue] = []
    for acct in (account, *route):
        if any(v.account == acct for v in out):
            raise ValueError(f"route names {acct} twice (or the parent's own account)")
        try:
            i, ins = book.number(exchange_of(acct), symbol)
        except Exception as exc:
            raise ValueError(f"account {acct}: {exc}") from None
        try:
            limit = ins.price(price)
        except ValueError as exc:
            raise ValueError(f"account {acct}: {exc}") from None
        if out and ins.lot != out[0].ins.lot:
            raise ValueError(f"account {acct}: {symbol} has another lot step there")
        out.append(Venue(acct, i, ins, limit))
    return out


def sizes(book: BookView, free_of: FreeOf | None, vs: list[Venue], side: int, left: int) -> list[int]:
    """One child size per venue (0: none there now), summing to at most ``left``."""
    lot = vs[0].ins.lot
    avail = []
    for v in vs:
        q = book.depth_within(v.i, side, v.limit)
        cap = free_of(v.account, v.ins, side, v.limit) if free_of is not None else None
        if cap is not None:
            q = min(q, cap)
        avail.append(max(0, q - q % lot))
    total = sum(avail)
    if total <= 0:
        return [0] * len(vs)
    if total > left:
        shared = X.allocate(left - left % lot, np.array(avail, dtype=np.int64), lot, lot)
        got = [min(int(q), a) for q, a in zip(shared, avail, strict=True)]
    else:
        got = avail
    mins = [plans.min_child(v.ins, v.limit) for v in vs]
    out = [q if q >= least else 0 for q, least in zip(got, mins, strict=True)]
    # what the books offer and the shares left out (below a venue's minimum, or rounding): to the venues with the
    # most room that take it, so no remainder too small to send is left behind
    want = min(left - left % lot, total) - sum(out)
    for k in sorted(range(len(vs)), key=lambda k: (out[k] - avail[k], k)):
        room = avail[k] - out[k]
        if want <= 0:
            break
        put = min(room, want)
        if put > 0 and out[k] + put >= mins[k]:
            out[k] += put
            want -= put
    return out
