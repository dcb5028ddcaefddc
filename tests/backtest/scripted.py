"""A scripted strategy for hand-worked cases: it emits given intents at given event indices.

``params`` is a flat table of rows (event index, then the eight intent fields); ``state[0]`` is the next
row. ``on_fill`` records each fill's flags and reason into ``state`` so tests can see the callbacks.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pydantic import Field

from backtest.tape import Tape, Venue
from kernels.instruments import Instrument
from strategies.api import BAR, EV_FIELDS, IN_FIELDS, emit, kernel
from strategies.api import no_timer as on_timer
from strategies.base import Params, Strategy

ROW = 1 + IN_FIELDS
HOUR = 3_600_000_000_000
T0 = 1_700_000_000 // 3600 * 3600 * 1_000_000_000  # an hour boundary, 2023-11-14


class ScriptParams(Params):
    rows: list[list[int]] = Field(default_factory=list)


def build(p: ScriptParams, binding):
    flat = np.array([x for r in p.rows for x in r], dtype=np.int64)
    return (flat if len(flat) else np.zeros(0, np.int64)), np.zeros(64, dtype=np.int64)


@kernel
def on_market(params, state, events, k, acc, pos, out):
    n = 0
    r = state[0]
    while r * 9 + 8 < params.shape[0] and params[r * 9] == k:
        b = r * 9
        n = emit(out, n, params[b + 1], params[b + 2], params[b + 3], params[b + 4], params[b + 5], params[b + 6],
                 params[b + 7], params[b + 8])  # fmt: skip
        r += 1
    state[0] = r
    return n


@kernel
def on_fill(params, state, fill, acc, pos, out):
    c = state[1]
    if c < 30:
        state[2 + 2 * c] = fill[8]  # flags
        state[3 + 2 * c] = fill[6]  # fee, or the rejection reason
        state[1] = c + 1
    return 0


SCRIPT = Strategy("script", on_market, on_fill, on_timer, ScriptParams, build)


def bars(instrument: Instrument, rows: list[tuple[str, str, str, str, str]], venue: Venue | None = None,
         start: int = T0, step: int = HOUR) -> Tape:  # fmt: skip
    """Hourly bars from (open, high, low, close, volume) decimal strings."""
    ev = np.zeros((len(rows), EV_FIELDS), dtype=np.int64)
    for k, (o, h, lo, c, v) in enumerate(rows):
        t = start + k * step
        ev[k] = (t + step, t, BAR, 0, instrument.price(o), instrument.price(h), instrument.price(lo),
                 instrument.price(c), instrument.qty(v), 0)  # fmt: skip
    return Tape.single(ev, instrument, venue)


def money(x: str) -> int:
    return int(Decimal(x) * 10**8)
