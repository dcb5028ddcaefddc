"""Market data over ccxt.pro: trades, best bid/ask, L2 depth with sequence numbers, klines, mark price/funding.

Each stream is an async iterator of model messages that runs until the consumer stops iterating.

**Depth.** ccxt.pro keeps the book itself (REST snapshot + diffs by the venue's sequence rules) and raises
``InvalidNonce``/``ChecksumError`` on a gap, after which the next ``watch_order_book`` re-subscribes and
fetches a new snapshot. The stream turns what ccxt maintains into what the book kernel consumes: a
``BookSnapshot`` (top ``depth`` levels, ``last_update_id`` = ccxt's nonce) after every (re)subscription, then
one ``DepthDiff`` per observed change, numbered ``first_update_id = previous nonce + 1`` and
``last_update_id = nonce`` so the kernel's Spot rule (``first == last + 1``) holds exactly when nothing was
missed. A gap ccxt detected therefore reaches the consumer as a new snapshot (and ``stats.gaps``), never as
a silently wrong book. Venues without a nonce get a snapshot per update.

**Closed klines.** ccxt's OHLCV rows do not say whether the bar is final; a bar is emitted ``closed`` when
the next interval's bar first appears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from oms.model import BookSnapshot, DepthDiff, Kline, MarkPrice, Quote, Trade
from oms.venues.ccxt import parse
from oms.venues.ccxt.capabilities import native
from oms.venues.ccxt.instruments import CcxtInstruments
from oms.venues.ccxt.streams import GAP, RECONNECTABLE, Backoff, StreamStats

log = logging.getLogger(__name__)


class CcxtMarketData:
    def __init__(self, exchange: Any, exchange_name: str, instruments: CcxtInstruments, stats: StreamStats) -> None:
        self.exchange = exchange
        self.exchange_name = exchange_name
        self.instruments = instruments
        self.stats = stats

    async def _watch(self, stream: str, backoff: Backoff, call: Any, *args: Any) -> Any:
        """One watch call; None after a connection error (counted, backed off) so the caller loops."""
        try:
            result = await call(*args)
        except GAP:
            raise
        except RECONNECTABLE as exc:
            self.stats.reconnects[stream] += 1
            log.warning("%s %s: %s: reconnecting", self.exchange_name, stream, exc)
            await backoff.wait()
            return None
        backoff.reset()
        return result

    async def trades(self, symbol: str) -> AsyncIterator[Trade]:
        inst = self.instruments.get(symbol)
        stream, backoff = f"trades {symbol}", Backoff()
        while True:
            batch = await self._watch(stream, backoff, self.exchange.watch_trades, symbol)
            recv = time.time_ns()
            for t in batch or ():
                try:
                    msg = parse.trade(self.exchange_name, inst, t, recv)
                except parse.BadValue as exc:
                    self.stats.drop(self.exchange_name, stream, exc)
                    continue
                self.stats.events[stream] += 1
                yield msg

    async def quotes(self, symbol: str) -> AsyncIterator[Quote]:
        """Best bid/ask: ``watch_bids_asks`` where native, else the ticker's bid/ask."""
        inst = self.instruments.get(symbol)
        stream, backoff = f"quotes {symbol}", Backoff()
        use_bids_asks = native(self.exchange.has, "watchBidsAsks")
        while True:
            if use_bids_asks:
                got = await self._watch(stream, backoff, self.exchange.watch_bids_asks, [symbol])
                ticker = (got or {}).get(symbol)
            else:
                ticker = await self._watch(stream, backoff, self.exchange.watch_ticker, symbol)
            if ticker is None:
                continue
            try:
                msg = parse.quote(self.exchange_name, inst, ticker, time.time_ns())
            except parse.BadValue as exc:
                self.stats.drop(self.exchange_name, stream, exc)
                continue
            self.stats.events[stream] += 1
            yield msg

    async def book(self, symbol: str, depth: int = 20) -> AsyncIterator[BookSnapshot | DepthDiff]:
        """A snapshot after each (re)subscription, then contiguous diffs (see the module doc)."""
        inst = self.instruments.get(symbol)
        stream, backoff = f"book {symbol}", Backoff()
        prev: BookSnapshot | None = None
        while True:
            try:
                ob = await self._watch(stream, backoff, self.exchange.watch_order_book, symbol)
            except GAP as exc:
                self.stats.gaps[stream] += 1
                log.warning(
                    "%s %s: sequence gap (%s): resubscribing for a new snapshot", self.exchange_name, stream, exc
                )
                prev = None
                continue
            if ob is None:
                prev = None
                continue
            try:
                snap = parse.snapshot(self.exchange_name, inst, ob, depth, time.time_ns())
            except parse.BadValue as exc:
                self.stats.drop(self.exchange_name, stream, exc)
                prev = None  # the consumer's book may now lack a change: start again from a snapshot
                continue
            if prev is None or not snap.last_update_id or snap.last_update_id < prev.last_update_id:
                prev = snap
                self.stats.events[stream] += 1
                yield snap
                continue
            if snap.last_update_id == prev.last_update_id:
                continue  # nothing new (a resolve without a change)
            diff = parse.depth_diff(self.exchange_name, prev, snap)
            prev = snap
            self.stats.events[stream] += 1
            yield diff

    async def klines(self, symbol: str, interval: str = "1m") -> AsyncIterator[Kline]:
        inst = self.instruments.get(symbol)
        stream, backoff = f"klines {symbol} {interval}", Backoff()
        interval_ms = int(self.exchange.parse_timeframe(interval)) * 1000
        last: list[Any] | None = None
        while True:
            rows = await self._watch(stream, backoff, self.exchange.watch_ohlcv, symbol, interval)
            for row in rows or ():
                out: list[Kline] = []
                try:
                    if last is not None and row[0] > last[0]:
                        out.append(parse.kline(self.exchange_name, inst, interval_ms, interval, last, True))
                    out.append(parse.kline(self.exchange_name, inst, interval_ms, interval, row, False))
                except (parse.BadValue, TypeError, IndexError) as exc:
                    self.stats.drop(self.exchange_name, stream, exc)
                    continue
                if last is None or row[0] >= last[0]:
                    last = list(row)
                for k in out:
                    self.stats.events[stream] += 1
                    yield k

    async def funding(self, symbol: str) -> MarkPrice:
        """The current mark price and funding rate over REST (``fetch_funding_rate``)."""
        inst = self.instruments.get(symbol)
        fr = await self.exchange.fetch_funding_rate(symbol)
        return parse.mark_price(self.exchange_name, inst, fr, fr, time.time_ns())

    async def mark_prices(self, symbol: str) -> AsyncIterator[MarkPrice]:
        """Mark and index price from ``watch_mark_price``, with the funding rate from ``fetch_funding_rate``
        (re-read after each funding time passes) where the venue has it."""
        inst = self.instruments.get(symbol)
        stream, backoff = f"mark {symbol}", Backoff()
        with_funding = native(self.exchange.has, "fetchFundingRate")
        funding: dict[str, Any] | None = None
        while True:
            now_ms = time.time() * 1000
            if with_funding and (funding is None or (funding.get("fundingTimestamp") or 0) <= now_ms):
                try:
                    funding = await self.exchange.fetch_funding_rate(symbol)
                except RECONNECTABLE as exc:
                    log.warning("%s %s: funding rate: %s", self.exchange_name, stream, exc)
            ticker = await self._watch(stream, backoff, self.exchange.watch_mark_price, symbol)
            if ticker is None:
                continue
            try:
                msg = parse.mark_price(self.exchange_name, inst, ticker, funding, time.time_ns())
            except parse.BadValue as exc:
                self.stats.drop(self.exchange_name, stream, exc)
                continue
            self.stats.events[stream] += 1
            yield msg
