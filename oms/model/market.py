"""Market data as model events: trades, best bid/ask, depth diffs and snapshots, klines, mark price and funding.

Book levels are ``(price, qty)`` pairs of decimal strings, as Binance sends them; a quantity of ``"0"`` in a
diff removes the level. Depth diffs carry the venue's sequence numbers: ``first_update_id`` (Binance ``U``),
``last_update_id`` (``u``) and, on futures, ``prev_update_id`` (``pu``), so a consumer detects a gap and
resynchronises from a snapshot (``BookSnapshot.last_update_id``).
"""

from __future__ import annotations

from oms.model.base import Msg
from oms.model.enums import Side
from oms.model.fields import DecimalStr, ExchangeStr, OptDecimalStr, SymbolStr, TimeNs

Level = tuple[DecimalStr, DecimalStr]


class Trade(Msg, tag="trade", kw_only=True):
    """A public trade; ``taker_side`` is the aggressor's (Binance: sell when the buyer is the maker)."""

    exchange: ExchangeStr
    symbol: SymbolStr
    trade_id: str
    price: DecimalStr
    qty: DecimalStr
    taker_side: Side
    event_ns: TimeNs
    recv_ns: TimeNs = 0


class Quote(Msg, tag="quote", kw_only=True):
    """Best bid and ask (Binance bookTicker)."""

    exchange: ExchangeStr
    symbol: SymbolStr
    bid_price: DecimalStr
    bid_qty: DecimalStr
    ask_price: DecimalStr
    ask_qty: DecimalStr
    update_id: int = 0
    event_ns: TimeNs = 0
    recv_ns: TimeNs = 0


class DepthDiff(Msg, tag="depth_diff", kw_only=True):
    exchange: ExchangeStr
    symbol: SymbolStr
    first_update_id: int
    last_update_id: int
    prev_update_id: int | None = None  # futures' pu; None on Spot
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    event_ns: TimeNs
    recv_ns: TimeNs = 0


class BookSnapshot(Msg, tag="book_snapshot", kw_only=True):
    exchange: ExchangeStr
    symbol: SymbolStr
    last_update_id: int
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    event_ns: TimeNs = 0
    recv_ns: TimeNs = 0


class Kline(Msg, tag="kline", kw_only=True):
    """One bar; ``closed`` is False while the interval is still running."""

    exchange: ExchangeStr
    symbol: SymbolStr
    interval: str  # Binance's names: 1m, 5m, 1h, 1d, ...
    open_ns: TimeNs
    close_ns: TimeNs
    open: DecimalStr
    high: DecimalStr
    low: DecimalStr
    close: DecimalStr
    volume: DecimalStr
    quote_volume: DecimalStr = "0"
    trades: int = 0
    closed: bool = False
    event_ns: TimeNs = 0
    recv_ns: TimeNs = 0


class MarkPrice(Msg, tag="mark_price", kw_only=True):
    """A perpetual's mark and index price with its current funding rate and next funding time."""

    exchange: ExchangeStr
    symbol: SymbolStr
    mark_price: DecimalStr
    index_price: OptDecimalStr = None
    funding_rate: OptDecimalStr = None
    next_funding_ns: TimeNs = 0
    event_ns: TimeNs
    recv_ns: TimeNs = 0
