"""The strategy host: feeds one event at a time to a strategy's compiled callbacks, as the daemon does.

The daemon keeps the account view (``acc``, ``pos``) up to date from its positions and orders, then
calls ``on_market`` / ``on_fill`` / ``on_timer`` here for each event and sends the intents it gets back
through risk to the venue. These are the very functions the backtest engine calls inside its loop, so
the same events and the same account view give the same intents (tests/backtest/test_live_parity.py).
Every intent is checked before it leaves: an invalid one raises ``IntentError`` naming the strategy.
"""

from __future__ import annotations

import numpy as np

from kernels.codes import LIMIT, MARKET
from strategies.api import (
    A_FIELDS,
    CANCEL,
    CANCEL_ALL,
    CLOSE,
    EMULATED_FIRST,
    EMULATED_LAST,
    EV_FIELDS,
    F_FIELDS,
    IN_FIELDS,
    IOC,
    MAX_INTENTS,
    POST_ONLY,
    QUOTE_QTY,
    REDUCE_ONLY,
)
from strategies.base import Binding, Params, Strategy

ALL_FLAGS = REDUCE_ONLY | POST_ONLY | IOC | QUOTE_QTY | CLOSE
INTENT_NAMES = ("account", "instrument", "side", "type", "price", "qty", "flags", "tag")


class IntentError(ValueError):
    """A strategy wrote an intent that cannot be an order (bad index, side, quantity, price, flags)."""


def check_intent(row: np.ndarray, n_accounts: int, lots: list[int], ticks: list[int]) -> str | None:
    """Why ``row`` is not a valid intent, or None (the same rules as the backtest engine)."""
    a, i, side, otype, price, qty, flags, tag = (int(x) for x in row[:IN_FIELDS])
    if not 0 <= a < n_accounts:
        return "account index out of range"
    if not 0 <= i < len(lots):
        return "instrument index out of range"
    if otype in (CANCEL, CANCEL_ALL):
        return "tag is negative" if tag < 0 else None
    if EMULATED_FIRST <= otype <= EMULATED_LAST:  # a parent or an exit rule: the emulation checks its numbers
        return "tag is negative" if tag < 0 else None
    if otype not in (LIMIT, MARKET):
        return "type is not LIMIT, MARKET, CANCEL, CANCEL_ALL or an emulated intent"
    if side not in (1, -1):
        return "side is not BUY (1) or SELL (-1)"
    if flags & ~ALL_FLAGS or (flags & QUOTE_QTY and (flags & CLOSE or otype == LIMIT)):
        return "unknown flag bits, or QUOTE_QTY with CLOSE or on a limit"
    if not flags & CLOSE and (qty <= 0 or (not flags & QUOTE_QTY and qty % lots[i])):
        return "quantity is not a positive whole number of lots"
    if otype == LIMIT and (price <= 0 or price % ticks[i]):
        return "limit price is not a positive whole number of ticks"
    if tag < 0:
        return "tag is negative"
    return None


class StrategyHost:
    """One strategy instance driven per event; ``acc``/``pos`` are the account view the caller keeps."""

    def __init__(
        self,
        strategy: Strategy,
        params: dict | Params,
        binding: Binding,
        n_accounts: int,
        instruments: list,
        name: str | None = None,
    ):
        self.strategy = strategy
        self.name = name or strategy.kind
        binding.check(n_accounts, len(instruments), self.name)
        self.params, self.state = strategy.arrays(params, binding)
        self.acc = np.zeros((n_accounts, A_FIELDS), dtype=np.int64)
        self.pos = np.zeros((n_accounts, len(instruments)), dtype=np.int64)
        self.lots = [int(ins.lot) for ins in instruments]
        self.ticks = [int(ins.tick) for ins in instruments]
        self._out = np.zeros((MAX_INTENTS, IN_FIELDS), dtype=np.int64)
        self._event = np.zeros((EV_FIELDS, 1), dtype=np.int64)
        self._fill = np.zeros(F_FIELDS, dtype=np.int64)

    def _intents(self, m: int, what: str) -> np.ndarray:
        if not 0 <= m <= MAX_INTENTS:
            raise IntentError(f"strategy {self.name!r} returned {m} intents on {what} (at most {MAX_INTENTS})")
        rows = self._out[:m].copy()
        for r, row in enumerate(rows):
            reason = check_intent(row, self.acc.shape[0], self.lots, self.ticks)
            if reason:
                fields = dict(zip(INTENT_NAMES, (int(x) for x in row), strict=True))
                raise IntentError(
                    f"strategy {self.name!r} wrote an invalid intent on {what}: row {r} {fields}: {reason}"
                )
        return rows

    def on_market(self, event: np.ndarray) -> np.ndarray:
        """Intents (m, IN_FIELDS) for one market event given as its EV_FIELDS values."""
        self._event[:, 0] = event
        m = self.strategy.on_market(self.params, self.state, self._event, 0, self.acc, self.pos, self._out)
        return self._intents(int(m), f"market event at ts {int(event[0])}")

    def on_fill(self, fill: np.ndarray) -> np.ndarray:
        """Intents for one fill or rejection given as its F_FIELDS values."""
        self._fill[:] = fill
        m = self.strategy.on_fill(self.params, self.state, self._fill, self.acc, self.pos, self._out)
        return self._intents(int(m), f"fill at ts {int(fill[0])}")

    def on_timer(self, now_ns: int) -> np.ndarray:
        m = self.strategy.on_timer(self.params, self.state, np.int64(now_ns), self.acc, self.pos, self._out)
        return self._intents(int(m), f"timer at ts {now_ns}")
