"""Market data per configured symbol: L2 books in the book kernel, trades, best bid/ask and marks; every
normalised event is published on core NATS ``md.{exchange}.{market}.{symbol}``.

``MarketFeed`` serves one exchange market. ``start()`` numbers its instruments in the daemon's instrument
table, subscribes the venue's streams (trades, best bid/ask, depth diffs, klines of each configured interval
(``daemon.kline_intervals``), and on USD-M mark prices with the funding rate), takes a
REST snapshot of each book and sets each instrument's first mark (the snapshot's mid; on USD-M the mark price)
into the kernel state, so the risk kernel has a mark before the first order. Then one task per stream:

* depth diffs go through ``kernels.book.apply_diff`` by the venue's sequence numbers; a gap (or a stream
  reconnect) marks the book for a new snapshot, which is fetched before the next diff is applied;
* best bid/ask move the mark of a Spot instrument to the mid; mark prices move a perpetual's mark
  (``kernels.positions.update_mark``, which revalues positions);
* trades are handed to the listeners (the hosted strategies);
* every event (``Trade``, ``Quote``, ``DepthDiff``, ``Kline``, ``MarkPrice``) is published as it is, tagged by
  its type, on the symbol's ``md.*`` subject.

A frame the kernel cannot take (a price finer than the tick) is counted in ``dropped`` and the feed carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from kernels import book as K
from kernels.positions import update_mark
from kernels.state import I_MARK
from oms.bus import md_subject
from oms.model import BookSnapshot, DepthDiff, Instrument, Market, MarkPrice, Quote, Trade
from oms.model.codec import encode
from oms.venues.factory import VenueFactory
from oms.venues.interface import StreamStatus
from stream.instruments import InstrumentTable
from stream.metrics import DaemonMetrics

log = logging.getLogger("stream.marketdata")

TradeListener = Callable[[int, Instrument, Trade], None]
PriceListener = Callable[[int, Instrument, Decimal], None]
BOOK_DEPTH = 200


class MarketFeed:
    def __init__(
        self,
        exchange: str,
        market: Market,
        symbols: tuple[str, ...],
        table: InstrumentTable,
        nc,
        metrics: DaemonMetrics,
        *,
        books: tuple[np.ndarray, np.ndarray],
        kline_intervals: tuple[str, ...] = (),
    ):
        self.exchange, self.market, self.symbols = exchange, market, symbols
        self.kline_intervals = tuple(kline_intervals)
        self.table = table
        self.nc = nc
        self.metrics = metrics
        self.lv, self.meta = books
        self.numbers: dict[str, int] = {}
        self.listeners: list[TradeListener] = []
        self.price_listeners: list[PriceListener] = []  # top-of-book mids (the hosted strategies' bars)
        self.dropped: Counter[str] = Counter()
        self.last_event_ns = 0
        self.md = None
        self._streams: list = []
        self._tasks: list[asyncio.Task] = []
        self._subjects: dict[str, str] = {}

    async def start(self, factory: VenueFactory) -> None:
        instruments = await factory.instruments(self.exchange, self.market)
        for sym in self.symbols:
            self.numbers[sym] = self.table.add(self.exchange, instruments.instrument(sym))
            self._subjects[sym] = md_subject(self.exchange, self.market, sym)
        self.md = md = await factory.market_data(self.exchange, self.market)
        syms = list(self.symbols)
        streams = [("trades", md.trades(syms)), ("quotes", md.quotes(syms)), ("depth", md.depth(syms))]
        if self.market is Market.USDM:  # mark price, index price and funding rate of each perpetual
            streams.append(("marks", md.mark_prices(syms)))
        combined = getattr(md, "combined", None)  # Binance: several channels on one connection (slots are few)
        if len(self.kline_intervals) > 1 and callable(combined):
            channels = [f"kline_{interval}" for interval in self.kline_intervals]
            streams.append(("klines " + ",".join(self.kline_intervals), combined(syms, channels)))
        else:
            for interval in self.kline_intervals:  # bars, running and closed
                streams.append((f"klines {interval}", md.klines(syms, interval)))
        self._streams = [s for _, s in streams]
        await asyncio.gather(*(s.ready() for s in self._streams))
        for sym in syms:
            await self.resync(sym)
        loop = asyncio.get_running_loop()
        for name, stream in streams:
            self._tasks.append(loop.create_task(self._run(name, stream), name=f"md {self.exchange} {name}"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for s in self._streams:
            try:
                await s.close()
            except Exception:
                pass

    # ------------------------------------------------------------------ books
    async def resync(self, symbol: str) -> None:
        """A REST snapshot into the book kernel (and, for Spot, the first mark from its mid)."""
        snap: BookSnapshot = await self.md.book_snapshot(symbol, limit=BOOK_DEPTH)
        i = self.numbers[symbol]
        ins = self.table.instrument(i)[1]
        try:
            bp = np.array([ins.price(p) for p, _ in snap.bids], dtype=np.int64)
            bq = np.array([ins.qty(q) for _, q in snap.bids], dtype=np.int64)
            ap = np.array([ins.price(p) for p, _ in snap.asks], dtype=np.int64)
            aq = np.array([ins.qty(q) for _, q in snap.asks], dtype=np.int64)
        except ValueError as exc:
            self._drop("bad_snapshot", f"{symbol}: {exc}")
            return
        K.apply_snapshot(self.lv, self.meta, i, bp, bq, ap, aq, snap.last_update_id)
        # Spot marks at the mid; a perpetual's mark comes from its mark-price stream, the mid only until then
        first = self.table.state.ins[I_MARK, i] <= 0
        if snap.bids and snap.asks and (self.market is Market.SPOT or first):
            self._mark(i, ins, (Decimal(snap.bids[0][0]) + Decimal(snap.asks[0][0])) / 2)

    def _mark(self, i: int, ins: Instrument, price: Decimal) -> None:
        update_mark(*self.table.state.blocks, i, ins.mark_to_units(price))

    def best(self, symbol: str) -> tuple[int, int]:
        """(best bid, best ask) of a book in price units (0 when that side is empty)."""
        i = self.numbers[symbol]
        return int(K.best(self.lv, self.meta, i, K.BID)[0]), int(K.best(self.lv, self.meta, i, K.ASK)[0])

    async def _on_depth(self, ev: DepthDiff) -> None:
        i = self.numbers.get(ev.symbol)
        if i is None:
            self._drop("unknown_symbol", ev.symbol)
            return
        ins = self.table.instrument(i)[1]
        n = len(ev.bids) + len(ev.asks)
        sides = np.empty(n, dtype=np.int64)
        prices = np.empty(n, dtype=np.int64)
        qtys = np.empty(n, dtype=np.int64)
        try:
            for k, (p, q) in enumerate((*ev.bids, *ev.asks)):
                sides[k] = K.BID if k < len(ev.bids) else K.ASK
                prices[k], qtys[k] = ins.price(p), ins.qty(q)
        except ValueError as exc:
            self._drop("bad_level", f"{ev.symbol}: {exc}")
            return
        prev = ev.prev_update_id if ev.prev_update_id is not None else -1
        r = K.apply_diff(self.lv, self.meta, i, ev.first_update_id, ev.last_update_id, prev, sides, prices, qtys)
        if r in (K.GAP, K.NOT_READY):
            if r == K.GAP:
                self.metrics.reconnects.labels("book_gap").inc()
                log.info("book %s %s: %s", self.exchange, ev.symbol, K.DIFF_RESULTS[r])
            await self.resync(ev.symbol)

    # ------------------------------------------------------------------ streams
    async def _run(self, name: str, stream) -> None:
        try:
            async for ev in stream:
                self.last_event_ns = time.time_ns()
                try:
                    await self._dispatch(ev)
                except Exception as exc:  # bad input never ends a feed
                    self._drop("handler_error", f"{type(ev).__name__}: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("market data %s %s %s ended: %s", self.exchange, self.market.value, name, exc)

    async def _dispatch(self, ev) -> None:
        if isinstance(ev, StreamStatus):
            if ev.kind == "gap":
                self.metrics.reconnects.labels("market_data").inc()
                for i in self.numbers.values():
                    self.meta[i, K.M_STATE] = K.NEEDS_SNAPSHOT
            return
        subject = self._subjects.get(ev.symbol)
        if subject is None:
            self._drop("unknown_symbol", ev.symbol)
            return
        if isinstance(ev, DepthDiff):
            await self._on_depth(ev)
        elif isinstance(ev, Quote):
            i = self.numbers[ev.symbol]
            bid, ask = Decimal(ev.bid_price), Decimal(ev.ask_price)
            # a perpetual marks at its mark-price stream: its mid matters only to bar-driven strategies
            if bid > 0 and ask > 0 and (self.market is Market.SPOT or self.price_listeners):
                ins = self.table.instrument(i)[1]
                mid = (bid + ask) / 2
                if self.market is Market.SPOT:  # a perpetual marks at its mark-price stream
                    self._mark(i, ins, mid)
                for listener in self.price_listeners:
                    listener(i, ins, mid)
        elif isinstance(ev, MarkPrice):
            i = self.numbers[ev.symbol]
            self._mark(i, self.table.instrument(i)[1], Decimal(ev.mark_price))
        elif isinstance(ev, Trade):
            i = self.numbers[ev.symbol]
            ins = self.table.instrument(i)[1]
            for listener in self.listeners:
                listener(i, ins, ev)
        try:
            await self.nc.publish(subject, encode(ev))
            self.metrics.md_events.labels(type(ev).__name__).inc()
        except Exception as exc:  # NATS down: market data is not kept, the books are
            self._drop("publish_failed", str(exc))

    def _drop(self, reason: str, detail: str) -> None:
        n = self.dropped[reason] = self.dropped[reason] + 1
        self.metrics.dropped.labels(reason).inc()
        if n == 1 or n % 1000 == 0:
            log.warning("market data %s %s: %s (%d so far): %s", self.exchange, self.market.value, reason, n, detail)
