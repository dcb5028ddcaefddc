"""Live bars for hosted strategies: the events they are backtested on, built from the daemon's market data.

A strategy of ``strategies.yaml`` with ``bar_seconds: N`` sees one ``BAR`` market event per instrument
every N seconds of wall-clock time (bars aligned to multiples of N since the epoch, like exchange klines),
instead of one event per public trade. A bar's prices are the book's mid at each top-of-book update and the
price of each public trade within it (open, high, low, close, in price units floored to the tick grid's
units); its volume is the quantity traded. A bar without any observation is not emitted (no invented
prices). This matters on a quiet venue such as the local exchange, whose replayed prices move the books
while nobody trades: a trade-driven strategy would never be called there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from oms.model import Instrument
from strategies import api

log = logging.getLogger("stream.bars")

NS = 1_000_000_000


@dataclass
class _Bar:
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0
    n: int = 0

    def observe(self, price: int, qty: int) -> None:
        if self.n == 0:
            self.open = self.high = self.low = price
        else:
            self.high = max(self.high, price)
            self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.n += 1


BarListener = Callable[[np.ndarray], None]


@dataclass
class BarClock:
    """Bars of one interval for a set of instruments; ``listener`` gets each closed bar's event column."""

    seconds: int
    instruments: set[int]
    listener: BarListener
    clock: Callable[[], int] = time.time_ns
    _bars: dict[int, _Bar] = field(default_factory=dict)
    _start_ns: int = 0
    emitted: int = 0

    def observe(self, i: int, ins: Instrument, price: Decimal, qty: Decimal | None = None) -> None:
        if i not in self.instruments or price <= 0:
            return
        units = int(price / ins.price_unit)  # floor onto the price units (a mid may fall between ticks)
        q = int(qty / ins.qty_unit) if qty else 0
        self._bars.setdefault(i, _Bar()).observe(units, q)

    def close(self, end_ns: int) -> int:
        """Emit the bars of the interval ending at ``end_ns``; returns how many."""
        start = end_ns - self.seconds * NS
        bars, self._bars = self._bars, {}
        n = 0
        for i, b in sorted(bars.items()):
            if b.n == 0:
                continue
            ev = np.zeros(api.EV_FIELDS, dtype=np.int64)
            ev[api.EV_TS], ev[api.EV_T0] = end_ns, start
            ev[api.EV_KIND], ev[api.EV_INST] = api.BAR, i
            ev[api.EV_OPEN], ev[api.EV_HIGH], ev[api.EV_LOW], ev[api.EV_CLOSE] = b.open, b.high, b.low, b.close
            ev[api.EV_VOLUME] = b.volume
            try:
                self.listener(ev)
            except Exception:  # a strategy's failure never stops the clock of the others
                log.exception("bar listener failed on instrument %d", i)
            n += 1
        self.emitted += n
        return n

    async def run(self) -> None:
        """Close a bar at every multiple of ``seconds`` until cancelled."""
        step = self.seconds * NS
        while True:
            now = self.clock()
            end = (now // step + 1) * step
            await asyncio.sleep((end - now) / NS)
            self.close(end)
