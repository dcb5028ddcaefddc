"""The contract every venue connector passes: an abstract pytest class run against a real local exchange.

A connector's test module subclasses ``VenueContract`` and provides exactly this:

* a fixture ``connector`` returning a new instance of its ``oms.venues.Connector`` subclass (function scope
  is fine; it is asked once per test);
* optionally the class attributes ``EXCHANGE`` (the exchange name its contexts carry, default ``binance``),
  ``MARKETS`` (default Spot and USD-M), ``SYMBOLS`` (unified symbol per market), ``OPTIONS`` (the
  ``VenueContext.options`` its clients need, e.g. ``{"ccxt_id": "binance"}``) and ``WAIT`` (seconds any one
  condition may take, default 10);
* optionally its own ``localex`` fixture (class scope) to run the exchange differently; it must yield a
  ``ContractVenue`` (``ContractVenue.start()`` builds the default one).

    class TestBinance(VenueContract):
        OPTIONS = {"ws_api_timeout_s": 2.0}

        @pytest.fixture
        def connector(self):
            return BinanceConnector()

Everything else comes from here and uses only the interface (``oms.venues.interface``): the base starts one
quiet local exchange per class (no price replay: books and trades change only when a test changes them),
seeds a book around 30000 on BTCUSDT for both markets with a maker account and makes one trade so that
last and mark prices exist, creates a fresh funded account per test, and builds the facets with real
``RateLimits`` and ``ServerClock``. The exchange's own view (the admin API, signed REST called directly) is
the truth the connector's answers are compared with.

What is checked, per market in ``MARKETS`` (USD-M-only tests run on USD-M only):
instruments and the symbol map both ways; trades from the stream equal the trades made; an L2 book kept by
``kernels.book`` from ``book_snapshot`` + ``depth`` diffs stays in sync (no sequence gap) across busy windows
and ends equal to the exchange's book; place/query/open-orders/cancel for every order type the connector
declares (``Capabilities.order_types``), market orders filling; amend (or ``Unsupported`` where the
capability is off); batch with an order the venue refuses in it; cancel-all; typed rejections (with the
venue's code) naming order and account;
fills from the user stream equal fills from REST; balances and positions equal the exchange's after a
sequence of fills; the account's commission rates equal the exchange's; a BTC-quoted (ETHBTC) order
placed, filled and read back with the BTC balance exact; leverage, margin type, hedge mode with
long and short positions; a sub-account transfer
(or ``Unsupported`` where ``Capabilities.sub_account_transfer`` is off); key rotation without losing the
user stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import aiohttp
import msgspec
import numpy as np
import pytest

from kernels import book as kbook
from localex.engine import OrderRequest
from localex.server.app import server_state
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.keys import Credentials
from oms.model import (
    AccountId,
    AmendOrder,
    BookSnapshot,
    CancelAll,
    CancelOrder,
    DepthDiff,
    Fill,
    Instrument,
    MarginType,
    Market,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionMode,
    PositionSide,
    Side,
    TimeInForce,
    Trade,
    Transfer,
    TransferStatus,
)
from oms.model.units import canonical
from oms.venues import (
    Connector,
    Endpoints,
    OrderNotFound,
    Rejected,
    StreamStatus,
    Unsupported,
    VenueContext,
    VenueError,
)
from oms.venues.clock import ServerClock
from oms.venues.factory import LOCAL_PATHS
from oms.venues.ratelimit import AccountLimits, RateLimits
from tests.localex.conftest import LocalServer, free_port, start_server

VENUE_SYMBOL = "BTCUSDT"
MID = Decimal(30000)
QTY = {Market.SPOT: "0.001", Market.USDM: "0.005"}  # above each market's minimum notional at 30000
# One lot step: valid precision, but far below the minimum notional at 29000 (Spot 5, USD-M 100 USDT), so the
# venue itself refuses it (Binance -1013 / -4164); a client library's own precision checks let it pass.
TINY = {Market.SPOT: "0.00001", Market.USDM: "0.001"}
REST_PREFIX = {Market.SPOT: "/api/v3", Market.USDM: "/fapi/v1"}
WALLET = {Market.SPOT: "SPOT", Market.USDM: "FUTURES"}


_INTENTS = itertools.count()


def futures_only(fn):
    """Run this contract test on USD-M only."""
    fn.futures_only = True
    return fn


# --------------------------------------------------------------------------------------------- the venue
@dataclass
class ContractVenue:
    """The local exchange of one contract class, with the helpers that drive it and read its truth."""

    server: LocalServer
    maker: str = ""  # the account whose orders make the book
    driver: str = ""  # the account whose market orders make public trades
    http: aiohttp.ClientSession | None = field(default=None, repr=False)

    @classmethod
    def start(cls):
        """Start a quiet local exchange with generous limits and a seeded book (a generator: yield from it)."""
        limits = RateLimitConfig(
            spot_weight_per_minute=1_000_000,
            futures_weight_per_minute=1_000_000,
            spot_orders_per_10s=100_000,
            futures_orders_per_10s=100_000,
            futures_orders_per_minute=1_000_000,
        )
        for server in start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits)):
            venue = cls(server)
            funds = {"spot": {"USDT": "100000000", "BTC": "10000"}, "futures": {"USDT": "100000000"}}
            venue.maker, _, _ = server.new_account(**funds)
            venue.driver, _, _ = server.new_account(**funds)
            venue.run_sync(venue.seed)
            yield venue

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def exchange(self):
        return server_state(self.server.app).exchange

    def run_sync(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the server's loop, in one step, from a thread that is not that loop."""

        async def call():
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.server.loop).result(10)

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``run_sync`` from a test's own loop."""

        async def call():
            return fn()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self.server.loop))

    def order(self, market: Market, side: str, type_: str, qty: str, price: str | None = None, account: str = ""):
        tif = "GTC" if type_ == "LIMIT" else None
        req = OrderRequest(market.value, VENUE_SYMBOL, side, type_, quantity=qty, price=price, time_in_force=tif)
        return self.exchange.place_order(account or self.maker, req)

    def seed(self) -> None:
        """Ten levels each side around 30000, one trade at 30000 (last price), the futures mark at 30000."""
        self.exchange.set_mark_price(VENUE_SYMBOL, 300_000)  # in ticks of 0.10: 30000.0
        for market in (Market.SPOT, Market.USDM):
            for k in range(10):
                self.order(market, "SELL", "LIMIT", "2", f"{MID + k}")
                self.order(market, "BUY", "LIMIT", "2", f"{MID - 1 - k}")
            self.trade(market, "BUY", QTY[market])  # the driver's, not the maker's own (self-trade prevention)
            self.order(market, "SELL", "LIMIT", QTY[market], f"{MID}")  # top the best ask up again

    def trade(self, market: Market, side: str, qty: str) -> None:
        """A public trade: the driver account's market order against the maker's book."""
        self.order(market, side, "MARKET", qty, account=self.driver)

    def new_trader(self, market: Market, exchange: str, parent: str | None = None) -> Credentials:
        """A fresh account funded on both wallets, with one key (all permissions)."""
        account_id, key, secret = self.server.new_account(
            spot={"USDT": "1000000", "BTC": "10"}, futures={"USDT": "1000000"}, parent=parent
        )
        perms = ("spot", "futures", "transfer") + (("withdraw",) if parent is None else ())
        return Credentials(exchange, market.value, account_id, key, secret, permissions=perms)

    # --- the exchange's truth ------------------------------------------------------------------------------
    def admin_balances(self, account_id: str, market: Market) -> dict[str, tuple[Decimal, Decimal]]:
        rows = self.server.admin("GET", f"/admin/v1/accounts/{account_id}/balances?wallet={WALLET[market]}")
        return {r["asset"]: (Decimal(r["free"]), Decimal(r["locked"])) for r in rows}  # type: ignore[union-attr]

    async def signed(self, method: str, path: str, creds: Credentials, **params: Any) -> Any:
        """A signed REST call straight to the exchange (Binance's HMAC rule), not through the connector."""
        assert self.http is not None
        params |= {"timestamp": int(time.time() * 1000), "recvWindow": 10000}
        query = urllib.parse.urlencode(params)
        sig = hmac.new(creds.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        headers = {"X-MBX-APIKEY": creds.api_key}
        async with self.http.request(method, f"{self.url}{path}?{query}&signature={sig}", headers=headers) as r:
            body = await r.json()
            assert r.status == 200, body
            return body


# --------------------------------------------------------------------------------------------- helpers
@dataclass
class Facets:
    """The four facets of one account and market, as a test uses them."""

    ctx: VenueContext
    instruments: Any
    market_data: Any
    execution: Any
    user_data: Any
    symbol: str

    @property
    def account(self) -> str:
        return str(self.ctx.account)

    def instrument(self) -> Instrument:
        return self.instruments.instrument(self.symbol)


async def next_matching(stream, pred: Callable[[Any], bool], wait: float) -> Any:
    """The next event of ``stream`` for which ``pred`` holds (skipping StreamStatus and others)."""

    async def scan():
        async for ev in stream:
            if not isinstance(ev, StreamStatus) and pred(ev):
                return ev
        raise AssertionError("stream ended")

    return await asyncio.wait_for(scan(), wait)


async def eventually(check: Callable[[], Awaitable[bool]], wait: float, what: str) -> None:
    """Poll ``check`` (a real condition on the exchange) until it holds."""
    deadline = asyncio.get_running_loop().time() + wait
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class BookMirror:
    """One L2 book in ``kernels.book``, fed from model events in the instrument's units."""

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.lv, self.meta = kbook.new_books(1, 4096)
        self.gaps = 0
        self.applied = 0

    def _sides(self, rows, side):
        return [side] * len(rows), [self.inst.price(p) for p, _ in rows], [self.inst.qty(q) for _, q in rows]

    def snapshot(self, snap: BookSnapshot) -> None:
        _, bp, bq = self._sides(snap.bids, kbook.BID)
        _, ap, aq = self._sides(snap.asks, kbook.ASK)
        arr = [np.array(x, dtype=np.int64) for x in (bp, bq, ap, aq)]
        kbook.apply_snapshot(self.lv, self.meta, 0, *arr, snap.last_update_id)

    def diff(self, d: DepthDiff) -> int:
        bs, bp, bq = self._sides(d.bids, kbook.BID)
        as_, ap, aq = self._sides(d.asks, kbook.ASK)
        sides, prices, qtys = (np.array(a + b, dtype=np.int64) for a, b in ((bs, as_), (bp, ap), (bq, aq)))
        prev = -1 if d.prev_update_id is None else d.prev_update_id
        r = kbook.apply_diff(self.lv, self.meta, 0, d.first_update_id, d.last_update_id, prev, sides, prices, qtys)
        self.gaps += r == kbook.GAP
        self.applied += r == kbook.APPLIED
        return int(r)

    @property
    def last_id(self) -> int:
        return int(self.meta[0, kbook.M_LAST_ID])

    def side(self, side: int) -> list[tuple[str, str]]:
        px, qt = kbook.levels(self.lv, self.meta, 0, side)
        return [(self.inst.price_str(int(p)), self.inst.qty_str(int(q))) for p, q in zip(px, qt, strict=True)]


def fill_facts(f: Fill) -> tuple:
    """What a fill says, whichever way it was reported (decimals by value; ``recv_ns`` is ours, not the venue's)."""

    def dec(x):
        return None if x is None else Decimal(x)

    ids = (f.account, f.symbol, f.client_order_id, f.venue_order_id, f.trade_id, f.side, f.position_side)
    money = (dec(f.price), dec(f.qty), dec(f.commission), f.commission_asset, f.liquidity, dec(f.realized_pnl))
    return (*ids, *money, f.event_ns)


def canon(rows) -> list[tuple[str, str]]:
    """Book levels as canonical decimal strings (``"30000.00000000"`` -> ``"30000"``), empty levels dropped."""
    return [(canonical(p), canonical(q)) for p, q in rows if Decimal(q) != 0]


# --------------------------------------------------------------------------------------------- the contract
class VenueContract:
    EXCHANGE: ClassVar[str] = "binance"
    MARKETS: ClassVar[tuple[Market, ...]] = (Market.SPOT, Market.USDM)
    SYMBOLS: ClassVar[dict[Market, str]] = {Market.SPOT: "BTC/USDT", Market.USDM: "BTC/USDT:USDT"}
    OPTIONS: ClassVar[dict[str, Any]] = {}
    WAIT: ClassVar[float] = 10.0

    def pytest_generate_tests(self, metafunc):
        if "market" in metafunc.fixturenames:
            only = getattr(metafunc.function, "futures_only", False)
            markets = [m for m in self.MARKETS if m is Market.USDM or not only]
            metafunc.parametrize("market", markets, ids=[m.value for m in markets], scope="class")

    # --- fixtures a subclass provides or may override ------------------------------------------------------
    @pytest.fixture
    def connector(self) -> Connector:
        raise NotImplementedError(f"{type(self).__name__} must provide the fixture `connector`")

    @pytest.fixture(scope="class")
    @classmethod
    def localex(cls):
        yield from ContractVenue.start()

    # --- fixtures of the base ------------------------------------------------------------------------------
    @pytest.fixture
    async def venue(self, localex: ContractVenue):
        async with aiohttp.ClientSession() as http:
            localex.http = http
            yield localex
            localex.http = None

    @pytest.fixture
    async def build(self, connector: Connector, venue: ContractVenue):
        """``await build(market, creds, refs=None)`` -> Facets; everything built is closed after the test."""
        limits = RateLimits()
        clock = {m: ServerClock(name=f"{self.EXCHANGE}/{m.value}") for m in Market}
        built: list[Facets] = []

        async def make(market: Market, creds: Credentials | None, refs: dict[str, str] | None = None) -> Facets:
            ws = "ws://" + venue.url.split("://", 1)[1]
            endpoints = Endpoints(venue.url, ws + LOCAL_PATHS[market]["ws"], ws + LOCAL_PATHS[market]["ws_api"])
            name = creds.account if creds else "market_data"
            account = AccountId(self.EXCHANGE, name)
            meta = connector.metadata(self.EXCHANGE, market)
            ctx = VenueContext(
                account=account,
                market=market,
                endpoints=endpoints,
                limiter=limits.account(str(account), market.value, AccountLimits(10**6, 10**5, 10**7, 5), meta),
                clock=clock[market],
                credentials=creds,
                account_refs=refs or {},
                options=dict(self.OPTIONS),
            )
            instruments = connector.instrument_provider(ctx)
            await instruments.load()
            execution = connector.execution_client(ctx, instruments)
            if clock[market].fetch is None:
                clock[market].bind(execution.server_time_ns)
            await clock[market].ensure_fresh()
            facets = Facets(
                ctx,
                instruments,
                connector.market_data_client(ctx, instruments),
                execution,
                connector.user_data_stream(ctx, instruments, execution),
                self.SYMBOLS[market],
            )
            built.append(facets)
            return facets

        yield make
        for f in built:
            for closer in (f.user_data.close, f.execution.close, f.market_data.close):
                await closer()

    @pytest.fixture
    async def trader(self, build, venue: ContractVenue, market: Market) -> Facets:
        return await build(market, venue.new_trader(market, self.EXCHANGE))

    # --- helpers -------------------------------------------------------------------------------------------
    def place_cmd(self, f: Facets, order_type: OrderType, side: Side = Side.BUY, **kw) -> PlaceOrder:
        """A command of ``order_type`` that rests without triggering (or, for MARKET, fills)."""
        far_below, far_above = str(MID - 1000), str(MID + 1000)
        p: dict[str, Any] = {}
        if order_type in (OrderType.LIMIT, OrderType.LIMIT_MAKER):
            p = {"price": far_below if side is Side.BUY else far_above}
        elif order_type is OrderType.STOP_MARKET:
            p = {"stop_price": far_above if side is Side.BUY else far_below}
        elif order_type is OrderType.STOP_LIMIT:
            stop = far_above if side is Side.BUY else far_below
            p = {"stop_price": stop, "price": stop}
        elif order_type is OrderType.TAKE_PROFIT_MARKET:
            p = {"stop_price": far_below if side is Side.BUY else far_above}
        elif order_type is OrderType.TAKE_PROFIT_LIMIT:
            stop = far_below if side is Side.BUY else far_above
            p = {"stop_price": stop, "price": stop}
        elif order_type is OrderType.TRAILING_STOP_MARKET:
            p = {"callback_rate": "1", "stop_price": far_below if side is Side.BUY else far_above}
        if order_type.has_limit_price and order_type is not OrderType.LIMIT_MAKER:
            p["time_in_force"] = TimeInForce.GTC
        args = {"account": f.account, "symbol": f.symbol, "side": side, "order_type": order_type}
        args |= {"qty": QTY[f.ctx.market], "intent": f"{time.time_ns()}-{next(_INTENTS)}"} | p | kw
        return PlaceOrder(**args).with_client_order_id("ct")

    async def market_fill(self, f: Facets, side: Side, **kw) -> OrderEvent:
        ev = await f.execution.place(self.place_cmd(f, OrderType.MARKET, side, **kw))
        assert ev.status is OrderStatus.FILLED and Decimal(ev.filled_qty) == Decimal(QTY[f.ctx.market]), ev
        return ev

    # =========================================================================================== the tests
    async def test_instruments_and_symbol_maps(self, trader: Facets, market: Market):
        loaded = await trader.instruments.load()
        assert trader.symbol in loaded
        for symbol, inst in loaded.items():
            assert trader.instruments.from_venue(trader.instruments.to_venue(symbol)) == symbol
            assert inst.market is market and inst.symbol == symbol and inst.tick > 0 and inst.lot > 0
        assert trader.instruments.to_venue(trader.symbol) == VENUE_SYMBOL
        inst = trader.instrument()
        assert inst.price_str(inst.price("30000.1")) == "30000.1"
        with pytest.raises(KeyError, match="NOPE"):
            trader.instruments.instrument("NOPE/USDT")
        with pytest.raises(KeyError):
            trader.instruments.from_venue("NOPEUSDT")

    async def test_trades_stream(self, build, venue: ContractVenue, market: Market):
        f = await build(market, None)
        stream = f.market_data.trades([f.symbol])
        try:
            await asyncio.wait_for(stream.ready(), self.WAIT)
            await venue.run(lambda: venue.trade(market, "BUY", QTY[market]))
            t: Trade = await next_matching(stream, lambda e: isinstance(e, Trade), self.WAIT)
            assert (t.symbol, t.taker_side, Decimal(t.qty)) == (f.symbol, Side.BUY, Decimal(QTY[market]))
            assert Decimal(t.price) >= MID - 1 and t.event_ns > 0 and t.exchange == self.EXCHANGE
            assert stream.dropped == {} or sum(stream.dropped.values()) == 0
        finally:
            await stream.close()

    async def test_book_stays_in_sync_through_the_book_kernel(self, build, venue: ContractVenue, market: Market):
        f = await build(market, None)
        mirror = BookMirror(f.instrument())
        stream = f.market_data.depth([f.symbol])
        rng = np.random.default_rng(7)
        open_ids: list[int] = []

        def churn_step():
            for _ in range(20):
                if open_ids and rng.random() < min(0.9, len(open_ids) / 60):
                    oid = open_ids.pop(int(rng.integers(len(open_ids))))
                    venue.exchange.cancel_order(venue.maker, market.value, VENUE_SYMBOL, order_id=oid)
                    continue
                side = "BUY" if rng.random() < 0.5 else "SELL"
                price = MID - 1 - int(rng.integers(1, 40)) if side == "BUY" else MID + int(rng.integers(1, 40))
                open_ids.append(venue.order(market, side, "LIMIT", QTY[market], f"{price}").order.order_id)

        try:
            await asyncio.wait_for(stream.ready(), self.WAIT)
            mirror.snapshot(await f.market_data.book_snapshot(f.symbol, 1000))
            end = asyncio.get_running_loop().time() + 2.5

            async def consume():
                async for ev in stream:
                    if isinstance(ev, DepthDiff):
                        assert mirror.diff(ev) != kbook.GAP, f"sequence gap at {ev.first_update_id}"

            reader = asyncio.create_task(consume())
            while asyncio.get_running_loop().time() < end:
                await venue.run(churn_step)
                await asyncio.sleep(0.03)
            snap = await f.market_data.book_snapshot(f.symbol, 1000)
            await eventually(lambda: _true(mirror.last_id >= snap.last_update_id), self.WAIT, "the last window")
            reader.cancel()
            assert mirror.gaps == 0 and mirror.applied >= 5 and mirror.last_id == snap.last_update_id
            assert mirror.side(kbook.BID) == canon(snap.bids) and mirror.side(kbook.ASK) == canon(snap.asks)
        finally:
            await stream.close()

    async def test_every_declared_order_type_rests_queries_and_cancels(self, trader: Facets, market: Market):
        caps = trader.execution.capabilities
        assert OrderType.LIMIT in caps.order_types and OrderType.MARKET in caps.order_types
        for order_type in sorted(caps.order_types - {OrderType.MARKET}):
            cmd = self.place_cmd(trader, order_type)
            ev = await trader.execution.place(cmd)
            assert (ev.kind, ev.status) == (OrderEventKind.ACCEPTED, OrderStatus.NEW), order_type
            assert ev.client_order_id == cmd.client_order_id
            order = await trader.execution.query_order(trader.symbol, cmd.client_order_id)
            assert (order.status, order.order_type) == (OrderStatus.NEW, order_type)
            assert Decimal(order.qty) == Decimal(cmd.qty)
            assert cmd.client_order_id in {o.client_order_id for o in await trader.execution.open_orders(trader.symbol)}
            cancel = CancelOrder(account=trader.account, symbol=trader.symbol, client_order_id=cmd.client_order_id)
            done = await trader.execution.cancel(cancel)
            assert (done.kind, done.status) == (OrderEventKind.CANCELED, OrderStatus.CANCELED), order_type
            with pytest.raises((OrderNotFound, Rejected)) as err:
                await trader.execution.cancel(cancel)
            assert cmd.client_order_id in str(err.value) and trader.account in str(err.value)
        await self.market_fill(trader, Side.BUY)

    async def test_amend_or_unsupported(self, trader: Facets):
        cmd = self.place_cmd(trader, OrderType.LIMIT)
        await trader.execution.place(cmd)
        caps = trader.execution.capabilities
        new_qty = str(Decimal(cmd.qty) / 2 if caps.amend_qty_only else Decimal(cmd.qty))
        new_price = cmd.price if caps.amend_qty_only else str(Decimal(cmd.price) + 1)
        if trader.ctx.market is Market.USDM and not caps.amend_qty_only:
            new_qty = cmd.qty  # keep the notional above the futures minimum
        amend = AmendOrder(account=trader.account, symbol=trader.symbol, client_order_id=cmd.client_order_id,
                           side=Side.BUY, qty=new_qty, price=new_price)  # fmt: skip
        if not (caps.amend or caps.cancel_replace):
            with pytest.raises(Unsupported, match=cmd.client_order_id):
                await trader.execution.amend(amend)
            return
        ev = await trader.execution.amend(amend)
        assert ev.kind is OrderEventKind.AMENDED and ev.status is OrderStatus.NEW
        assert ev.client_order_id == cmd.client_order_id  # a cancel-replace keeps it (a new venue order id)
        order = await trader.execution.query_order(trader.symbol, cmd.client_order_id)
        assert (Decimal(order.price), Decimal(order.qty)) == (Decimal(new_price), Decimal(new_qty))

    async def test_batch_and_cancel_all(self, trader: Facets, market: Market):
        good = [self.place_cmd(trader, OrderType.LIMIT, price=str(MID - 900 - k)) for k in range(3)]
        bad = self.place_cmd(trader, OrderType.LIMIT, qty=TINY[market])
        results = await trader.execution.place_batch([*good[:2], bad, good[2]])
        assert [isinstance(r, OrderEvent) for r in results] == [True, True, False, True]
        assert isinstance(results[2], VenueError) and bad.client_order_id in str(results[2])
        assert {r.client_order_id for r in results if isinstance(r, OrderEvent)} == {c.client_order_id for c in good}
        canceled = await trader.execution.cancel_all(CancelAll(account=trader.account, symbol=trader.symbol))
        assert {e.client_order_id for e in canceled} == {c.client_order_id for c in good}
        assert all(e.status is OrderStatus.CANCELED for e in canceled)
        assert await trader.execution.open_orders(trader.symbol) == []

    async def test_rejection_is_typed_and_names_order_and_account(self, trader: Facets, market: Market):
        cmd = self.place_cmd(trader, OrderType.LIMIT, qty=TINY[market])
        with pytest.raises(Rejected) as err:
            await trader.execution.place(cmd)
        assert err.value.code is not None and err.value.venue_message
        assert str(err.value).startswith(f"failed to place order {cmd.client_order_id} for {trader.account}: ")
        with pytest.raises(OrderNotFound):
            await trader.execution.query_order(trader.symbol, cmd.client_order_id)

    async def test_stream_fills_equal_rest_fills_and_state_equals_the_exchange(
        self, trader: Facets, venue: ContractVenue, market: Market
    ):
        since = time.time_ns() - 5 * 10**9
        stream = trader.user_data.events()
        try:
            await asyncio.wait_for(stream.ready(), self.WAIT)
            sides = [Side.BUY, Side.BUY, Side.SELL]
            placed = [(await self.market_fill(trader, s)).client_order_id for s in sides]
            seen: dict[str, Fill] = {}
            qty = {cid: Decimal(0) for cid in placed}

            async def collect():
                async for ev in stream:
                    if isinstance(ev, Fill) and ev.client_order_id in qty:
                        seen[ev.trade_id] = ev
                        qty[ev.client_order_id] += Decimal(ev.qty)
                        if all(q == Decimal(QTY[market]) for q in qty.values()):
                            return

            await asyncio.wait_for(collect(), self.WAIT)
        finally:
            await stream.close()
        rest = {f.trade_id: fill_facts(f) for f in await trader.execution.fills(trader.symbol, since)}
        assert rest == {trade_id: fill_facts(f) for trade_id, f in seen.items()}
        # balances and positions equal the exchange's own
        truth = venue.admin_balances(trader.ctx.account.name, market)
        mine = {b.asset: (Decimal(b.free), Decimal(b.locked)) for b in await trader.execution.balances()}
        if market is Market.SPOT:
            assert {a: v for a, v in mine.items() if any(v)} == {a: v for a, v in truth.items() if any(v)}
        else:
            assert {a: sum(v) for a, v in mine.items() if any(v)} == {a: sum(v) for a, v in truth.items() if any(v)}
            rows = await venue.signed("GET", "/fapi/v3/positionRisk", trader.ctx.credentials, symbol=VENUE_SYMBOL)
            rows = [r for r in rows if Decimal(r["positionAmt"]) != 0]
            positions = await trader.execution.positions(trader.symbol)
            assert [(p.symbol, Decimal(p.qty)) for p in positions] == [
                (trader.symbol, Decimal(r["positionAmt"])) for r in rows
            ]
            assert Decimal(positions[0].qty) == Decimal(QTY[market])  # two buys, one sell
            assert Decimal(positions[0].entry_price) == Decimal(rows[0]["entryPrice"])

    async def test_commission_rates_are_the_accounts_own(self, build, venue: ContractVenue, market: Market):
        creds = venue.new_trader(market, self.EXCHANGE)
        trader = await build(market, creds)
        assert trader.execution.capabilities.commission_rates
        got = await trader.execution.commission(trader.symbol)
        params = {"symbol": trader.instruments.to_venue(trader.symbol)}
        if market is Market.SPOT:  # the rate charged: standard + special + tax (before a BNB discount)
            body = await venue.signed("GET", "/api/v3/account/commission", creds, **params)
            parts = [body[k] for k in ("standardCommission", "specialCommission", "taxCommission")]
            maker, taker = (sum(Decimal(p[side]) for p in parts) for side in ("maker", "taker"))
        else:
            body = await venue.signed("GET", "/fapi/v1/commissionRate", creds, **params)
            maker, taker = Decimal(body["makerCommissionRate"]), Decimal(body["takerCommissionRate"])
        assert (got.symbol, Decimal(got.maker), Decimal(got.taker)) == (trader.symbol, maker, taker)
        assert got.source == "venue"
        assert got.taker_ppm == int(taker * 1_000_000) and got.maker_ppm == int(maker * 1_000_000)

    async def test_a_btc_quoted_order_fills_and_the_btc_balance_reads_back_exactly(self, build, venue: ContractVenue):
        """ETHBTC (tick 0.00001 x step 0.0001 = 1e-9 BTC): the instrument holds BTC money in 1e-12; an order that
        fills and one that rests read back exactly, the fill's BTC is settled as the exchange's rule says
        (truncated to 1e-8, localex/engine/CONTRACT.md) and the BTC balance equals the exchange's to the unit."""
        maker, _, _ = venue.server.new_account(spot={"ETH": "100", "BTC": "1"})
        for price in ("0.03512", "0.03514"):
            req = OrderRequest("spot", "ETHBTC", "SELL", "LIMIT", quantity="1", price=price, time_in_force="GTC")
            await venue.run(lambda req=req: venue.exchange.place_order(maker, req))
        account, key, secret = venue.server.new_account(spot={"BTC": "1"})
        creds = Credentials(self.EXCHANGE, "spot", account, key, secret, permissions=("spot",))
        f = await build(Market.SPOT, creds)
        inst = f.instruments.instrument("ETH/BTC")
        assert f.instruments.to_venue("ETH/BTC") == "ETHBTC" and inst.money_decimals == 12
        assert inst.notional_str("0.03512", "0.0029") == "0.000101848"
        since = time.time_ns() - 5 * 10**9
        base = {"account": f.account, "symbol": "ETH/BTC", "side": Side.BUY, "order_type": OrderType.LIMIT}
        base |= {"time_in_force": TimeInForce.GTC}
        taker = PlaceOrder(**base, qty="0.0029", price="0.03513", intent=f"{time.time_ns()}-{next(_INTENTS)}")
        ev = await f.execution.place(taker.with_client_order_id("ct"))
        assert ev.status is OrderStatus.FILLED and Decimal(ev.filled_qty) == Decimal("0.0029"), ev
        # an average price, where the connector gives one, is Binance's cummulativeQuoteQty / executedQty: the
        # settled 0.00010184 BTC over 0.0029 ETH, a hair below the fill's 0.03512 (the fill's price is exact)
        assert ev.avg_price is None or Decimal(ev.avg_price) * Decimal("0.0029") - Decimal("0.00010184") < Decimal(
            "1e-15"
        ), ev
        resting = PlaceOrder(**base, qty="0.0037", price="0.03001", intent=f"{time.time_ns()}-{next(_INTENTS)}")
        rest = await f.execution.place(resting.with_client_order_id("ct"))
        assert rest.status is OrderStatus.NEW
        queried = await f.execution.query_order("ETH/BTC", rest.client_order_id)
        assert (Decimal(queried.price), Decimal(queried.qty)) == (Decimal("0.03001"), Decimal("0.0037"))
        (fill,) = await f.execution.fills("ETH/BTC", since)
        assert (Decimal(fill.price), Decimal(fill.qty), fill.client_order_id) == (
            Decimal("0.03512"), Decimal("0.0029"), ev.client_order_id,
        )  # fmt: skip
        assert (Decimal(fill.commission), fill.commission_asset) == (Decimal("0.0000029"), "ETH")
        # the exchange's settlement: 0.000101848 BTC paid as 0.00010184; 0.0037 x 0.03001 = 0.000111037 locked as
        # 0.00011104 (rounded up)
        paid, locked = Decimal("0.00010184"), Decimal("0.00011104")
        mine = {b.asset: (Decimal(b.free), Decimal(b.locked)) for b in await f.execution.balances()}
        truth = venue.admin_balances(account, Market.SPOT)
        assert mine["BTC"] == truth["BTC"] == (1 - paid - locked, locked)
        assert mine["ETH"] == truth["ETH"] == (Decimal("0.0029") - Decimal("0.0000029"), 0)
        assert inst.money(mine["BTC"][0]) + inst.money(mine["BTC"][1]) == inst.money(1 - paid)  # exact in 1e-12
        await f.execution.cancel(CancelOrder(account=f.account, symbol="ETH/BTC", client_order_id=rest.client_order_id))
        mine = {b.asset: (Decimal(b.free), Decimal(b.locked)) for b in await f.execution.balances()}
        assert mine["BTC"] == venue.admin_balances(account, Market.SPOT)["BTC"] == (1 - paid, 0)

    @futures_only
    async def test_leverage_margin_type_and_hedge_mode(self, trader: Facets, market: Market):
        ex = trader.execution
        assert (await ex.set_leverage(trader.symbol, 7)).leverage == 7
        assert (await ex.set_margin_type(trader.symbol, MarginType.ISOLATED)).margin_type is MarginType.ISOLATED
        assert (await ex.set_margin_type(trader.symbol, MarginType.ISOLATED)).margin_type is MarginType.ISOLATED
        assert await ex.position_mode() is PositionMode.ONE_WAY
        await ex.set_position_mode(PositionMode.HEDGE)
        assert await ex.position_mode() is PositionMode.HEDGE
        await self.market_fill(trader, Side.BUY, position_side=PositionSide.LONG)
        await self.market_fill(trader, Side.SELL, position_side=PositionSide.SHORT)
        sides = {(p.position_side, Decimal(p.qty)) for p in await ex.positions(trader.symbol)}
        assert sides == {(PositionSide.LONG, Decimal(QTY[market])), (PositionSide.SHORT, -Decimal(QTY[market]))}
        await self.market_fill(trader, Side.SELL, position_side=PositionSide.LONG)
        await self.market_fill(trader, Side.BUY, position_side=PositionSide.SHORT)
        assert await ex.positions(trader.symbol) == []
        await ex.set_position_mode(PositionMode.ONE_WAY)
        assert await ex.position_mode() is PositionMode.ONE_WAY

    async def test_sub_account_transfer(self, build, venue: ContractVenue, market: Market):
        main_creds = venue.new_trader(Market.SPOT, self.EXCHANGE)
        sub_creds = venue.new_trader(market, self.EXCHANGE, parent=main_creds.account)
        emails = {a["accountId"]: a["email"] for a in venue.server.admin("GET", "/admin/v1/accounts")}
        refs = {main_creds.account: emails[main_creds.account], sub_creds.account: emails[sub_creds.account]}
        main = await build(Market.SPOT, main_creds, refs)
        sub = await build(market, sub_creds, refs)
        t = Transfer(transfer_id=f"t{time.time_ns()}", from_account=main.account, to_account=sub.account,
                     asset="USDT", amount="12.5", from_market=Market.SPOT, to_market=market)  # fmt: skip
        if not main.execution.capabilities.sub_account_transfer:
            with pytest.raises(Unsupported, match=t.transfer_id):
                await main.execution.transfer(t)
            with pytest.raises(Unsupported, match=t.transfer_id):
                await main.execution.find_transfer(t)
            return
        assert await main.execution.find_transfer(t) is None  # never sent: not in the venue's history
        before = {b.asset: Decimal(b.free) for b in await sub.execution.balances()}
        ev = await main.execution.transfer(t)
        assert ev.status is TransferStatus.DONE and ev.transfer == t and ev.venue_transfer_id
        after = {b.asset: Decimal(b.free) for b in await sub.execution.balances()}
        assert after["USDT"] - before["USDT"] == Decimal("12.5")
        found = await main.execution.find_transfer(t)  # the history finds it by its id
        assert found is not None and found.status is TransferStatus.DONE
        assert found.venue_transfer_id == ev.venue_transfer_id and found.transfer == t
        with pytest.raises(Rejected, match="-4115|duplicated"):  # the same id again moves nothing
            await main.execution.transfer(t)
        back = msgspec.structs.replace(t, transfer_id=f"{t.transfer_id}b", from_account=sub.account,
                                       to_account=main.account, from_market=market, to_market=Market.SPOT)  # fmt: skip
        assert (await main.execution.transfer(back)).status is TransferStatus.DONE
        found_back = await main.execution.find_transfer(back)  # the sender's side of the history (fromEmail)
        assert found_back is not None and found_back.transfer == back

    async def test_sub_account_balances_with_the_main_key(self, build, venue: ContractVenue, market: Market):
        main_creds = venue.new_trader(Market.SPOT, self.EXCHANGE)
        sub_creds = venue.new_trader(market, self.EXCHANGE, parent=main_creds.account)
        emails = {a["accountId"]: a["email"] for a in venue.server.admin("GET", "/admin/v1/accounts")}
        refs = {main_creds.account: emails[main_creds.account], sub_creds.account: emails[sub_creds.account]}
        main = await build(Market.SPOT, main_creds, refs)
        sub = await build(market, sub_creds, refs)
        if not main.execution.capabilities.sub_account_balances:
            with pytest.raises(Unsupported, match=sub_creds.account):
                await main.execution.sub_account_balances(sub_creds.account, market)
            return
        own = {b.asset: (Decimal(b.free), Decimal(b.free) + Decimal(b.locked)) for b in await sub.execution.balances()}
        seen = await main.execution.sub_account_balances(sub_creds.account, market)
        assert own and {b.asset: (Decimal(b.free), Decimal(b.free) + Decimal(b.locked)) for b in seen} == own
        assert {(b.account, b.market) for b in seen} == {(sub.account, market)}
        with pytest.raises(Unsupported, match="no-such-account"):  # no venue id known: refused, nothing read
            await main.execution.sub_account_balances("no-such-account", market)
        with pytest.raises(VenueError):  # the sub-account's key is not a master key
            await sub.execution.sub_account_balances(main_creds.account, Market.SPOT)

    async def test_key_rotation_keeps_the_user_stream(self, trader: Facets, venue: ContractVenue, market: Market):
        old = trader.ctx.credentials
        stream = trader.user_data.events()
        try:
            await asyncio.wait_for(stream.ready(), self.WAIT)
            key = venue.server.admin("POST", f"/admin/v1/accounts/{old.account}/keys", {})
            new = Credentials(old.exchange, old.market, old.account, key["apiKey"], key["secret"], old.permissions)
            await trader.execution.set_credentials(new)
            await trader.user_data.set_credentials(new)
            venue.server.admin("DELETE", f"/admin/v1/keys/{old.api_key}")
            assert await trader.execution.balances()
            ev = await self.market_fill(trader, Side.BUY)
            got = await next_matching(
                stream, lambda e: isinstance(e, Fill) and e.client_order_id == ev.client_order_id, self.WAIT
            )
            assert Decimal(got.qty) == Decimal(QTY[market])
        finally:
            await stream.close()


async def _true(value: bool) -> bool:
    return value
