"""``MarketDataClient`` of one Binance market: trades, best bid/ask, depth diffs, klines, marks, as model events.

Streams are read combined through python-binance's ``BinanceSocketManager`` (``multiplex_socket`` /
``futures_multiplex_socket``) with the frame text handed on undecoded, so ``msgspec`` decodes the envelope and
the payload once (``wire_market``). python-binance reconnects a dropped socket itself and queues an error
notice: the stream yields ``StreamStatus("gap")`` then ``connected`` again; the depth diffs lost meanwhile show
as a sequence gap (``U``/``u``/``pu``), which the book kernel detects, and the consumer resynchronises from
``book_snapshot``. A frame that does not decode, an unknown symbol or an over-precise decimal is counted in
``dropped`` and logged; the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from oms.model import BookSnapshot, Market
from oms.venues.binance import parse
from oms.venues.binance import wire_market as wm
from oms.venues.binance.client import raw_frames, socket_manager
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.instruments import BinanceInstruments
from oms.venues.binance.session import MarketSession
from oms.venues.binance.symbols import BadDecimal, UnknownSymbol
from oms.venues.errors import Unsupported
from oms.venues.interface import StreamStatus, VenueContext

log = logging.getLogger(__name__)

_PARSERS = {
    "trade": parse.parse_to_trade,
    "aggTrade": parse.parse_to_trade,
    "bookTicker": parse.parse_to_quote,
    "depth": parse.parse_to_depth_diff,
    "kline": parse.parse_to_kline,
    "markPrice": parse.parse_to_mark_price,
}


class MarketStream:
    """One combined-stream subscription (``oms.venues.Stream``); iterate it for model events."""

    def __init__(self, session: MarketSession, streams: list[str], instruments: BinanceInstruments) -> None:
        self.s = session
        self.streams = streams
        self.instruments = instruments
        self.counters: Counter[str] = Counter()
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"binance streams {streams[:2]}")

    def __aiter__(self) -> MarketStream:
        return self

    async def __anext__(self) -> Any:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        return item

    async def ready(self) -> None:
        await self.connected.wait()

    @property
    def dropped(self) -> Mapping[str, int]:
        return dict(self.counters)

    async def close(self) -> None:
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._queue.put_nowait(_END)

    def _socket(self) -> Any:
        assert self.s.client is not None
        bsm = socket_manager(self.s.client, self.s.ctx.endpoints, self.s.market, self.s.settings.keepalive_s)
        if self.s.market is Market.SPOT:
            return raw_frames(bsm.multiplex_socket(self.streams))
        return raw_frames(bsm.futures_multiplex_socket(self.streams))

    async def _run(self) -> None:
        await self.s.ensure_started()
        if self.s.symbols is None:
            await self.instruments.load()
            self.s.symbols = self.instruments.symbols
        exchange = self.s.ctx.exchange
        while not self._closed:
            sock = self._socket()
            try:
                async with self.s.ctx.limiter.connection():
                    await sock.__aenter__()
                    self.connected.set()
                    self._queue.put_nowait(StreamStatus("connected", event_ns=time.time_ns()))
                    await self._pump(sock, exchange)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["socket_failures"] += 1
                log.warning("binance market streams %s: %s", self.streams[:3], exc)
                await asyncio.sleep(0.5)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sock.__aexit__(None, None, None), 2.0)
            if not self._closed:
                self._queue.put_nowait(StreamStatus("gap", "socket rebuilt", time.time_ns()))

    async def _pump(self, sock: Any, exchange: str) -> None:
        while not self._closed:
            msg = await sock.recv()
            if isinstance(msg, dict):  # python-binance's notice: the socket closed (it reconnects) or gave up
                self._queue.put_nowait(StreamStatus("gap", f"{msg.get('type')}: {msg.get('m')}", time.time_ns()))
                if msg.get("type") in ("BinanceWebsocketUnableToConnect", "BinanceWebsocketQueueOverflow"):
                    return  # its read loop ended: build a new socket
                continue
            ev = self.decode(msg, exchange)
            if ev is not None:
                self._queue.put_nowait(ev)

    def decode(self, frame: str | bytes, exchange: str) -> Any:
        """One combined-stream frame -> its model event, or None (counted, logged) when it cannot be one."""
        recv_ns = time.time_ns()
        try:
            env = wm.COMBINED_DECODER.decode(frame)
            channel = wm.channel_of(env.stream)
            decoder = wm.decoder_for(env.stream)
            if decoder is None:
                self.counters["unread_channel"] += 1
                return None
            return _PARSERS[channel](decoder.decode(env.data), exchange, self.s.symbol_table, recv_ns)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._bad("bad_frame", exc, frame)
        except UnknownSymbol as exc:
            self._bad("unknown_symbol", exc, frame)
        except (BadDecimal, ValueError, KeyError) as exc:
            self._bad("bad_value", exc, frame)
        return None

    def _bad(self, why: str, exc: Exception, frame: str | bytes) -> None:
        self.counters[why] += 1
        log.warning("dropped a binance market frame (%s): %s [%r]", why, exc, frame[:160])


class _End:
    pass


_END = _End()


class BinanceMarketData:
    """Public market data of one Binance market (``oms.venues.MarketDataClient``)."""

    def __init__(self, ctx: VenueContext, instruments: BinanceInstruments, settings: BinanceSettings | None = None):
        self.context = ctx
        self.instruments = instruments
        self.settings = settings or BinanceSettings.from_options(ctx.options)
        self.session = MarketSession(ctx, self.settings)
        self.streams: list[MarketStream] = []

    def _names(self, symbols: Sequence[str], channel: str) -> list[str]:
        return [f"{self.instruments.to_venue(s).lower()}@{channel}" for s in symbols]

    def _open(self, names: list[str]) -> MarketStream:
        stream = MarketStream(self.session, names, self.instruments)
        self.streams.append(stream)
        return stream

    def trades(self, symbols: Sequence[str]) -> MarketStream:
        return self._open(self._names(symbols, "trade"))

    def agg_trades(self, symbols: Sequence[str]) -> MarketStream:
        """Aggregate trades (``@aggTrade``), as ``Trade`` events with the aggregate id."""
        return self._open(self._names(symbols, "aggTrade"))

    def quotes(self, symbols: Sequence[str]) -> MarketStream:
        return self._open(self._names(symbols, "bookTicker"))

    def depth(self, symbols: Sequence[str], *, interval_ms: int = 100) -> MarketStream:
        suffix = "" if interval_ms in (0, 1000 if self.context.market is Market.SPOT else 250) else f"@{interval_ms}ms"
        return self._open(self._names(symbols, "depth" + suffix))

    def klines(self, symbols: Sequence[str], interval: str) -> MarketStream:
        return self._open(self._names(symbols, f"kline_{interval}"))

    def mark_prices(self, symbols: Sequence[str]) -> MarketStream:
        if self.context.market is not Market.USDM:
            raise Unsupported(
                "mark prices are a USD-M stream", account=str(self.context.account), action="stream marks"
            )
        return self._open(self._names(symbols, "markPrice@1s"))

    def combined(self, symbols: Sequence[str], channels: Sequence[str]) -> MarketStream:
        """Several channels (``trade``, ``bookTicker``, ``depth@100ms``, ``kline_1m``...) on one connection."""
        return self._open([n for ch in channels for n in self._names(symbols, ch)])

    async def book_snapshot(self, symbol: str, limit: int = 1000) -> BookSnapshot:
        if self.session.symbols is None:
            await self.instruments.load()
            self.session.symbols = self.instruments.symbols
        venue = self.instruments.to_venue(symbol)
        body = await self.session.request(
            "depth", {"symbol": venue, "limit": limit}, action=f"read the {symbol} book", sign=False
        )
        snap = msgspec.convert(body, wm.DepthSnapshot)
        return parse.parse_to_book_snapshot(
            snap, self.context.exchange, symbol, self.session.symbol_table, time.time_ns()
        )

    async def close(self) -> None:
        for stream in self.streams:
            await stream.close()
        self.streams.clear()
        await self.session.close()
