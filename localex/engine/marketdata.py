"""Public market data of one (market, symbol): last price, trades, aggregate trades, klines, 24h stats.

Trades of one engine operation are folded into the klines of every interval once, at the end of the
operation (``flush``), so a crossing order touching many levels costs one kline update per interval.
The replayed price path also moves klines (``on_price``: a price observation without volume).

When nobody listens for kline events, ``flush_quiet`` does not touch the 14 series at all: the trades of
consecutive operations within one minute are summed into one pending "run" (they all land in the same bar
of every interval, and folding a run at once equals folding its operations one by one), which is folded
in when the minute changes, a path price arrives, a listener needs events, or somebody reads klines.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from .event_types import AggTradeEvent, TradeEvent
from .types import Kline

MS: Final = 1_000_000  # ns per ms
INTERVALS: Final[dict[str, int]] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
WEEK_OFFSET_MS: Final = 345_600_000  # Binance weeks start on Monday; the epoch was a Thursday
KEEP_BARS: Final = 1500
KEEP_1M: Final = 2 * 1440 + 60
KEEP_TRADES: Final = 1000


@dataclass(slots=True)
class Ticker24h:
    """Rolling 24h statistics (prices in ticks, volume in lots, quote volume in 1e-8 units)."""

    open_price: int
    high: int
    low: int
    last: int
    volume: int
    quote_volume: int
    open_time_ms: int
    close_time_ms: int
    first_id: int
    last_id: int
    count: int
    prev_close: int


def bar_open(interval_ms: int, t_ms: int) -> int:
    """Open time (ms) of the bar of ``interval_ms`` containing ``t_ms`` (weeks start Monday)."""
    if interval_ms == 604_800_000:
        return t_ms - (t_ms - WEEK_OFFSET_MS) % interval_ms
    return t_ms - t_ms % interval_ms


class MarketData:
    """Series of one book. ``notional_unit`` turns price*qty into fine quote units, ``quote_scale`` of which make
    1e-8: each trade's quote volume is its settled quote amount (``SymbolSpec.settled_quote``)."""

    __slots__ = (
        "market",
        "symbol",
        "notional_unit",
        "quote_scale",
        "last_price",
        "next_trade_id",
        "next_agg_id",
        "trades",
        "aggs",
        "klines",
        "_pending",
        "_pending_prices",
        "_run",
    )

    def __init__(self, market: str, symbol: str, notional_unit: int, quote_scale: int = 1) -> None:
        self.market = market
        self.symbol = symbol
        self.notional_unit = notional_unit
        self.quote_scale = quote_scale
        self.last_price = 0
        self.next_trade_id = 1
        self.next_agg_id = 1
        self.trades: deque[TradeEvent] = deque(maxlen=KEEP_TRADES)
        self.aggs: deque[AggTradeEvent] = deque(maxlen=KEEP_TRADES)
        self.klines: dict[str, list[Kline]] = {k: [] for k in INTERVALS}
        self._pending: list[TradeEvent] = []
        self._pending_prices: list[tuple[int, int]] = []
        # deferred trades of past operations, all in one minute (see module docstring), or None:
        # [minute, t_ms, first_price, high, low, last, volume, quote_volume, count, taker_buy_volume,
        #  taker_buy_quote_volume, first_trade_id, last_trade_id]
        self._run: list[int] | None = None

    def record_trade(self, trade: TradeEvent) -> None:
        """A trade happened (kline update deferred to ``flush``)."""
        self.trades.append(trade)
        self.last_price = trade.price
        self._pending.append(trade)

    def on_price(self, price: int, time_ns: int) -> None:
        """A replayed-path price observation: moves klines without volume (deferred to ``flush``)."""
        self._pending_prices.append((price, time_ns))

    @property
    def dirty(self) -> bool:
        """True when ``flush`` has work."""
        return bool(self._pending or self._pending_prices)

    def flush(self) -> list[tuple[str, Kline]]:
        """Fold pending trades and prices into every interval; returns the (interval, kline) touched.

        The trades of one operation normally share one minute: they are summed once and applied to each
        interval as one update; otherwise (a long operation, a replay jump) they are applied one by one.
        """
        touched: list[tuple[str, Kline]] = []
        pend, prices = self._pending, self._pending_prices
        if not pend and not prices:
            return touched
        if self._run is not None:
            self._materialize()
        self._apply_prices(prices)
        if pend:
            self._apply_trades(pend)
        for interval in INTERVALS:
            series = self.klines[interval]
            touched.append((interval, series[-1]))
            keep = KEEP_1M if interval == "1m" else KEEP_BARS
            if len(series) > keep + 100:
                del series[: len(series) - keep]
        pend.clear()
        prices.clear()
        return touched

    def flush_quiet(self) -> None:
        """``flush`` for when nobody wants kline events: same-minute trades are deferred into one run."""
        pend = self._pending
        if self._pending_prices:
            self.flush()
            return
        if not pend:
            return
        t0 = pend[0]
        t_ms = t0.time_ns // MS
        minute = t_ms // 60_000
        if len(pend) == 1:
            p = t0.price
            q = t0.qty
            qv = p * q * self.notional_unit // self.quote_scale
            tbv, tbq = (0, 0) if t0.buyer_is_maker else (q, qv)
            hi = lo = p
            n = 1
        else:
            for t in pend:
                if t.time_ns // MS // 60_000 != minute:
                    self.flush()  # an operation spanning minutes: fold it exactly as ``flush`` does
                    return
            nu = self.notional_unit
            hi = lo = t0.price
            q = qv = tbv = tbq = 0
            for t in pend:
                p = t.price
                if p > hi:
                    hi = p
                elif p < lo:
                    lo = p
                x = p * t.qty * nu // self.quote_scale
                q += t.qty
                qv += x
                if not t.buyer_is_maker:
                    tbv += t.qty
                    tbq += x
            n = len(pend)
        run = self._run
        if run is not None and run[0] == minute:
            if hi > run[3]:
                run[3] = hi
            if lo < run[4]:
                run[4] = lo
            run[5] = pend[-1].price
            run[6] += q
            run[7] += qv
            run[8] += n
            run[9] += tbv
            run[10] += tbq
            run[12] = pend[-1].trade_id
        else:
            if run is not None:
                self._materialize()
            self._run = [
                minute,
                t_ms,
                t0.price,
                hi,
                lo,
                pend[-1].price,
                q,
                qv,
                n,
                tbv,
                tbq,
                t0.trade_id,
                pend[-1].trade_id,
            ]
        pend.clear()

    def _materialize(self) -> None:
        """Fold the deferred run into every interval (and trim the series as ``flush`` does)."""
        run = self._run
        if run is None:
            return
        self._run = None
        _, t_ms, first, hi, lo, last, vol, qv, n, tbv, tbq, first_id, last_id = run
        self._fold(t_ms, first, hi, lo, last, vol, qv, n, tbv, tbq, first_id, last_id)
        for interval, series in self.klines.items():
            keep = KEEP_1M if interval == "1m" else KEEP_BARS
            if len(series) > keep + 100:
                del series[: len(series) - keep]

    def _fold(
        self,
        t_ms: int,
        first: int,
        hi: int,
        lo: int,
        last: int,
        vol: int,
        qv: int,
        n: int,
        tbv: int,
        tbq: int,
        first_id: int,
        last_id: int,
    ) -> None:
        """Add a run of trades within one minute (first/high/low/last price, volumes, count, trade ids) to
        the bar of every interval that contains ``t_ms``."""
        klines = self.klines
        bar = self._bar
        for interval, iv in INTERVALS.items():
            cur = bar(klines[interval], iv, t_ms, first)
            if hi > cur.high:
                cur.high = hi
            if lo < cur.low:
                cur.low = lo
            cur.close = last
            cur.volume += vol
            cur.quote_volume += qv
            cur.trades += n
            cur.taker_buy_volume += tbv
            cur.taker_buy_quote_volume += tbq
            if cur.first_trade_id < 0:
                cur.first_trade_id = first_id
            cur.last_trade_id = last_id

    def _apply_prices(self, prices: list[tuple[int, int]]) -> None:
        for p, t_ns in prices:
            for interval, iv in INTERVALS.items():
                cur = self._bar(self.klines[interval], iv, t_ns // MS, p)
                if p > cur.high:
                    cur.high = p
                if p < cur.low:
                    cur.low = p
                cur.close = p

    def _apply_trades(self, pend: list[TradeEvent]) -> None:
        nu = self.notional_unit
        if pend:
            first_min = pend[0].time_ns // MS // 60_000
            if all(t.time_ns // MS // 60_000 == first_min for t in pend):
                groups = [pend]
            else:
                groups = [[t] for t in pend]
            for group in groups:
                t_ms = group[0].time_ns // MS
                hi = max(t.price for t in group)
                lo = min(t.price for t in group)
                last = group[-1].price
                vol = qv = tbv = tbq = 0
                for t in group:
                    q = t.price * t.qty * nu // self.quote_scale
                    vol += t.qty
                    qv += q
                    if not t.buyer_is_maker:
                        tbv += t.qty
                        tbq += q
                self._fold(
                    t_ms,
                    group[0].price,
                    hi,
                    lo,
                    last,
                    vol,
                    qv,
                    len(group),
                    tbv,
                    tbq,
                    group[0].trade_id,
                    group[-1].trade_id,
                )

    @staticmethod
    def _bar(series: list[Kline], iv: int, t_ms: int, price: int) -> Kline:
        start = bar_open(iv, t_ms)
        if series:
            last = series[-1]
            if last.open_time_ms == start:
                return last
            if start < last.open_time_ms:  # a clock step backwards: keep updating the newest bar
                return last
            price_open = last.close
        else:
            price_open = price
        k = Kline(start, start + iv - 1, price_open, max(price_open, price), min(price_open, price), price_open)
        series.append(k)
        return k

    def get_klines(self, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
        """Bars of ``interval`` overlapping [start_ms, end_ms], oldest first, at most ``limit``."""
        if self._run is not None:
            self._materialize()
        series = self.klines[interval]
        out = [
            k
            for k in series
            if (start_ms is None or k.open_time_ms >= start_ms) and (end_ms is None or k.open_time_ms <= end_ms)
        ]
        if start_ms is not None:
            return out[:limit]
        return out[-limit:] if limit > 0 else []

    def ticker_24h(self, now_ns: int) -> Ticker24h:
        """Rolling 24h statistics from the 1m bars."""
        if self._run is not None:
            self._materialize()
        now_ms = now_ns // MS
        start = now_ms - 86_400_000
        bars = [k for k in self.klines["1m"] if k.close_time_ms >= start]
        last = self.last_price
        if not bars:
            return Ticker24h(last, last, last, last, 0, 0, start, now_ms, -1, -1, 0, last)
        first_ids = [k.first_trade_id for k in bars if k.first_trade_id >= 0]
        last_ids = [k.last_trade_id for k in bars if k.last_trade_id >= 0]
        return Ticker24h(
            open_price=bars[0].open,
            high=max(k.high for k in bars),
            low=min(k.low for k in bars),
            last=bars[-1].close,
            volume=sum(k.volume for k in bars),
            quote_volume=sum(k.quote_volume for k in bars),
            open_time_ms=max(start, bars[0].open_time_ms),
            close_time_ms=now_ms,
            first_id=first_ids[0] if first_ids else -1,
            last_id=last_ids[-1] if last_ids else -1,
            count=sum(k.trades for k in bars),
            prev_close=bars[0].open,
        )
