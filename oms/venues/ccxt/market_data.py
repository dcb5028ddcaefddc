"""Market data over ccxt.pro: trades, best bid/ask, L2 depth with sequence numbers, klines, mark price/funding.

Each stream is a ``WatchStream`` merging one watch loop per symbol. ccxt.pro reconnects on the next
``watch_*`` call after a connection error; the loop backs off, yields ``StreamStatus("gap")``, and
``StreamStatus("connected")`` once data flows again. A structure that does not parse (an unknown symbol, a
price with more decimals than the tick) is counted in ``dropped`` and skipped.

**Depth.** ccxt.pro keeps the book itself (REST snapshot + diffs by the venue's sequence rules) and raises
``InvalidNonce``/``ChecksumError`` on a gap, after which the next ``watch_order_book`` re-subscribes and
fetches a new snapshot. The stream turns what ccxt maintains into what the book kernel consumes: after each
(re)subscription a baseline (the top ``depth`` levels at ccxt's nonce, the venue's update id) announced by
``StreamStatus("connected")``, then one ``DepthDiff`` per observed change, numbered ``first_update_id =
previous nonce + 1`` and ``last_update_id = nonce``, so the kernel's Spot rule (``first == last + 1``) holds
exactly when nothing was missed. ``book_snapshot`` returns the state after the last diff the stream has
queued (the kernel skips the older queued diffs as stale), or a REST snapshot when no depth stream runs. A
gap ccxt detected therefore reaches the consumer as ``gap`` + ``connected`` and a jump in the update ids
(the kernel asks for a snapshot), never as a silently wrong book. The book kept is the top ``depth`` levels
(``ctx.options["depth_levels"]``, default 100): a level leaving that window is a removal in the diff.

**Closed klines.** ccxt's OHLCV rows do not say whether a bar is final; a bar is emitted ``closed`` when the
next interval's bar first appears.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from oms.model import BookSnapshot, DepthDiff, Kline, MarkPrice, Quote, Trade
from oms.venues.ccxt import parse
from oms.venues.ccxt.instruments import CcxtInstruments
from oms.venues.ccxt.metadata import native
from oms.venues.ccxt.session import Session
from oms.venues.ccxt.stream import WatchStream
from oms.venues.ccxt.streams import GAP, RECONNECTABLE, Backoff
from oms.venues.interface import StreamStatus

log = logging.getLogger(__name__)

Item = Any


async def merge(gens: Sequence[AsyncIterator[Item]]) -> AsyncIterator[Item]:
    """Items of several async generators as they come (one task per generator)."""
    if len(gens) == 1:
        async for item in gens[0]:
            yield item
        return
    queue: asyncio.Queue[tuple[bool, Item]] = asyncio.Queue()

    async def run(gen: AsyncIterator[Item]) -> None:
        try:
            async for item in gen:
                queue.put_nowait((False, item))
        except BaseException as exc:
            queue.put_nowait((True, exc))
            raise

    tasks = [asyncio.ensure_future(run(g)) for g in gens]
    try:
        while True:
            failed, item = await queue.get()
            if failed:
                raise item
            yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class CcxtMarketData:
    """Public market data of one exchange market (``MarketDataClient``)."""

    def __init__(self, session: Session, exchange_name: str, instruments: CcxtInstruments, depth_levels: int = 100):
        self.session = session
        self.exchange = session.exchange
        self.exchange_name = exchange_name
        self.instruments = instruments
        self.depth_levels = depth_levels
        self.gaps: Counter[str] = Counter()
        self._books: dict[str, BookSnapshot] = {}
        self._baseline: dict[str, asyncio.Event] = {}

    # --- the watch loop ----------------------------------------------------------------------------

    async def _loop(
        self,
        stream: str,
        dropped: Counter[str],
        call: Callable[[], Any],
        convert: Callable[[Any, int], list[Any]],
    ) -> AsyncIterator[Any]:
        backoff = Backoff()
        in_gap = False
        while True:
            try:
                got = await call()
            except RECONNECTABLE as exc:
                self.gaps[stream] += 1
                log.warning("%s %s: %s: reconnecting", self.exchange_name, stream, exc)
                if not in_gap:
                    in_gap = True
                    yield StreamStatus("gap", f"{stream}: {exc}", time.time_ns())
                await backoff.wait()
                continue
            backoff.reset()
            if in_gap:
                in_gap = False
                yield StreamStatus("connected", f"{stream}: re-subscribed", time.time_ns())
            try:
                items = convert(got, time.time_ns())
            except (parse.BadValue, TypeError, KeyError, IndexError) as exc:
                dropped["bad_value"] += 1
                log.warning("%s %s: dropped: %s", self.exchange_name, stream, exc)
                continue
            for item in items:
                yield item

    def _stream(
        self, name: str, symbols: Sequence[str], topics: Sequence[str], make: Callable[..., Any]
    ) -> WatchStream:
        dropped: Counter[str] = Counter()
        insts = [self.instruments.instrument(s) for s in symbols]  # KeyError for an unknown symbol, now

        def source() -> AsyncIterator[Any]:
            return merge([make(inst, dropped) for inst in insts])

        ids = [s.lower() for s in symbols] + [i.spec.venue_symbol.lower() for i in insts]
        return WatchStream(name, self.session, source, [f"{t}" for t in topics] + ids, dropped)

    def _each(self, dropped: Counter[str], inst: Any, what: str, convert: Callable[[Any, int], Any]) -> Any:
        """A converter of a list of ccxt structures that drops (and counts) the bad ones one by one."""

        def run(items: Any, recv: int) -> list[Any]:
            out = []
            for x in items or ():
                try:
                    out.append(convert(x, recv))
                except parse.BadValue as exc:
                    dropped["bad_value"] += 1
                    log.warning("%s %s %s: dropped: %s", self.exchange_name, what, inst.symbol, exc)
            return out

        return run

    # --- streams -----------------------------------------------------------------------------------

    def trades(self, symbols: Sequence[str]) -> WatchStream:
        def make(inst: Any, dropped: Counter[str]) -> AsyncIterator[Any]:
            conv = self._each(dropped, inst, "trades", lambda t, r: parse.trade(self.exchange_name, inst, t, r))
            return self._loop(f"trades {inst.symbol}", dropped, lambda: self.exchange.watch_trades(inst.symbol), conv)

        return self._stream("trades", symbols, ["trade"], make)

    def quotes(self, symbols: Sequence[str]) -> WatchStream:
        """Best bid/ask: ``watch_bids_asks`` where native, else the ticker's bid and ask."""
        bids_asks = native(self.exchange.has, "watchBidsAsks")

        def make(inst: Any, dropped: Counter[str]) -> AsyncIterator[Any]:
            def call() -> Any:
                if bids_asks:
                    return self.exchange.watch_bids_asks([inst.symbol])
                return self.exchange.watch_ticker(inst.symbol)

            def conv(got: Any, recv: int) -> list[Quote]:
                ticker = got.get(inst.symbol) if bids_asks else got
                return [] if ticker is None else [parse.quote(self.exchange_name, inst, ticker, recv)]

            return self._loop(f"quotes {inst.symbol}", dropped, call, conv)

        return self._stream("quotes", symbols, ["bidask", "bookticker", "ticker"], make)

    def depth(self, symbols: Sequence[str], *, interval_ms: int = 100) -> WatchStream:
        """Contiguous diffs of the book ccxt.pro maintains (see the module doc); ``interval_ms`` is the venue's
        push period where ccxt lets one choose it, otherwise ccxt's default."""
        return self._stream("depth", symbols, ["orderbook", "depth"], self._depth_loop)

    async def _depth_loop(self, inst: Any, dropped: Counter[str]) -> AsyncIterator[Any]:
        symbol = inst.symbol
        stream, backoff = f"depth {symbol}", Backoff()
        baseline = self._baseline.setdefault(symbol, asyncio.Event())
        prev: BookSnapshot | None = None
        while True:
            try:
                ob = await self.exchange.watch_order_book(symbol)
            except GAP as exc:
                self.gaps[stream] += 1
                log.warning("%s %s: sequence gap (%s): resubscribing", self.exchange_name, stream, exc)
                prev = None
                baseline.clear()
                yield StreamStatus("gap", f"{stream}: sequence gap: {exc}", time.time_ns())
                continue
            except RECONNECTABLE as exc:
                self.gaps[stream] += 1
                if prev is not None:
                    yield StreamStatus("gap", f"{stream}: {exc}", time.time_ns())
                prev = None
                baseline.clear()
                await backoff.wait()
                continue
            backoff.reset()
            try:
                snap = parse.snapshot(self.exchange_name, inst, ob, self.depth_levels, time.time_ns())
            except parse.BadValue as exc:
                dropped["bad_value"] += 1
                log.warning("%s %s: dropped a book state: %s", self.exchange_name, stream, exc)
                if prev is not None:
                    yield StreamStatus("gap", f"{stream}: a book state did not parse", time.time_ns())
                prev = None
                baseline.clear()
                continue
            if prev is None or not snap.last_update_id or snap.last_update_id < prev.last_update_id:
                prev = snap
                self._books[symbol] = snap
                baseline.set()
                yield StreamStatus("connected", f"{stream}: book at update {snap.last_update_id}", time.time_ns())
                continue
            if snap.last_update_id == prev.last_update_id:
                continue
            diff = parse.depth_diff(self.exchange_name, prev, snap)
            prev = snap
            self._books[symbol] = snap
            yield diff

    async def book_snapshot(self, symbol: str, limit: int = 1000) -> BookSnapshot:
        """The depth stream's current book when one runs on ``symbol`` (consistent with its diffs), else a
        REST snapshot (``fetch_order_book``) of ``limit`` levels."""
        inst = self.instruments.instrument(symbol)
        event = self._baseline.get(symbol)
        if event is not None:
            try:
                await asyncio.wait_for(event.wait(), 10.0)
            except TimeoutError:
                pass
            else:
                return self._books[symbol]
        ob = await self.exchange.fetch_order_book(symbol, limit)
        return parse.snapshot(self.exchange_name, inst, ob, limit, time.time_ns())

    def klines(self, symbols: Sequence[str], interval: str) -> WatchStream:
        interval_ms = int(self.exchange.parse_timeframe(interval)) * 1000

        def make(inst: Any, dropped: Counter[str]) -> AsyncIterator[Any]:
            last: list[Any] = []

            def conv(rows: Any, recv: int) -> list[Kline]:
                out = []
                for row in rows or ():
                    try:
                        if last and row[0] > last[0][0]:
                            out.append(parse.kline(self.exchange_name, inst, interval_ms, interval, last[0], True))
                        out.append(parse.kline(self.exchange_name, inst, interval_ms, interval, row, False))
                    except (parse.BadValue, TypeError, IndexError) as exc:
                        dropped["bad_value"] += 1
                        log.warning("%s klines %s: dropped: %s", self.exchange_name, inst.symbol, exc)
                        continue
                    if not last or row[0] >= last[0][0]:
                        last[:] = [list(row)]
                return out

            call = lambda: self.exchange.watch_ohlcv(inst.symbol, interval)  # noqa: E731
            return self._loop(f"klines {inst.symbol} {interval}", dropped, call, conv)

        return self._stream("klines", symbols, ["kline", "ohlcv", "candle"], make)

    def mark_prices(self, symbols: Sequence[str]) -> WatchStream:
        """Mark and index price from ``watch_mark_price``, with the funding rate of ``fetch_funding_rate``
        (read again each time its funding time has passed) where the venue has it."""
        with_funding = native(self.exchange.has, "fetchFundingRate")

        def make(inst: Any, dropped: Counter[str]) -> AsyncIterator[Any]:
            funding: dict[str, Any] = {}

            async def call() -> Any:
                if with_funding and (funding.get("fundingTimestamp") or 0) <= time.time() * 1000:
                    funding.clear()
                    funding.update(await self.exchange.fetch_funding_rate(inst.symbol))
                return await self.exchange.watch_mark_price(inst.symbol)

            def conv(t: Any, recv: int) -> list[MarkPrice]:
                return [parse.mark_price(self.exchange_name, inst, t, funding or None, recv)]

            return self._loop(f"mark {inst.symbol}", dropped, call, conv)

        return self._stream("mark_prices", symbols, ["markprice", "mark"], make)

    async def funding(self, symbol: str) -> MarkPrice:
        """The current mark price and funding rate over REST (``fetch_funding_rate``)."""
        inst = self.instruments.instrument(symbol)
        fr = await self.exchange.fetch_funding_rate(symbol)
        return parse.mark_price(self.exchange_name, inst, fr, fr, time.time_ns())

    async def close(self) -> None:
        await self.session.close()


__all__ = ["CcxtMarketData", "DepthDiff", "Trade"]
