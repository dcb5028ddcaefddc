"""Event fan-out: listeners are called synchronously; account changes are gathered per operation.

``Emitter.touch_*`` records which balances and positions an operation changed; ``Emitter`` does the
bookkeeping only while someone listens, so the engine pays nothing for events nobody reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

Listener = Callable[[object], None]
# market-data event kinds for ``Emitter.set_interest`` (order, account and transfer events always flow)
MD_TRADE: Final = "trade"
MD_AGG_TRADE: Final = "aggTrade"
MD_DEPTH: Final = "depth"
MD_BOOK_TICKER: Final = "bookTicker"
MD_KLINE: Final = "kline"
MD_KINDS: Final = frozenset((MD_TRADE, MD_AGG_TRADE, MD_DEPTH, MD_BOOK_TICKER, MD_KLINE))
log = logging.getLogger("localex.engine")


class Emitter:
    """Listeners plus the per-operation set of touched (account, wallet) -> assets / positions."""

    __slots__ = (
        "listeners",
        "active",
        "touched",
        "reasons",
        "deltas",
        "interest",
        "kline_intervals",
        "want_trade",
        "want_agg",
        "want_depth",
        "want_ticker",
        "want_kline",
    )

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self.active = False
        self.touched: dict[tuple[str, str], tuple[set[str], set[tuple[str, str]]]] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        self.deltas: dict[tuple[str, str], dict[str, int]] = {}
        # market-data interest (``set_interest``): None = everything
        self.interest: frozenset[str] | None = None
        self.kline_intervals: frozenset[str] | None = None
        self._update_wants()

    def add(self, fn: Listener) -> None:
        """Register a listener."""
        self.listeners.append(fn)
        self.active = True
        self._update_wants()

    def remove(self, fn: Listener) -> None:
        """Unregister a listener (no error if absent)."""
        if fn in self.listeners:
            self.listeners.remove(fn)
        self.active = bool(self.listeners)
        self._update_wants()

    def set_interest(self, kinds: frozenset[str] | None, kline_intervals: frozenset[str] | None) -> None:
        """Which market-data events anyone wants (None = all); see ``Exchange.set_interest``."""
        self.interest = kinds
        self.kline_intervals = kline_intervals
        self._update_wants()

    def _update_wants(self) -> None:
        """``want_*``: build that market-data event at all (someone listens and wants the kind)."""
        kinds = self.interest
        on = self.active

        def wants(kind: str) -> bool:
            return on and (kinds is None or kind in kinds)

        self.want_trade = wants(MD_TRADE)
        self.want_agg = wants(MD_AGG_TRADE)
        self.want_depth = wants(MD_DEPTH)
        self.want_ticker = wants(MD_BOOK_TICKER)
        self.want_kline = wants(MD_KLINE) and (self.kline_intervals is None or bool(self.kline_intervals))

    def emit(self, event: object) -> None:
        """Call every listener with ``event``; a failing listener is logged and does not stop others."""
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:
                log.exception("event listener failed on %r", event)

    def touch(
        self,
        account_id: str,
        wallet: str,
        asset: str | None = None,
        position: tuple[str, str] | None = None,
        reason: str = "ORDER",
        delta: int = 0,
    ) -> None:
        """Remember that ``asset`` / ``position`` of (account, wallet) changed in this operation."""
        key = (account_id, wallet)
        entry = self.touched.get(key)
        if entry is None:
            entry = self.touched[key] = (set(), set())
            self.reasons[key] = reason
        if asset is not None:
            entry[0].add(asset)
            if delta:
                d = self.deltas.setdefault(key, {})
                d[asset] = d.get(asset, 0) + delta
        if position is not None:
            entry[1].add(position)

    def take_touched(
        self,
    ) -> tuple[
        dict[tuple[str, str], tuple[set[str], set[tuple[str, str]]]],
        dict[tuple[str, str], str],
        dict[tuple[str, str], dict[str, int]],
    ]:
        """The touched sets, reasons and wallet deltas of the operation, and reset."""
        t, r, d = self.touched, self.reasons, self.deltas
        self.touched, self.reasons, self.deltas = {}, {}, {}
        return t, r, d
