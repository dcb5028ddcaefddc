"""The strategy host: feeds one event at a time to a strategy's compiled callbacks, as the daemon does.

The daemon keeps the account view (``acc``, ``pos``) up to date from its positions and orders, then
calls ``on_market`` / ``on_fill`` / ``on_timer`` here for each event and sends the intents it gets back
through risk to the venue. These are the very functions the backtest engine calls inside its loop, so
the same events and the same account view give the same intents (tests/backtest/test_live_parity.py).
Every intent is checked before it leaves: an invalid one raises ``IntentError`` naming the strategy. The check
is one compiled call over the rows (``first_invalid``, the rules of ``check_intent``); only a refused row goes
to ``check_intent`` for its reason.
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
    IN_ACCOUNT,
    IN_FIELDS,
    IN_FLAGS,
    IN_INST,
    IN_PRICE,
    IN_QTY,
    IN_SIDE,
    IN_TAG,
    IN_TYPE,
    IOC,
    MAX_INTENTS,
    POST_ONLY,
    QUOTE_QTY,
    REDUCE_ONLY,
    kernel,
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


@kernel
def first_invalid(out, m, n_accounts, lots, ticks):
    """The first of rows ``out[:m]`` that ``check_intent`` refuses, or -1: its very rules, in one compiled call
    (the host then asks ``check_intent`` why)."""
    n_inst = lots.shape[0]
    for r in range(m):
        a = out[r, IN_ACCOUNT]
        i = out[r, IN_INST]
        side = out[r, IN_SIDE]
        otype = out[r, IN_TYPE]
        price = out[r, IN_PRICE]
        qty = out[r, IN_QTY]
        flags = out[r, IN_FLAGS]
        tag = out[r, IN_TAG]
        if a < 0 or a >= n_accounts or i < 0 or i >= n_inst:
            return r
        if otype == CANCEL or otype == CANCEL_ALL:
            if tag < 0:
                return r
            continue
        if otype != LIMIT and otype != MARKET:
            return r
        if side != 1 and side != -1:
            return r
        if flags & ~ALL_FLAGS or (flags & QUOTE_QTY and (flags & CLOSE or otype == LIMIT)):
            return r
        if not flags & CLOSE and (qty <= 0 or (not flags & QUOTE_QTY and qty % lots[i] != 0)):
            return r
        if otype == LIMIT and (price <= 0 or price % ticks[i] != 0):
            return r
        if tag < 0:
            return r
    return -1


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
        self._lots = np.array(self.lots, dtype=np.int64)
        self._ticks = np.array(self.ticks, dtype=np.int64)
        self._out = np.zeros((MAX_INTENTS, IN_FIELDS), dtype=np.int64)
        self._event = np.zeros((EV_FIELDS, 1), dtype=np.int64)
        self._fill = np.zeros(F_FIELDS, dtype=np.int64)

    def _intents(self, m: int, what: str, ts: int) -> np.ndarray:
        """The ``m`` intents written, checked; ``what`` at ``ts`` names the call in a refusal (worded only then)."""
        if not 0 <= m <= MAX_INTENTS:
            what = f"{what} at ts {int(ts)}"
            raise IntentError(f"strategy {self.name!r} returned {m} intents on {what} (at most {MAX_INTENTS})")
        rows = self._out[:m].copy()
        if first_invalid(rows, m, self.acc.shape[0], self._lots, self._ticks) < 0:
            return rows
        what = f"{what} at ts {int(ts)}"
        for r, row in enumerate(rows):
            reason = check_intent(row, self.acc.shape[0], self.lots, self.ticks)
            if reason:
                fields = dict(zip(INTENT_NAMES, (int(x) for x in row), strict=True))
                raise IntentError(
                    f"strategy {self.name!r} wrote an invalid intent on {what}: row {r} {fields}: {reason}"
                )
        return rows  # check_intent has the last word

    def on_market(self, event: np.ndarray) -> np.ndarray:
        """Intents (m, IN_FIELDS) for one market event given as its EV_FIELDS values."""
        self._event[:, 0] = event
        m = self.strategy.on_market(self.params, self.state, self._event, 0, self.acc, self.pos, self._out)
        return self._intents(int(m), "market event", event[0])

    def on_fill(self, fill: np.ndarray) -> np.ndarray:
        """Intents for one fill or rejection given as its F_FIELDS values."""
        self._fill[:] = fill
        m = self.strategy.on_fill(self.params, self.state, self._fill, self.acc, self.pos, self._out)
        return self._intents(int(m), "fill", fill[0])

    def on_timer(self, now_ns: int) -> np.ndarray:
        m = self.strategy.on_timer(self.params, self.state, np.int64(now_ns), self.acc, self.pos, self._out)
        return self._intents(int(m), "timer", now_ns)
