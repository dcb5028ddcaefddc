"""The ccxt connector's instruments and market data against a real local exchange (as ccxt's ``binance``).

Books go through the book kernel as the daemon feeds it; a depth frame lost on the wire (the fault proxy
drops it) must surface as a resync, and garbage frames must be counted and dropped while the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import ccxt
import pytest

from kernels import book as kb
from localex import clients
from localex.server.state import ServerConfig
from oms.model import BookSnapshot, DepthDiff, InstrumentKind, Market
from oms.model.units import canonical
from oms.venues.ccxt.instruments import CcxtInstruments, UnknownSymbol
from oms.venues.ccxt.market_data import CcxtMarketData
from oms.venues.ccxt.session import Session
from oms.venues.ccxt.streams import StreamStats
from tests.localex.conftest import LocalServer, free_port, start_server
from tests.venues.ccxt.faultproxy import FaultProxy
from tests.venues.ccxt.kernelbook import KernelBook

WAIT = 10.0


class Feed:
    """A ccxt.pro session with the connector's instruments and market data on one URL."""

    def __init__(self, url: str, default_type: str = "spot") -> None:
        self.session = Session(clients.ccxt_pro_client(url, default_type=default_type), "binance/md")
        self.stats = StreamStats()
        self.instruments = CcxtInstruments(self.session.exchange, "binance")
        self.md = CcxtMarketData(self.session.exchange, "binance", self.instruments, self.stats)

    async def __aenter__(self) -> Feed:
        await self.instruments.load()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()


async def take(it: AsyncIterator, n: int, timeout: float = WAIT) -> list:
    out = []
    while len(out) < n:
        out.append(await asyncio.wait_for(it.__anext__(), timeout))
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


async def test_instruments_match_exchange_info_and_map_symbols_both_ways(server: LocalServer) -> None:
    async with Feed(server.url) as f:
        spot = f.instruments.get("BTC/USDT")
        perp = f.instruments.get("BTC/USDT:USDT")
        info = {s["symbol"]: s for s in rest(server, "/api/v3/exchangeInfo")["symbols"]}["BTCUSDT"]
        filters = {x["filterType"]: x for x in info["filters"]}
        assert spot.kind is InstrumentKind.SPOT and perp.kind is InstrumentKind.PERP
        assert spot.tick_size == Decimal(filters["PRICE_FILTER"]["tickSize"])
        assert spot.step_size == Decimal(filters["LOT_SIZE"]["stepSize"])
        assert spot.spec.min_notional == canonical(filters["NOTIONAL"]["minNotional"])
        assert perp.spec.settle_asset == "USDT" and perp.spec.venue_symbol == "BTCUSDT"
        assert f.instruments.to_venue("BTC/USDT:USDT") == "BTCUSDT"
        assert f.instruments.from_venue("BTCUSDT", Market.SPOT) == "BTC/USDT"
        assert f.instruments.from_venue("BTCUSDT", "usdm") == "BTC/USDT:USDT"
        with pytest.raises(UnknownSymbol, match="no instrument 'DOGE/USDT'"):
            f.instruments.get("DOGE/USDT")
        with pytest.raises(UnknownSymbol, match="no usdm market 'NOPEUSDT'"):
            f.instruments.from_venue("NOPEUSDT", Market.USDM)


async def test_trades_stream_carries_our_market_order(server: LocalServer, trader: ccxt.binance) -> None:
    async with Feed(server.url) as f:
        it = f.md.trades("BTC/USDT")
        first = asyncio.ensure_future(it.__anext__())
        await _subscribed(f.session, "trade")
        await asyncio.to_thread(trader.create_order, "BTC/USDT", "market", "buy", 0.002)
        t = await asyncio.wait_for(first, WAIT)
        assert t.symbol == "BTC/USDT" and t.exchange == "binance" and t.taker_side.value == "buy"
        inst = f.instruments.get("BTC/USDT")
        inst.price(t.price) and inst.qty(t.qty)  # exact multiples of tick and lot
        assert t.event_ns > 1_600_000_000 * 10**9


async def _subscribed(session: Session, stream: str, timeout: float = WAIT) -> None:
    """Until a ccxt.pro connection has a confirmed subscription whose name contains ``stream``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for client in (session.exchange.clients or {}).values():
            if client.connected.done() and any(stream in str(k) for k in client.subscriptions):
                await asyncio.sleep(0.05)  # the SUBSCRIBE is sent; give the server a moment to register it
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {stream} subscription within {timeout}s")


async def test_book_through_the_kernel_equals_the_exchange_book_after_busy_windows(quiet_server: LocalServer) -> None:
    """Orders at many levels (placed, partly cancelled, partly crossed) change the book across many diff
    windows; the kernel fed by the connector then equals the exchange's REST book exactly."""
    _, key, secret = quiet_server.new_account(spot={"USDT": "1000000", "BTC": "50"})
    ex = clients.ccxt_async_client(quiet_server.url, key, secret)
    try:
        await ex.load_markets()
        async with Feed(quiet_server.url) as f:
            inst = f.instruments.get("BTC/USDT")
            kbook = KernelBook(inst)
            stream = f.md.book("BTC/USDT", depth=20)
            # seed both sides so a snapshot exists
            await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000.0)
            await ex.create_order("BTC/USDT", "limit", "sell", 0.01, 31000.0)
            kbook.apply(await asyncio.wait_for(stream.__anext__(), WAIT))
            ids = []
            for i in range(12):
                o = await ex.create_order("BTC/USDT", "limit", "buy", 0.01 + i * 0.001, 30000.0 + 10 * i)
                ids.append(o["id"])
                await ex.create_order("BTC/USDT", "limit", "sell", 0.01 + i * 0.001, 31000.0 - 10 * i)
            for oid in ids[::3]:
                await ex.cancel_order(oid, "BTC/USDT")
            await ex.create_order("BTC/USDT", "market", "sell", 0.02)  # crosses the best bids
            expected = await ex.fetch_order_book("BTC/USDT", 20)
            target = expected["nonce"]
            while kbook.last_update_id < target:
                kbook.apply(await asyncio.wait_for(stream.__anext__(), WAIT))
            assert kbook.last_update_id == target
            assert kbook.results and all(r == kb.APPLIED for r in kbook.results)
            bids, asks = kbook.top(20)
            assert bids == [(canonical(repr(p)), canonical(repr(q))) for p, q in expected["bids"]]
            assert asks == [(canonical(repr(p)), canonical(repr(q))) for p, q in expected["asks"]]
            assert f.stats.gaps["book BTC/USDT"] == 0
    finally:
        await ex.close()


async def test_replayed_book_diffs_all_apply_in_sequence(server: LocalServer) -> None:
    """Against the replay's moving liquidity, every diff the connector emits applies (no gap, no stale)."""
    async with Feed(server.url) as f:
        inst = f.instruments.get("BTC/USDT")
        kbook = KernelBook(inst)
        msgs = await take(f.md.book("BTC/USDT", depth=10), 12)
        assert isinstance(msgs[0], BookSnapshot) and all(isinstance(m, DepthDiff) for m in msgs[1:])
        for m in msgs:
            kbook.apply(m)
        assert kbook.results == [kb.APPLIED] * 11
        bids, asks = kbook.top(10)
        last = msgs[-1]
        assert bids[0][0] < asks[0][0]
        assert kbook.last_update_id == last.last_update_id


async def test_lost_depth_frame_is_a_gap_that_resyncs_from_a_new_snapshot(
    server: LocalServer, proxy: FaultProxy
) -> None:
    async with Feed(proxy.url) as f:
        inst = f.instruments.get("BTC/USDT")
        kbook = KernelBook(inst)
        stream = f.md.book("BTC/USDT", depth=10)
        for m in await take(stream, 3):
            kbook.apply(m)
        proxy.drop_frames(lambda path, frame: '"depthUpdate"' in frame, 1)
        msgs = []
        while not any(isinstance(m, BookSnapshot) for m in msgs):
            msgs.append(await asyncio.wait_for(stream.__anext__(), WAIT))
        assert proxy.dropped_frames == 1
        assert f.stats.gaps["book BTC/USDT"] == 1
        for m in msgs:
            kbook.apply(m)
        after = await take(stream, 3)
        for m in after:
            assert kbook.apply(m) == kb.APPLIED
        assert kbook.snapshots == 2


async def test_garbage_and_truncated_frames_are_counted_and_the_stream_goes_on(
    server: LocalServer, proxy: FaultProxy, trader: ccxt.binance
) -> None:
    async with Feed(proxy.url) as f:
        it = f.md.trades("BTC/USDT")
        first = asyncio.ensure_future(it.__anext__())
        await _subscribed(f.session, "trade")
        await asyncio.to_thread(trader.create_order, "BTC/USDT", "market", "buy", 0.001)
        await asyncio.wait_for(first, WAIT)
        reached = await proxy.inject("/stream", '{"e":"trade","E":1,"s":"BTCUSDT","t":')
        await proxy.inject("/stream", "\x00garbage\xff")
        await proxy.inject("/stream", '{"stream": 5}')
        assert reached == 1
        nxt = asyncio.ensure_future(it.__anext__())
        await asyncio.to_thread(trader.create_order, "BTC/USDT", "market", "sell", 0.001)
        t = await asyncio.wait_for(nxt, WAIT)
        assert t.symbol == "BTC/USDT"
        assert f.session.guard.total >= 2, f.session.guard.dropped


async def test_trade_with_more_decimals_than_the_tick_is_dropped_and_counted(
    server: LocalServer, proxy: FaultProxy, trader: ccxt.binance
) -> None:
    async with Feed(proxy.url) as f:
        it = f.md.trades("BTC/USDT")
        first = asyncio.ensure_future(it.__anext__())
        await _subscribed(f.session, "trade")
        frame = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 99, "p": "7000.123", "q": "0.001", "T": 1, "m": False}
        await proxy.inject("/stream", json.dumps(frame))
        await asyncio.to_thread(trader.create_order, "BTC/USDT", "market", "buy", 0.001)
        t = await asyncio.wait_for(first, WAIT)
        assert t.price != "7000.123"
        assert f.stats.dropped["trades BTC/USDT: BadValue"] == 1


async def test_quotes_klines_and_futures_mark_price_with_funding(server: LocalServer, trader: ccxt.binance) -> None:
    async with Feed(server.url) as f:
        q = (await take(f.md.quotes("BTC/USDT"), 1))[0]
        assert q.bid_price < q.ask_price or float(q.bid_price) < float(q.ask_price)
        k = (await take(f.md.klines("BTC/USDT", "1m"), 1))[0]
        assert k.interval == "1m" and k.close_ns - k.open_ns == 60 * 10**9 - 1
        assert float(k.low) <= float(k.close) <= float(k.high)
    async with Feed(server.url, default_type="swap") as f:
        m = (await take(f.md.mark_prices("BTC/USDT:USDT"), 1))[0]
        assert float(m.mark_price) > 0 and m.funding_rate == "0.0001" and m.next_funding_ns > 0
        rest_m = await f.md.funding("BTC/USDT:USDT")
        assert rest_m.funding_rate == "0.0001"
