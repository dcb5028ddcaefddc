"""The ccxt connector's instruments and market data against a real local exchange (as ccxt's ``binance``).

Books go through the book kernel as the daemon feeds it; a depth frame lost on the wire (the fault proxy
drops it) must surface as a resync, and garbage frames must be counted and dropped while the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from kernels import book as kb
from localex import clients
from localex.server.state import ServerConfig
from oms.model import DepthDiff, InstrumentKind, Kline, MarkPrice, Quote, Trade
from oms.model.units import canonical
from oms.venues import StreamStatus
from oms.venues.ccxt.instruments import UnknownSymbol
from tests.localex.conftest import LocalServer, free_port, start_server
from tests.venues.ccxt.conftest import Venue
from tests.venues.ccxt.faultproxy import FaultProxy
from tests.venues.ccxt.kernelbook import KernelBook

WAIT = 10.0
SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"


class Feed:
    """The ccxt connector's instruments and market data from the real clients factory."""

    def __init__(self, server: LocalServer, config, market: str = "spot", url: str | None = None) -> None:
        self.venue = Venue(server, config, url=url)
        self.market = market

    async def __aenter__(self) -> Feed:
        self.instruments = await self.venue.factory.instruments("binance", self.market)
        self.md = await self.venue.factory.market_data("binance", self.market)
        self.session = self.md.session
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.venue.close()


async def take(stream, n: int, timeout: float = WAIT, kinds: tuple[type, ...] = ()) -> list:
    """The next ``n`` items of ``stream`` (only of ``kinds`` when given)."""
    out = []
    while len(out) < n:
        item = await asyncio.wait_for(stream.__anext__(), timeout)
        if not kinds or isinstance(item, kinds):
            out.append(item)
    return out


def rest(server: LocalServer, path: str) -> dict:
    with urllib.request.urlopen(server.url + path, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def trader(server: LocalServer) -> ccxt.binance:
    _, key, secret = server.new_account(spot={"USDT": "1000000", "BTC": "50"})
    ex = clients.ccxt_sync(server.url, key, secret)
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def quiet_server() -> Iterator[LocalServer]:
    """A local exchange without replayed liquidity: its book changes only by the test's orders."""
    yield from start_server(ServerConfig(port=free_port(), replay=False))


async def test_instruments_match_exchange_info_and_map_symbols_both_ways(server: LocalServer, ccxt_config) -> None:
    async with Feed(server, ccxt_config) as f, Feed(server, ccxt_config, "usdm") as g:
        spot = f.instruments.instrument(SPOT)
        perp = g.instruments.instrument(PERP)
        info = {s["symbol"]: s for s in rest(server, "/api/v3/exchangeInfo")["symbols"]}["BTCUSDT"]
        filters = {x["filterType"]: x for x in info["filters"]}
        assert spot.instrument_kind is InstrumentKind.SPOT and perp.instrument_kind is InstrumentKind.PERP
        assert spot.tick_size == Decimal(filters["PRICE_FILTER"]["tickSize"])
        assert spot.step_size == Decimal(filters["LOT_SIZE"]["stepSize"])
        assert spot.spec.min_notional == canonical(filters["NOTIONAL"]["minNotional"])
        assert perp.spec.settle_asset == "USDT" and perp.spec.venue_symbol == "BTCUSDT"
        assert all(i.instrument_kind is InstrumentKind.SPOT for i in (await f.instruments.load()).values())
        assert g.instruments.to_venue(PERP) == "BTCUSDT" and f.instruments.to_venue(SPOT) == "BTCUSDT"
        assert f.instruments.from_venue("BTCUSDT") == SPOT and g.instruments.from_venue("BTCUSDT") == PERP
        with pytest.raises(UnknownSymbol, match="no instrument 'DOGE/USDT'"):
            f.instruments.instrument("DOGE/USDT")
        with pytest.raises(UnknownSymbol, match="no usdm market 'NOPEUSDT'"):
            g.instruments.from_venue("NOPEUSDT")
        with pytest.raises(KeyError):
            f.md.trades(["DOGE/USDT"])


async def test_trades_stream_carries_our_market_order(server: LocalServer, ccxt_config, trader: ccxt.binance) -> None:
    async with Feed(server, ccxt_config) as f:
        stream = f.md.trades([SPOT])
        await stream.ready()
        await asyncio.to_thread(trader.create_order, SPOT, "market", "buy", 0.002)
        (t,) = await take(stream, 1, kinds=(Trade,))
        assert t.symbol == SPOT and t.exchange == "binance" and t.taker_side.value == "buy"
        inst = f.instruments.instrument(SPOT)
        inst.price(t.price) and inst.qty(t.qty)  # exact multiples of tick and lot
        assert t.event_ns > 1_600_000_000 * 10**9
        await stream.close()


async def _book(stream, md, inst) -> KernelBook:
    """A kernel book started the way the daemon starts one: the stream's baseline, then its diffs."""
    kbook = KernelBook(inst)
    await take(stream, 1, kinds=(StreamStatus,))
    kbook.apply(await md.book_snapshot(inst.symbol))
    return kbook


async def test_book_through_the_kernel_equals_the_exchange_book_after_busy_windows(
    quiet_server: LocalServer, ccxt_config
) -> None:
    """Orders at many levels (placed, partly cancelled, partly crossed) change the book across many diff
    windows; the kernel fed by the connector then equals the exchange's REST book exactly."""
    _, key, secret = quiet_server.new_account(spot={"USDT": "1000000", "BTC": "50"})
    ex = clients.ccxt_async_client(quiet_server.url, key, secret)
    try:
        await ex.load_markets()
        async with Feed(quiet_server, ccxt_config) as f:
            inst = f.instruments.instrument(SPOT)
            await ex.create_order(SPOT, "limit", "buy", 0.01, 30000.0)
            await ex.create_order(SPOT, "limit", "sell", 0.01, 31000.0)
            stream = f.md.depth([SPOT])
            kbook = await _book(stream, f.md, inst)
            ids = []
            for i in range(12):
                o = await ex.create_order(SPOT, "limit", "buy", 0.01 + i * 0.001, 30000.0 + 10 * i)
                ids.append(o["id"])
                await ex.create_order(SPOT, "limit", "sell", 0.01 + i * 0.001, 31000.0 - 10 * i)
            for oid in ids[::3]:
                await ex.cancel_order(oid, SPOT)
            await ex.create_order(SPOT, "market", "sell", 0.02)  # crosses the best bids
            expected = await ex.fetch_order_book(SPOT, 20)
            while kbook.last_update_id < expected["nonce"]:
                item = await asyncio.wait_for(stream.__anext__(), WAIT)
                assert isinstance(item, DepthDiff), item
                kbook.apply(item)
            assert kbook.last_update_id == expected["nonce"]
            assert kbook.results and all(r == kb.APPLIED for r in kbook.results)
            bids, asks = kbook.top(20)
            assert bids == [(canonical(repr(p)), canonical(repr(q))) for p, q in expected["bids"]]
            assert asks == [(canonical(repr(p)), canonical(repr(q))) for p, q in expected["asks"]]
            assert f.md.gaps["depth BTC/USDT"] == 0 and stream.dropped == {}
    finally:
        await ex.close()


async def test_replayed_book_diffs_all_apply_in_sequence(server: LocalServer, ccxt_config) -> None:
    """Against the replay's moving liquidity, every diff the connector emits applies (no gap, no stale)."""
    async with Feed(server, ccxt_config) as f:
        inst = f.instruments.instrument(SPOT)
        stream = f.md.depth([SPOT])
        kbook = await _book(stream, f.md, inst)
        for m in await take(stream, 12):
            assert isinstance(m, DepthDiff)
            kbook.apply(m)
        assert set(kbook.results) <= {kb.APPLIED, kb.STALE} and kbook.results[-1] == kb.APPLIED
        bids, asks = kbook.top(10)
        assert Decimal(bids[0][0]) < Decimal(asks[0][0])


async def test_lost_depth_frame_is_a_gap_that_resyncs(server: LocalServer, ccxt_config, proxy: FaultProxy) -> None:
    async with Feed(server, ccxt_config, url=proxy.url) as f:
        inst = f.instruments.instrument(SPOT)
        stream = f.md.depth([SPOT])
        kbook = await _book(stream, f.md, inst)
        for m in await take(stream, 3):
            assert kbook.apply(m) in (kb.APPLIED, kb.STALE)
        proxy.drop_frames(lambda path, frame: '"depthUpdate"' in frame, 1)
        seen = []
        while not seen or not isinstance(seen[-1], StreamStatus) or seen[-1].kind != "connected":
            seen.append(await asyncio.wait_for(stream.__anext__(), WAIT))
        assert proxy.dropped_frames == 1 and f.md.gaps["depth BTC/USDT"] == 1
        assert [s.kind for s in seen if isinstance(s, StreamStatus)] == ["gap", "connected"]
        (diff,) = await take(stream, 1)
        assert kbook.apply(diff) == kb.GAP  # the kernel sees the jump in update ids too
        kbook.apply(await f.md.book_snapshot(SPOT))
        for m in await take(stream, 3):
            assert kbook.apply(m) in (kb.APPLIED, kb.STALE)
        assert kbook.results[-1] == kb.APPLIED and kbook.snapshots == 2


async def test_garbage_and_truncated_frames_are_counted_and_the_stream_goes_on(
    server: LocalServer, ccxt_config, proxy: FaultProxy, trader: ccxt.binance
) -> None:
    async with Feed(server, ccxt_config, url=proxy.url) as f:
        stream = f.md.trades([SPOT])
        await stream.ready()
        reached = await proxy.inject("/stream", '{"e":"trade","E":1,"s":"BTCUSDT","t":')
        await proxy.inject("/stream", "\x00garbage\xff")
        await proxy.inject("/stream", '{"stream": 5}')
        assert reached == 1
        await asyncio.to_thread(trader.create_order, SPOT, "market", "sell", 0.001)
        (t,) = await take(stream, 1, kinds=(Trade,))
        assert t.symbol == SPOT
        assert stream.dropped["bad_frame"] >= 2, stream.dropped


async def test_trade_with_more_decimals_than_the_tick_is_dropped_and_counted(
    server: LocalServer, ccxt_config, proxy: FaultProxy, trader: ccxt.binance
) -> None:
    async with Feed(server, ccxt_config, url=proxy.url) as f:
        stream = f.md.trades([SPOT])
        await stream.ready()
        frame = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 99, "p": "7000.123", "q": "0.001", "T": 1, "m": False}
        await proxy.inject("/stream", json.dumps(frame))
        await asyncio.to_thread(trader.create_order, SPOT, "market", "buy", 0.001)
        (t,) = await take(stream, 1, kinds=(Trade,))
        assert t.price != "7000.123"
        assert stream.dropped["bad_value"] == 1


async def test_quotes_klines_and_futures_mark_price_with_funding(server: LocalServer, ccxt_config) -> None:
    async with Feed(server, ccxt_config) as f:
        (q,) = await take(f.md.quotes([SPOT]), 1, kinds=(Quote,))
        assert Decimal(q.bid_price) < Decimal(q.ask_price)
        (k,) = await take(f.md.klines([SPOT], "1m"), 1, kinds=(Kline,))
        assert k.interval == "1m" and k.close_ns - k.open_ns == 60 * 10**9 - 1
        assert Decimal(k.low) <= Decimal(k.close) <= Decimal(k.high)
    async with Feed(server, ccxt_config, "usdm") as f:
        (m,) = await take(f.md.mark_prices([PERP]), 1, kinds=(MarkPrice,))
        assert Decimal(m.mark_price) > 0 and m.funding_rate == "0.0001" and m.next_funding_ns > 0
        assert (await f.md.funding(PERP)).funding_rate == "0.0001"
        (t,) = await take(f.md.depth([PERP]), 1, kinds=(DepthDiff,))
        assert t.symbol == PERP
