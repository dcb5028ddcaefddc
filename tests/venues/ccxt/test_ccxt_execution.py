"""The ccxt connector's execution client, built by the real clients factory, against a real local exchange.

Errors are the venue's real answers (filter failures, unknown orders, a revoked key, a skewed clock); an
answer lost on the wire (the fault proxy forwards the order, then cuts the connection) must be UNKNOWN and
then resolve to the order's true state by its client order id.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.model import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    MarginType,
    Market,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionMode,
    PositionSide,
    Side,
    TimeInForce,
    Transfer,
    TransferKind,
    TransferStatus,
)
from oms.model.units import canonical
from oms.venues import AuthError, ClockSkew, OrderNotFound, RateLimited, Rejected, UnknownOutcome, Unsupported
from oms.venues.clock import ServerClock
from oms.venues.factory import AccountClients
from tests.localex.conftest import LocalServer, free_port, start_server
from tests.venues.ccxt.conftest import Venue
from tests.venues.ccxt.faultproxy import FaultProxy

SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"


def order(account: str, symbol: str, side: Side, qty: str, price: str | None = None, **kw) -> PlaceOrder:
    kind = kw.pop("order_type", OrderType.LIMIT if price else OrderType.MARKET)
    return PlaceOrder(
        account=account,
        symbol=symbol,
        side=side,
        order_type=kind,
        qty=qty,
        price=price,
        intent=str(time.time_ns()),
        **kw,
    ).with_client_order_id()


@pytest.fixture
async def venue(server: LocalServer, ccxt_config) -> Venue:
    v = Venue(server, ccxt_config)
    yield v
    await v.close()


@pytest.fixture
async def spot(venue: Venue) -> AccountClients:
    venue.fund("main", "spot", USDT="100000", BTC="2")
    return await venue.clients("main", "spot")


@pytest.fixture
async def perp(venue: Venue) -> AccountClients:
    venue.fund("sub_futures_trend", "usdm", USDT="100000")
    return await venue.clients("sub_futures_trend", "usdm")


def bid_below(server: LocalServer, frac: str = "0.8") -> str:
    return canonical((Decimal(server.resting_futures_price("BTCUSDT", 0.0)) * Decimal(frac)).quantize(Decimal("0.01")))


async def test_limit_order_lifecycle_by_client_order_id(server: LocalServer, spot: AccountClients) -> None:
    ex = spot.execution
    cmd = order("binance/main", SPOT, Side.BUY, "0.01", bid_below(server))
    placed = await ex.place(cmd)
    assert placed.kind is OrderEventKind.ACCEPTED and placed.status is OrderStatus.NEW
    assert placed.client_order_id == cmd.client_order_id and placed.qty == "0.01" and placed.price == cmd.price
    got = await ex.query_order(SPOT, cmd.client_order_id)
    assert got.status is OrderStatus.NEW and got.venue_order_id == placed.venue_order_id
    assert [o.client_order_id for o in await ex.open_orders(SPOT)] == [cmd.client_order_id]
    cancelled = await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=cmd.client_order_id))
    assert cancelled.kind is OrderEventKind.CANCELED and cancelled.status is OrderStatus.CANCELED
    assert cancelled.client_order_id == cmd.client_order_id  # not the id of the cancel request
    assert (await ex.query_order(SPOT, cmd.client_order_id)).status is OrderStatus.CANCELED
    assert await ex.open_orders(SPOT) == []


async def test_market_order_fills_and_fills_by_time(spot: AccountClients) -> None:
    ex = spot.execution
    since = time.time_ns() - 1_000_000_000
    cmd = order("binance/main", SPOT, Side.BUY, "0.01")
    ev = await ex.place(cmd)
    assert ev.kind is OrderEventKind.FILL and ev.status is OrderStatus.FILLED and ev.filled_qty == "0.01"
    fills = await ex.fills(SPOT, since)
    mine = [f for f in fills if f.client_order_id == cmd.client_order_id]
    assert mine and sum(Decimal(f.qty) for f in mine) == Decimal("0.01")
    assert all(f.account == "binance/main" and f.side is Side.BUY and f.commission_asset == "BTC" for f in mine)
    assert await ex.fills(SPOT, since, since + 1) == []
    balances = {b.asset: b for b in await ex.balances()}
    assert Decimal(balances["BTC"].free) > Decimal("2")


async def test_time_in_force_post_only_and_order_types(server: LocalServer, spot: AccountClients) -> None:
    ex = spot.execution
    caps = ex.capabilities
    assert {OrderType.LIMIT, OrderType.MARKET, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT} <= caps.order_types
    price = bid_below(server)
    ioc = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price, time_in_force=TimeInForce.IOC))
    assert ioc.status is OrderStatus.EXPIRED and ioc.kind is OrderEventKind.EXPIRED
    maker = await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", price, order_type=OrderType.LIMIT_MAKER))
    assert maker.status is OrderStatus.NEW and maker.order_type is OrderType.LIMIT_MAKER
    ask = canonical((Decimal(price) * 2).quantize(Decimal("0.01")))
    with pytest.raises(Rejected, match=r"failed to place order .* for binance/main: venue rejected \(-2010\)"):
        await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", ask, order_type=OrderType.LIMIT_MAKER))
    stop = await ex.place(
        order("binance/main", SPOT, Side.SELL, "0.01", price, order_type=OrderType.STOP_LIMIT, stop_price=price)
    )
    assert stop.status is OrderStatus.NEW and stop.order_type is OrderType.STOP_LIMIT
    events = await ex.cancel_all(CancelAll(account="binance/main", symbol=SPOT))
    assert {e.client_order_id for e in events} == {maker.client_order_id, stop.client_order_id}
    assert all(e.status is OrderStatus.CANCELED for e in events)


async def test_venue_rejections_are_typed_and_name_order_and_account(venue: Venue, spot: AccountClients) -> None:
    ex = spot.execution
    tiny = order("binance/main", SPOT, Side.BUY, "0.0001", "1")
    with pytest.raises(Rejected) as info:
        await ex.place(tiny)
    assert info.value.code == -1013 and "NOTIONAL" in info.value.venue_message
    assert str(info.value).startswith(f"failed to place order {tiny.client_order_id} for binance/main: ")
    with pytest.raises(OrderNotFound, match="failed to cancel order nope-1 for binance/main"):
        await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id="nope-1"))
    with pytest.raises(OrderNotFound, match="failed to query order nope-2"):
        await ex.query_order(SPOT, "nope-2")
    with pytest.raises(Unsupported, match="not part of ccxt's unified API"):
        await ex.transfer(
            Transfer(
                transfer_id="t1",
                from_account="binance/main",
                to_account="binance/sub_spot_arb",
                asset="USDT",
                amount="1",
            )
        )
    venue.server.admin("DELETE", f"/admin/v1/keys/{venue.env['OMS_KEY_BINANCE_SPOT_MAIN_API_KEY']}")
    with pytest.raises(AuthError, match="failed to read balances for binance/main: key refused"):
        await ex.balances()


async def test_lost_answer_is_unknown_then_resolved_by_client_order_id(
    server: LocalServer, ccxt_config, proxy: FaultProxy
) -> None:
    v = Venue(server, ccxt_config, url=proxy.url)
    try:
        v.fund("main", "spot", USDT="100000")
        ex = (await v.clients("main", "spot")).execution
        ex.ws.enabled = False  # the REST path (the WebSocket API's lost answers: test_ccxt_ws_orders.py)
        cmd = order("binance/main", SPOT, Side.BUY, "0.01", bid_below(server))
        proxy.cut_after_forward(lambda r: r.method == "POST" and r.path == "/api/v3/order")
        with pytest.raises(UnknownOutcome, match=f"failed to place order {cmd.client_order_id} for binance/main: sent"):
            await ex.place(cmd)
        assert proxy.cut_count == 1
        truth = await ex.query_order(SPOT, cmd.client_order_id)
        assert truth.status is OrderStatus.NEW and truth.qty == "0.01"
        # a cancel whose answer is lost: aiohttp re-sends an idempotent DELETE once on a reused connection the
        # server closed, so the caller sees either UNKNOWN or the venue's "unknown order" for the repeat
        proxy.cut_after_forward(lambda r: r.method == "DELETE" and r.path == "/api/v3/order")
        with pytest.raises((UnknownOutcome, OrderNotFound), match="failed to cancel order"):
            await ex.cancel(CancelOrder(account="binance/main", symbol=SPOT, client_order_id=cmd.client_order_id))
        assert (await ex.query_order(SPOT, cmd.client_order_id)).status is OrderStatus.CANCELED
    finally:
        await v.close()


async def test_clock_skew_resyncs_and_retries_only_idempotent_calls(spot: AccountClients, server: LocalServer) -> None:
    ex = spot.execution
    clock: ServerClock = ex.context.clock
    clock.offset_ns = -20_000_000_000  # 20 s behind the venue: outside recvWindow (-1021)
    before = clock.resyncs
    assert isinstance(await ex.open_orders(SPOT), list)  # a query: resynced and retried
    assert clock.resyncs == before + 1 and abs(clock.offset_ns) < 5_000_000_000
    clock.offset_ns = -20_000_000_000
    with pytest.raises(ClockSkew, match=r"failed to place order .* venue rejected \(-1021\)"):
        await ex.place(order("binance/main", SPOT, Side.BUY, "0.01", bid_below(server)))
    assert clock.resyncs == before + 2 and abs(clock.offset_ns) < 5_000_000_000


async def test_futures_settings_positions_amend_batch_and_cancel_all(server: LocalServer, perp: AccountClients) -> None:
    ex = perp.execution
    acct = "binance/sub_futures_trend"
    caps = ex.capabilities
    assert caps.amend and caps.batch_orders and caps.max_batch == 5 and caps.leverage and caps.margin_type
    assert (await ex.set_leverage(PERP, 5)).leverage == 5
    assert (await ex.set_margin_type(PERP, MarginType.ISOLATED)).margin_type is MarginType.ISOLATED
    assert (await ex.set_margin_type(PERP, MarginType.ISOLATED)).margin_type is MarginType.ISOLATED  # already so
    filled = await ex.place(order(acct, PERP, Side.BUY, "0.02"))
    assert filled.status is OrderStatus.FILLED
    positions = await ex.positions(PERP)
    assert len(positions) == 1 and positions[0].qty == "0.02" and positions[0].position_side is PositionSide.BOTH
    assert positions[0].margin_type is MarginType.ISOLATED
    price = server.resting_futures_price("BTCUSDT")
    resting = await ex.place(order(acct, PERP, Side.BUY, "0.02", price))
    assert resting.status is OrderStatus.NEW
    lower = str(Decimal(price) - Decimal("10"))
    amended = await ex.amend(
        AmendOrder(account=acct, symbol=PERP, client_order_id=resting.client_order_id, side=Side.BUY, price=lower)
    )
    assert amended.kind is OrderEventKind.AMENDED and Decimal(amended.price) == Decimal(lower)
    assert (await ex.query_order(PERP, resting.client_order_id)).price == amended.price
    batch = await ex.place_batch([order(acct, PERP, Side.BUY, "0.02", price) for _ in range(3)] + [
        order(acct, PERP, Side.BUY, "0.02", "1")  # outside PERCENT_PRICE: refused, the others stand
    ])  # fmt: skip
    assert [type(r).__name__ for r in batch] == ["OrderEvent"] * 3 + ["Rejected"], [str(r) for r in batch]
    assert "for binance/sub_futures_trend" in str(batch[3])
    events = await ex.cancel_all(CancelAll(account=acct, symbol=PERP))
    assert len(events) == 4 and all(e.status is OrderStatus.CANCELED for e in events)
    assert await ex.open_orders(PERP) == []
    closing = await ex.place(order(acct, PERP, Side.SELL, "0.02", reduce_only=True))
    assert closing.status is OrderStatus.FILLED and await ex.positions(PERP) == []
    assert (await ex.set_position_mode(PositionMode.HEDGE)).position_mode is PositionMode.HEDGE
    assert await ex.position_mode() is PositionMode.HEDGE
    assert (await ex.set_position_mode(PositionMode.HEDGE)).position_mode is PositionMode.HEDGE  # already so
    short = await ex.place(order(acct, PERP, Side.SELL, "0.03", position_side=PositionSide.SHORT))
    assert short.status is OrderStatus.FILLED
    sides = {p.position_side: p.qty for p in await ex.positions(PERP)}
    assert sides[PositionSide.SHORT] == "-0.03"


async def test_wallet_transfer_and_key_switch(server: LocalServer, venue: Venue) -> None:
    acct_id, _, _ = venue.fund("sub_futures_basis", "spot", USDT="1000")
    spot = await venue.clients("sub_futures_basis", "spot")
    ex = spot.execution
    t = Transfer(
        transfer_id="w1", from_account="binance/sub_futures_basis", to_account="binance/sub_futures_basis",
        asset="USDT", amount="250", from_market=Market.SPOT, to_market=Market.USDM, kind=TransferKind.MARKET,
    )  # fmt: skip
    ev = await ex.transfer(t)
    assert ev.status is TransferStatus.DONE and ev.venue_transfer_id
    assert {b.asset: b.free for b in await ex.balances()}["USDT"] == "750"
    new = server.admin("POST", f"/admin/v1/accounts/{acct_id}/keys", {})
    old_key = ex.exchange.apiKey
    creds = type(spot.context.credentials)(
        "binance",
        "spot",
        "sub_futures_basis",
        new["apiKey"],
        new["secret"],  # type: ignore[index]
    )
    await spot.set_credentials(creds)
    server.admin("DELETE", f"/admin/v1/keys/{old_key}")
    assert {b.asset: b.free for b in await ex.balances()}["USDT"] == "750"


async def test_requests_are_charged_to_the_shared_budget_and_a_429_backs_off_the_ip(ccxt_config) -> None:
    """The venue's limit is tighter than our budget: its 429 arrives as ``RateLimited`` with its Retry-After,
    and every account on the IP is made to wait; requests before it were charged to the shared budget."""
    limits = RateLimitConfig(spot_weight_per_minute=60)
    for srv in start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits)):
        v = Venue(srv, ccxt_config)
        try:
            v.fund("main", "spot", USDT="1000")
            ex = (await v.clients("main", "spot")).execution
            budget = ex.context.limiter
            with pytest.raises(RateLimited) as info:
                for _ in range(20):
                    await ex.balances()
            assert info.value.status == 429 and info.value.retry_after_s > 0
            assert "failed to read balances for binance/main" in str(info.value)
            assert budget.ip.backoffs >= 1 and budget.ip.backoff_until_ns > time.time_ns()
            assert any(count > 0 for count in budget.used().values())
        finally:
            await v.close()
