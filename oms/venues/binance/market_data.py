"""Public market data of one Binance market as model events: trades, best bid/ask, depth diffs, klines, marks.

Streams are read combined through python-binance's ``BinanceSocketManager`` (``multiplex_socket`` /
``futures_multiplex_socket``), with the frame text handed on undecoded so ``msgspec`` decodes the envelope and
the payload once (``wire_market``). python-binance reconnects a dropped socket itself; the events lost
meanwhile show as a sequence gap in the depth diffs (``U``/``u``/``pu``), which the book kernel detects, and
the consumer resynchronises from ``depth_snapshot``. A frame that does not decode, an unknown symbol or an
over-precise decimal is counted and logged; the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from oms.model import BookSnapshot, Market
from oms.venues.binance import parse
from oms.venues.binance import wire_market as wm
from oms.venues.binance.client import raw_frames, socket_manager
from oms.venues.binance.session import MarketSession
from oms.venues.binance.symbols import BadDecimal, SymbolTable, UnknownSymbol

log = logging.getLogger(__name__)

CHANNELS = {
    "trades": "trade",
    "agg_trades": "aggTrade",
    "quotes": "bookTicker",
    "depth": "depth@100ms",
    "mark_price": "markPrice@1s",
}
_PARSERS = {
    "trade": parse.parse_to_trade,
    "aggTrade": parse.parse_to_trade,
    "bookTicker": parse.parse_to_quote,
    "depth": parse.parse_to_depth_diff,
    "kline": parse.parse_to_kline,
    "markPrice": parse.parse_to_mark_price,
}


def stream_names(symbols: SymbolTable, unified: Iterable[str], channels: Iterable[str]) -> list[str]:
    """Binance stream names for unified symbols and channel keys (``trades``, ``depth``, ``kline_1m``...)."""
    out = []
    for sym in unified:
        venue = symbols.venue(sym).lower()
        for ch in channels:
            name = CHANNELS.get(ch, ch)
            out.append(f"{venue}@{name}")
    return out


class MarketStream:
    """One combined-stream subscription; iterate ``events()`` for model events."""

    def __init__(self, session: MarketSession, streams: list[str]) -> None:
        self.s = session
        self.streams = streams
        self.counters: Counter[str] = Counter()
        self.connected = asyncio.Event()

    def _socket(self) -> Any:
        assert self.s.client is not None
        bsm = socket_manager(self.s.client, self.s.endpoints, self.s.settings.keepalive_s)
        if self.s.market is Market.SPOT:
            return raw_frames(bsm.multiplex_socket(self.streams))
        return raw_frames(bsm.futures_multiplex_socket(self.streams))

    async def events(self) -> AsyncIterator[Any]:
        """Model events as they arrive, forever (until the consumer stops iterating)."""
        exchange = self.s.settings.exchange
        while True:
            sock = self._socket()
            try:
                await sock.__aenter__()
                self.connected.set()
                while True:
                    msg = await sock.recv()
                    if isinstance(msg, dict):  # python-binance's error notice: the socket closed or failed
                        self.counters["socket errors"] += 1
                        if msg.get("type") in ("BinanceWebsocketUnableToConnect", "BinanceWebsocketQueueOverflow"):
                            break  # the read loop gave up: build a new socket
                        continue
                    ev = self.decode(msg, exchange)
                    if ev is not None:
                        yield ev
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["socket failures"] += 1
                log.warning("market stream %s: %s", self.streams[:3], exc)
                await asyncio.sleep(0.5)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sock.__aexit__(None, None, None), 2.0)

    def decode(self, frame: str | bytes, exchange: str) -> Any:
        """One combined-stream frame -> its model event, or None (counted) when it cannot be one."""
        recv_ns = time.time_ns()
        try:
            env = wm.COMBINED_DECODER.decode(frame)
            channel = wm.channel_of(env.stream)
            decoder = wm.decoder_for(env.stream)
            if decoder is None:
                self.counters[f"unread channel {channel}"] += 1
                return None
            return _PARSERS[channel](decoder.decode(env.data), exchange, self.s.symbol_table, recv_ns)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._bad("bad frame", exc, frame)
        except (UnknownSymbol, BadDecimal, ValueError, KeyError) as exc:
            self._bad(type(exc).__name__, exc, frame)
        return None

    def _bad(self, why: str, exc: Exception, frame: str | bytes) -> None:
        self.counters[why] += 1
        log.warning("dropped a market frame (%s): %s [%r]", why, exc, frame[:120])


async def depth_snapshot(session: MarketSession, symbol: str, limit: int = 1000) -> BookSnapshot:
    """The REST order book of ``symbol`` (its ``lastUpdateId`` is where the diffs continue)."""
    venue = session.symbol_table.venue(symbol)
    body = await session.request("depth", {"symbol": venue, "limit": limit}, action=f"read the {symbol} book")
    snap = msgspec.convert(body, wm.DepthSnapshot)
    return parse.parse_to_book_snapshot(snap, session.settings.exchange, symbol, session.symbol_table, time.time_ns())
