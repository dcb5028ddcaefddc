"""Binance market-stream payloads as frozen ``msgspec.Struct``s with Binance's field names.

Streams are read combined (``/stream?streams=a/b``), each frame ``{"stream": name, "data": {...}}``:
``CombinedFrame`` decodes the envelope and keeps ``data`` raw, and the stream name's channel picks the struct
(``decoder_for``), so one frame is parsed once. Spot ``bookTicker`` has no ``e`` field, so channels, not tags,
select the type. Decimals stay strings; ``oms.venues.binance.parse`` turns them into model events and the depth
diffs into the book kernel's int64 arrays.
"""

from __future__ import annotations

import msgspec


class CombinedFrame(msgspec.Struct, frozen=True):
    """The envelope of a combined-stream frame."""

    stream: str
    data: msgspec.Raw


class Trade(msgspec.Struct, frozen=True):
    """``<symbol>@trade``."""

    E: int  # event time, ms
    s: str  # symbol
    t: int  # trade id
    p: str  # price
    q: str  # quantity
    T: int  # trade time, ms
    m: bool  # is the buyer the maker


class AggTrade(msgspec.Struct, frozen=True):
    """``<symbol>@aggTrade``."""

    E: int
    s: str
    a: int  # aggregate trade id
    p: str
    q: str
    f: int  # first trade id
    l: int  # noqa: E741  last trade id
    T: int
    m: bool


class BookTicker(msgspec.Struct, frozen=True):
    """``<symbol>@bookTicker`` (Spot: no ``e``/``E``/``T``; USD-M has them)."""

    u: int  # order book update id
    s: str
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity
    E: int = 0
    T: int = 0


class DepthUpdate(msgspec.Struct, frozen=True):
    """``<symbol>@depth[@100ms]``: a diff of price levels (quantity "0" removes a level).

    Spot sequences by ``U`` (first update id) and ``u`` (last); USD-M adds ``pu``, the previous event's ``u``.
    """

    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]  # bids [price, quantity]
    a: list[tuple[str, str]]  # asks
    T: int = 0
    pu: int = -1


class DepthSnapshot(msgspec.Struct, frozen=True):
    """``GET /api/v3/depth`` and ``GET /fapi/v1/depth`` (USD-M adds ``E``/``T``)."""

    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    E: int = 0
    T: int = 0


class MarkPriceUpdate(msgspec.Struct, frozen=True):
    """USD-M ``<symbol>@markPrice[@1s]``: mark price and the funding rate of the next funding time ``T``."""

    E: int
    s: str
    p: str  # mark price
    r: str  # funding rate
    T: int  # next funding time, ms
    i: str = "0"  # index price
    P: str = "0"  # estimated settle price


class KlineData(msgspec.Struct, frozen=True):
    """The ``k`` object of a kline event."""

    t: int  # open time, ms
    T: int  # close time, ms
    s: str
    i: str  # interval
    o: str
    c: str
    h: str
    l: str  # noqa: E741  low
    v: str  # base volume
    n: int  # number of trades
    x: bool  # is this bar closed
    q: str  # quote volume
    f: int = -1  # first trade id
    L: int = -1  # last trade id
    V: str = "0"  # taker buy base volume
    Q: str = "0"  # taker buy quote volume


class Kline(msgspec.Struct, frozen=True):
    """``<symbol>@kline_<interval>``."""

    E: int
    s: str
    k: KlineData


COMBINED_DECODER = msgspec.json.Decoder(CombinedFrame)
_DECODERS: dict[str, msgspec.json.Decoder] = {
    "trade": msgspec.json.Decoder(Trade),
    "aggTrade": msgspec.json.Decoder(AggTrade),
    "bookTicker": msgspec.json.Decoder(BookTicker),
    "depth": msgspec.json.Decoder(DepthUpdate),
    "markPrice": msgspec.json.Decoder(MarkPriceUpdate),
    "kline": msgspec.json.Decoder(Kline),
}
DEPTH_DECODER = _DECODERS["depth"]
SNAPSHOT_DECODER = msgspec.json.Decoder(DepthSnapshot)


def channel_of(stream: str) -> str:
    """The channel family of a stream name: ``btcusdt@depth@100ms`` -> ``depth``, ``@kline_1m`` -> ``kline``."""
    channel = stream.partition("@")[2]
    if channel.startswith("kline_"):
        return "kline"
    if channel == "depth" or channel.startswith("depth@"):
        return "depth"  # diff depth only: partial-book channels (depth5, depth10@100ms) are not read
    if channel.startswith("markPrice"):
        return "markPrice"
    return channel


def decoder_for(stream: str) -> msgspec.json.Decoder | None:
    """The decoder of a stream's payloads, or None for a channel this connector does not read."""
    return _DECODERS.get(channel_of(stream))
