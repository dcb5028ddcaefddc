"""A replayable price path: OHLC bars of one instrument with interpolation inside each bar.

Market data in the archive is loaded into this shape (``oms.archive.market.load_price_path``); the local
exchange's replay reads prices from it. Prices are ints of 1e-8 (``PRICE_SCALE``), exact from the
decimal strings of the archive. ``CrossPath`` derives a cross rate (ETHBTC) from two paths quoted in the same
currency (ETHUSDT / BTCUSDT) at every instant, so the cross never disagrees with its legs.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal

PRICE_SCALE = 10**8


@dataclass(frozen=True)
class PricePath:
    """OHLC bars of one instrument: ``open_ms`` ascending, prices in 1e-8 units, fixed ``bar_ms``."""

    name: str
    bar_ms: int
    open_ms: tuple[int, ...]
    open: tuple[int, ...]
    high: tuple[int, ...]
    low: tuple[int, ...]
    close: tuple[int, ...]

    @classmethod
    def from_rows(cls, name: str, bar_ms: int, rows: list[tuple[int, str, str, str, str]]) -> PricePath:
        """Build from (open_ms, open, high, low, close) rows with decimal-string prices."""
        rows = sorted(rows)
        if not rows:
            raise ValueError(f"price path {name}: no bars")

        def units(s: str) -> int:
            return int(Decimal(s) * PRICE_SCALE)

        return cls(
            name,
            bar_ms,
            tuple(r[0] for r in rows),
            tuple(units(r[1]) for r in rows),
            tuple(units(r[2]) for r in rows),
            tuple(units(r[3]) for r in rows),
            tuple(units(r[4]) for r in rows),
        )

    @property
    def start_ms(self) -> int:
        """Open time of the first bar."""
        return self.open_ms[0]

    @property
    def end_ms(self) -> int:
        """Close time of the last bar."""
        return self.open_ms[-1] + self.bar_ms

    def price_at(self, t_ms: int) -> int:
        """Interpolated price (1e-8 units) at ``t_ms``; first open before the path, last close after."""
        if t_ms <= self.open_ms[0]:
            return self.open[0]
        i = bisect_right(self.open_ms, t_ms) - 1
        o, h, lo, c = self.open[i], self.high[i], self.low[i], self.close[i]
        dt = t_ms - self.open_ms[i]
        if dt >= self.bar_ms:
            return c
        pts = (o, lo, h, c) if c >= o else (o, h, lo, c)
        seg = self.bar_ms / 3
        k = min(int(dt // seg), 2)
        frac_num = dt - k * self.bar_ms // 3
        seg_len = self.bar_ms // 3 if k < 2 else self.bar_ms - 2 * (self.bar_ms // 3)
        a, b = pts[k], pts[k + 1]
        return a + (b - a) * frac_num // seg_len


@dataclass(frozen=True)
class CrossPath:
    """The price of ``base`` in ``quote`` where both paths are quoted in a third currency: ``base / quote`` at
    every instant (ETHBTC = ETHUSDT / BTCUSDT), in 1e-8 units rounded half-up. Defined over the span both legs
    have; like ``PricePath`` it holds the first value before and the last after."""

    name: str
    base: PricePath
    quote: PricePath

    @property
    def start_ms(self) -> int:
        return max(self.base.start_ms, self.quote.start_ms)

    @property
    def end_ms(self) -> int:
        return min(self.base.end_ms, self.quote.end_ms)

    def price_at(self, t_ms: int) -> int:
        t = min(max(t_ms, self.start_ms), self.end_ms)
        num, den = self.base.price_at(t), self.quote.price_at(t)
        if den <= 0:
            raise ValueError(f"price path {self.name}: {self.quote.name} is {den} at {t}")
        return (2 * num * PRICE_SCALE + den) // (2 * den)
