"""Depth streams on Binance's clock: one aggregated diff per window, nothing for idle windows, contiguous
U/u/pu, partial snapshots at their period, and clients syncing a local book across many busy windows.

Engine bursts run inside the server's loop in one step, so every change of a burst falls in one window.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal

import aiohttp
import pytest
from binance.ws.depthcache import DepthCacheManager, FuturesDepthCacheManager
from conftest import LocalServer, free_port, start_server

from localex import clients
from localex.engine import OrderRequest
from localex.engine.event_types import DepthEvent
from localex.server.app import DEPTH_KEY, server_state
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig

WAIT = 5.0
PERIOD_MS = {
    ("spot", "depth"): 1000,
    ("spot", "depth@100ms"): 100,
    ("usdm", "depth"): 250,
    ("usdm", "depth@500ms"): 500,
    ("usdm", "depth@100ms"): 100,
}
PREFIX = {"spot": "", "usdm": "/fstream"}
REST = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}


@pytest.fixture(scope="module")
def quiet() -> Iterator[LocalServer]:
    """A server without price replay: books change only when a test changes them."""
    limits = RateLimitConfig(
        spot_weight_per_minute=100_000,
        futures_weight_per_minute=100_000,
        spot_orders_per_10s=10_000,
        futures_orders_per_10s=10_000,
        futures_orders_per_minute=100_000,
    )
    yield from start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits))


@pytest.fixture(scope="module")
def trader(quiet: LocalServer) -> str:
    """An account funded on both wallets (the engine is driven directly, in the server's loop)."""
    account_id, _, _ = quiet.new_account(
        spot={"USDT": "10000000", "BTC": "100", "ETH": "1000", "LTC": "10000"}, futures={"USDT": "10000000"}
    )
    return account_id


def rest(url: str) -> dict[str, object]:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def in_server(srv: LocalServer, fn: Callable[[], object]) -> object:
    """Run ``fn`` in the server's loop, in one step (no tick can fall inside it)."""

    async def call() -> object:
        return fn()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), srv.loop))


def last_update_id(srv: LocalServer, market: str, symbol: str) -> int:
    """The book's update id, read in the server's loop."""
    return server_state(srv.app).exchange.depth(market, symbol, 1).last_update_id


def burst(
    srv: LocalServer, account_id: str, market: str, symbol: str, bid_a: str, bid_b: str, ask_c: str, qty: str = "0.010"
) -> tuple[int, int, int]:
    """Many book changes in one engine step: 5 bids at ``bid_a``, 3 at ``bid_b`` then one of those cancelled,
    2 asks at ``ask_c`` both cancelled. Return (update id before, after, engine depth events)."""
    ex = server_state(srv.app).exchange
    events: list[DepthEvent] = []

    def listen(event: object) -> None:
        if isinstance(event, DepthEvent) and event.symbol == symbol and event.market == market:
            events.append(event)

    def order(side: str, price: str) -> int:
        req = OrderRequest(market, symbol, side, "LIMIT", quantity=qty, price=price, time_in_force="GTC")
        return ex.place_order(account_id, req).order.order_id

    before = last_update_id(srv, market, symbol)
    ex.add_listener(listen)
    try:
        for _ in range(5):
            order("BUY", bid_a)
        b_ids = [order("BUY", bid_b) for _ in range(3)]
        ex.cancel_order(account_id, market, symbol, order_id=b_ids[0])
        c_ids = [order("SELL", ask_c) for _ in range(2)]
        for oid in c_ids:
            ex.cancel_order(account_id, market, symbol, order_id=oid)
    finally:
        ex.remove_listener(listen)
    return before, last_update_id(srv, market, symbol), len(events)


async def subscribe(ws: aiohttp.ClientWebSocketResponse, streams: list[str], request_id: int = 1) -> None:
    """SUBSCRIBE and wait for the answer (frames of other streams may come first)."""
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": request_id}))
    while "id" not in (reply := await ws.receive_json(timeout=WAIT)):
        pass
    assert reply == {"result": None, "id": request_id}


def book_side(rows: list[list[str]]) -> dict[Decimal, Decimal]:
    """Levels as {price: qty}; every price must appear once."""
    side = {Decimal(p): Decimal(q) for p, q in rows}
    assert len(side) == len(rows), rows
    return side


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_one_window_one_message_each_level_once(quiet, trader, market) -> None:
    """13 engine diffs in one window -> one push: each level once with its final quantity, U/u spanning the
    window, futures pu = previous u; an idle window pushes nothing; the next window continues the ids."""
    period = PERIOD_MS[(market, "depth")]
    url = quiet.url.replace("http", "ws") + PREFIX[market] + "/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await subscribe(ws, ["ethusdt@depth"])
        before, after, engine_events = await in_server(
            quiet, lambda: burst(quiet, trader, market, "ETHUSDT", "3000.00", "2990.00", "3100.00")
        )
        assert engine_events == 13 and after - before >= engine_events
        msg = await ws.receive_json(timeout=WAIT)
        assert msg["e"] == "depthUpdate" and msg["s"] == "ETHUSDT"
        assert (msg["U"], msg["u"]) == (before + 1, after)
        assert book_side(msg["b"]) == {Decimal("3000"): Decimal("0.05"), Decimal("2990"): Decimal("0.02")}
        assert book_side(msg["a"]) == {Decimal("3100"): Decimal("0")}  # added then removed: final qty 0
        if market == "usdm":
            assert list(msg) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"] and msg["pu"] == before
            assert msg["T"] <= msg["E"]
        else:
            assert list(msg) == ["e", "E", "s", "U", "u", "b", "a"]
        with pytest.raises(asyncio.TimeoutError):  # idle windows: nothing
            await ws.receive_json(timeout=3 * period / 1000)
        before2, after2, _ = await in_server(
            quiet, lambda: burst(quiet, trader, market, "ETHUSDT", "3000.00", "2980.00", "3200.00")
        )
        nxt = await ws.receive_json(timeout=WAIT)
        assert before2 == after and (nxt["U"], nxt["u"]) == (after + 1, after2)
        assert book_side(nxt["b"]) == {Decimal("3000"): Decimal("0.1"), Decimal("2980"): Decimal("0.02")}
        if market == "usdm":
            assert nxt["pu"] == msg["u"]


async def test_pushes_follow_the_period_not_the_events(server) -> None:
    """With the replay requoting the book (tens of engine diffs every 100 ms) each diff stream pushes about
    once per period, never two pushes closer than its period allows, and every push continues the ids."""
    base = server.url.replace("http", "ws")

    async def collect(market: str, channels: list[str], seconds: float) -> dict[str, list[dict[str, object]]]:
        names = [f"btcusdt@{c}" for c in channels]
        got: dict[str, list[dict[str, object]]] = {c: [] for c in channels}
        url = base + PREFIX[market] + "/stream?streams=" + "/".join(names)
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            end = asyncio.get_running_loop().time() + seconds
            while (left := end - asyncio.get_running_loop().time()) > 0:
                try:
                    msg = await ws.receive_json(timeout=left)
                except TimeoutError:
                    break
                got[msg["stream"].partition("@")[2]].append(msg["data"])
        return got

    spot, futures = await asyncio.gather(
        collect("spot", ["depth", "depth@100ms"], 3.5), collect("usdm", ["depth", "depth@500ms", "depth@100ms"], 3.5)
    )
    for market, streams in (("spot", spot), ("usdm", futures)):
        for channel, msgs in streams.items():
            period = PERIOD_MS[(market, channel)]
            assert len(msgs) >= 2, (market, channel)
            assert len(msgs) <= 3500 // period + 2, (market, channel, len(msgs))  # not one per engine event
            times = [m["E"] for m in msgs]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert min(gaps) >= period - 60, (market, channel, gaps)
            for prev, msg in zip(msgs, msgs[1:], strict=False):
                assert msg["U"] == prev["u"] + 1, (market, channel)  # gap-free per stream
                if market == "usdm":
                    assert msg["pu"] == prev["u"]
                book_side(msg["b"])
                book_side(msg["a"])


async def test_partial_depth_snapshots_on_their_period(quiet, trader) -> None:
    """Spot ``@depth<N>`` pushes the top N every period (1000 ms / 100 ms), busy or not; futures partial
    depth pushes a ``depthUpdate`` on its period only when the book changed, chaining U/u/pu."""
    await in_server(quiet, lambda: burst(quiet, trader, "spot", "LTCUSDT", "80.00", "79.00", "90.00", "0.100"))
    base = quiet.url.replace("http", "ws")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        url = base + "/stream?streams=ltcusdt@depth5/ltcusdt@depth5@100ms"
        arrivals: dict[str, list[float]] = {"ltcusdt@depth5": [], "ltcusdt@depth5@100ms": []}
        async with session.ws_connect(url) as ws:
            end = loop.time() + 2.6
            while loop.time() < end:
                msg = await ws.receive_json(timeout=WAIT)
                arrivals[msg["stream"]].append(loop.time())
                data = msg["data"]
                assert list(data) == ["lastUpdateId", "bids", "asks"]
        snap = rest(quiet.url + "/api/v3/depth?symbol=LTCUSDT&limit=5")
        assert data["lastUpdateId"] == snap["lastUpdateId"] and data["bids"] == snap["bids"]
        assert data["asks"] == snap["asks"]
        assert 3 <= len(arrivals["ltcusdt@depth5"]) <= 4, arrivals  # at once, then every second
        assert 18 <= len(arrivals["ltcusdt@depth5@100ms"]) <= 28, len(arrivals["ltcusdt@depth5@100ms"])

        async with session.ws_connect(base + "/fstream/ws/ethusdt@depth10@500ms") as ws:
            first = await ws.receive_json(timeout=WAIT)
            assert list(first) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"] and first["e"] == "depthUpdate"
            assert first["u"] == await in_server(quiet, lambda: last_update_id(quiet, "usdm", "ETHUSDT"))
            with pytest.raises(asyncio.TimeoutError):  # nothing changed: nothing pushed
                await ws.receive_json(timeout=1.2)
            _, after, _ = await in_server(
                quiet, lambda: burst(quiet, trader, "usdm", "ETHUSDT", "3001.00", "2970.00", "3300.00")
            )
            nxt = await ws.receive_json(timeout=WAIT)
        snap = rest(quiet.url + "/fapi/v1/depth?symbol=ETHUSDT&limit=10")
        assert (nxt["U"], nxt["u"], nxt["pu"]) == (first["u"] + 1, after, first["u"])
        assert nxt["b"] == snap["bids"] and nxt["a"] == snap["asks"]


async def test_no_engine_depth_events_without_a_diff_subscriber(quiet) -> None:
    """Partial depth reads the book when due, so only diff streams make the engine build depth events; the
    publisher keeps a window per subscribed diff stream and drops it on unsubscribe."""
    em = server_state(quiet.app).exchange.em
    publisher = quiet.app[DEPTH_KEY]
    async with aiohttp.ClientSession() as session, session.ws_connect(quiet.url.replace("http", "ws") + "/ws") as ws:
        await subscribe(ws, ["btcusdt@depth20@100ms"])
        assert "depth" not in em.interest
        await subscribe(ws, ["btcusdt@depth@100ms"], 2)
        assert "depth" in em.interest
        await in_server(quiet, publisher.sync)
        assert list(publisher.windows) == [("spot", "btcusdt@depth@100ms")]
        await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 3}))
        while "id" not in await ws.receive_json(timeout=WAIT):
            pass
        assert "depth" not in em.interest
        await in_server(quiet, publisher.sync)
        assert publisher.windows == {}


def churn(srv: LocalServer, account_id: str, market: str, seed: int) -> Callable[[], None]:
    """One step of random book activity on BTCUSDT: 20 orders placed or cancelled around 30000."""
    ex = server_state(srv.app).exchange
    rng = random.Random(seed)
    open_ids: list[int] = []

    def step() -> None:
        for _ in range(20):
            if open_ids and rng.random() < min(0.9, len(open_ids) / 60):  # about 30 orders stay open
                ex.cancel_order(account_id, market, "BTCUSDT", order_id=open_ids.pop(rng.randrange(len(open_ids))))
                continue
            side = rng.choice(("BUY", "SELL"))
            ticks = rng.randrange(1, 40) * (-1 if side == "BUY" else 1)
            price = f"{30000 + ticks:.2f}"
            req = OrderRequest(
                market,
                "BTCUSDT",
                side,
                "LIMIT",
                quantity=f"0.00{rng.randrange(4, 10)}",
                price=price,
                time_in_force="GTC",
            )
            open_ids.append(ex.place_order(account_id, req).order.order_id)

    return step


async def run_churn(srv: LocalServer, step: Callable[[], None], seconds: float) -> None:
    """Steps every 30 ms for ``seconds``: many engine diffs in every depth window."""
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        await in_server(srv, step)
        await asyncio.sleep(0.03)


@pytest.mark.parametrize(("market", "default_type"), [("spot", "spot"), ("usdm", "swap")])
async def test_ccxt_pro_book_stays_in_sync_across_busy_windows(quiet, trader, market, default_type) -> None:
    """ccxt.pro's watch_order_book (REST snapshot + diffs, raising on a sequence gap) through several windows
    of ~100 engine diffs each ends equal to the REST book."""
    _, key, secret = quiet.new_account()
    pro = clients.ccxt_pro_client(quiet.url, key, secret, default_type=default_type)
    symbol = "BTC/USDT" if market == "spot" else "BTC/USDT:USDT"
    step = churn(quiet, trader, market, seed=7)
    try:
        await pro.load_markets()
        await in_server(quiet, step)
        watch = asyncio.ensure_future(pro.watch_order_book(symbol))
        churning = asyncio.ensure_future(run_churn(quiet, step, 3.0))
        updates = 0
        while not churning.done():
            done, _ = await asyncio.wait({watch, churning}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
            assert done, "no book update for 5 s"
            if watch in done:
                watch.result()  # raises if ccxt found a sequence gap
                updates += 1
                watch = asyncio.ensure_future(pro.watch_order_book(symbol))
        await churning
        watch.cancel()
        await asyncio.sleep(2 * PERIOD_MS[(market, "depth")] / 1000 + 0.3)  # the last window is pushed
        book = pro.orderbooks[symbol]
        snap = rest(f"{quiet.url}{REST[market]}?symbol=BTCUSDT&limit=1000")
        assert book["nonce"] == snap["lastUpdateId"]
        assert [[float(p), float(q)] for p, q in snap["bids"]] == [list(r) for r in book["bids"]]
        assert [[float(p), float(q)] for p, q in snap["asks"]] == [list(r) for r in book["asks"]]
        assert updates >= (3 if market == "spot" else 8)  # several windows were applied
    finally:
        await pro.close()


async def test_python_binance_depth_caches_follow_the_book(quiet, trader) -> None:
    """python-binance's DepthCacheManager (Spot diff stream, re-syncs from REST on any U gap) never needs a
    re-sync across busy windows and ends equal to the REST book; FuturesDepthCacheManager (futures partial
    ``@depth10``) ends equal to the REST top 10."""
    _, key, secret = quiet.new_account()
    client = await clients.binance_async(quiet.url, key, secret)
    inits = 0

    class CountingCache(DepthCacheManager):
        async def _init_cache(self) -> None:
            nonlocal inits
            inits += 1
            await super()._init_cache()

        def _get_socket(self):
            sock = super()._get_socket()
            sock.TIMEOUT = 0.2
            return sock

    class FastFuturesCache(FuturesDepthCacheManager):
        def _get_socket(self):
            sock = super()._get_socket()
            sock.TIMEOUT = 0.2
            return sock

    try:
        bsm = clients.binance_socket_manager(client, quiet.url)
        spot_step, fut_step = churn(quiet, trader, "spot", seed=11), churn(quiet, trader, "usdm", seed=12)

        def both() -> None:
            spot_step()
            fut_step()

        spot_dcm = CountingCache(client, "BTCUSDT", bm=bsm, limit=1000, ws_interval=100)
        fut_dcm = FastFuturesCache(client, "BTCUSDT", bm=bsm)
        spot_dcm.TIMEOUT = fut_dcm.TIMEOUT = WAIT
        async with spot_dcm as spot_cache, fut_dcm as fut_cache:
            await asyncio.sleep(0.3)  # both sockets subscribed before the book moves
            await run_churn(quiet, both, 2.5)  # the sockets queue the pushes (python-binance keeps up to 100)
            await asyncio.sleep(0.6)  # the last windows are pushed
            spot_updates = fut_updates = 0
            while spot_cache._socket._queue.qsize():
                await spot_cache.recv()
                spot_updates += 1
            while fut_cache._socket._queue.qsize():
                await fut_cache.recv()
                fut_updates += 1
            spot_book = spot_cache.get_depth_cache()
            fut_book = fut_cache.get_depth_cache()
        snap = rest(quiet.url + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert inits == 1 and spot_updates >= 10
        assert spot_book.get_bids() == [[float(p), float(q)] for p, q in snap["bids"]]
        assert spot_book.get_asks() == [[float(p), float(q)] for p, q in snap["asks"]]
        fsnap = rest(quiet.url + "/fapi/v1/depth?symbol=BTCUSDT&limit=10")
        assert fut_updates >= 5 and fut_book._bids == fsnap["bids"] and fut_book._asks == fsnap["asks"]
    finally:
        await client.close_connection()
