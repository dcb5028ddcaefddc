"""Event fan-out: listeners are called synchronously; account changes are gathered per operation.

``Emitter.touch_*`` records which balances and positions an operation changed; ``Emitter`` does the
bookkeeping only while someone listens, so the engine pays nothing for events nobody reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

Listener = Callable[[object], None]
log = logging.getLogger("oms.localex.engine")


class Emitter:
    """Listeners plus the per-operation set of touched (account, wallet) -> assets / positions."""

    __slots__ = ("listeners", "active", "touched", "reasons", "deltas")

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self.active = False
        self.touched: dict[tuple[str, str], tuple[set[str], set[tuple[str, str]]]] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        self.deltas: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, fn: Listener) -> None:
        """Register a listener."""
        self.listeners.append(fn)
        self.active = True

    def remove(self, fn: Listener) -> None:
        """Unregister a listener (no error if absent)."""
        if fn in self.listeners:
            self.listeners.remove(fn)
        self.active = bool(self.listeners)

    def emit(self, event: object) -> None:
        """Call every listener with ``event``; a failing listener is logged and does not stop others."""
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a listener bug must not corrupt the engine's state
                log.exception("event listener failed on %r", event)

    def touch(self, account_id: str, wallet: str, asset: str | None = None,
              position: tuple[str, str] | None = None, reason: str = "ORDER", delta: int = 0) -> None:
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

    def take_touched(self) -> tuple[dict[tuple[str, str], tuple[set[str], set[tuple[str, str]]]],
                                    dict[tuple[str, str], str], dict[tuple[str, str], dict[str, int]]]:
        """The touched sets, reasons and wallet deltas of the operation, and reset."""
        t, r, d = self.touched, self.reasons, self.deltas
        self.touched, self.reasons, self.deltas = {}, {}, {}
        return t, r, d
