"""Rate-limit budgets: windows per account and IP, the venue's counts adopted, 429/418 back-off for the whole
IP, WebSocket slots; and against a real local exchange: no 429 while awaiting budget, Retry-After honoured."""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.model import Market
from oms.venues import Capabilities, EndpointWeight, RateLimited, RateLimitRule, VenueMetadata
from oms.venues.ccxt.metadata import weights_from
from oms.venues.ratelimit import AccountLimits, RateLimits
from tests.localex.conftest import free_port, start_server

MINUTE = 60 * 10**9
LIMITS = AccountLimits(weight_per_minute=100, orders_per_10s=3, orders_per_day=10, ws_connections=2)
META = VenueMetadata(
    exchange="binance",
    market=Market.SPOT,
    capabilities=Capabilities(market=Market.SPOT),
    weights={"GET /api/v3/openOrders": EndpointWeight(40), "POST /api/v3/order": EndpointWeight(1, orders=True)},
    rate_limits=(RateLimitRule(kind="weight", interval_s=60, limit=150, scope="ip", header="X-MBX-USED-WEIGHT-1M"),),
)


class FakeTime:
    """A clock that sleeping advances (starts 1 s into a UTC day, so windows are aligned and predictable)."""

    def __init__(self):
        self.t = 1_764_547_200 * 10**9 + 10**9
        self.slept: list[float] = []

    def now(self) -> int:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += int(s * 1e9)
        await asyncio.sleep(0)


@pytest.fixture
def clock():
    return FakeTime()


@pytest.fixture
def hub(clock):
    return RateLimits(now_ns=clock.now, sleep=clock.sleep, max_wait_s=3600)


async def test_orders_per_10s_wait_for_the_next_window(hub, clock):
    b = hub.account("binance/a", "spot", LIMITS, META)
    for _ in range(3):
        await b.acquire("POST /api/v3/order", orders=1)
    assert clock.slept == []
    await b.acquire("POST /api/v3/order", orders=1)
    assert clock.slept == [pytest.approx(9.0)]  # 1 s into the window: 9 s to the next
    assert b.used()["binance/a orders/10s"] == 1 and b.used()["binance/a orders/1d"] == 4


async def test_endpoint_weights_and_the_ip_shared_by_accounts(hub, clock):
    a = hub.account("binance/a", "spot", LIMITS, META)
    b = hub.account("binance/b", "spot", LIMITS, META)
    assert a.ip is b.ip and hub.account("binance/c", "usdm", LIMITS, META).ip is not a.ip
    await a.acquire("GET /api/v3/openOrders")
    await a.acquire("GET /api/v3/openOrders")  # a: 80 of its 100; IP: 80 of 150
    await b.acquire("GET /api/v3/openOrders")  # IP 120
    assert clock.slept == []
    await b.acquire("GET /api/v3/openOrders")  # IP would be 160 > 150: waits for the minute
    assert clock.slept == [pytest.approx(59.0)]
    with pytest.raises(ValueError, match="exceeds the whole binance/a weight/1m limit of 100"):
        await a.acquire("GET /x", weight=101)


async def test_only_trading_requests_may_use_the_ips_last_fifth(hub, clock):
    """Reads, snapshots and subscriptions keep within 80% of the IP's window (120 of 150 here); placements,
    cancels and order queries may use the rest, so orders always find weight even while 200 accounts start."""
    meta = msgspec.structs.replace(
        META,
        weights={**META.weights, "DELETE /api/v3/order": EndpointWeight(10, trading=True)},
    )
    roomy = AccountLimits(weight_per_minute=1000, orders_per_10s=3, orders_per_day=10)  # only the IP limits
    a = hub.account("binance/a", "spot", roomy, meta)
    b = hub.account("binance/b", "spot", roomy, meta)
    await a.acquire("GET /api/v3/openOrders")
    await a.acquire("GET /api/v3/openOrders")
    await b.acquire("GET /x", weight=35)  # the IP at 115 of 150
    await b.acquire("GET /x", weight=10)  # 125 > 120: a background read waits for the next minute
    assert clock.slept == [pytest.approx(59.0)]
    assert a.ip.weight[60].count == 10
    await b.acquire("GET /x", weight=95)  # 105
    await b.acquire("DELETE /api/v3/order")  # a cancel: 115
    await b.acquire("POST /api/v3/order", orders=1, weight=20)  # a placement: 135, past the background share
    await b.acquire("GET /y", weight=5, trading=True)  # the caller says it resolves an order: 140
    assert len(clock.slept) == 1 and a.ip.weight[60].count == 140
    await a.acquire("GET /x", weight=1)  # a background read: waits again
    assert len(clock.slept) == 2
    with pytest.raises(ValueError, match="background share"):
        RateLimits(background_share=0)


async def test_a_trading_request_does_not_queue_behind_a_read_waiting_for_the_background_share(clock):
    gate = asyncio.Event()

    async def sleep(s: float) -> None:
        await gate.wait()
        clock.t += int(s * 1e9)

    hub = RateLimits(now_ns=clock.now, sleep=sleep, max_wait_s=3600)
    b = hub.account("binance/a", "spot", AccountLimits(1000, 3, 10), META)
    await b.acquire("GET /x", weight=120)  # the IP's background share of 150, all used
    read = asyncio.create_task(b.acquire("GET /x", weight=1))
    await asyncio.sleep(0)
    assert not read.done()
    await asyncio.wait_for(b.acquire("POST /api/v3/order", orders=1), 1)  # not behind the read
    gate.set()
    await read
    assert b.ip.weight[60].count == 1  # the read went into the next minute


def test_ccxt_weights_mark_cancels_and_order_queries_as_trading():
    api = {"private": {"get": {"order": 4, "openOrders": 6}, "delete": {"order": 1}, "post": {"order": 1}}}
    weights = weights_from(api, {"private": "https://api.example.com/api/v3"})
    assert weights["GET /api/v3/order"].trading and weights["DELETE /api/v3/order"].trading
    assert weights["POST /api/v3/order"].orders and not weights["GET /api/v3/openOrders"].trading


async def test_the_venues_counts_win(hub, clock):
    b = hub.account("binance/a", "spot", LIMITS, META)
    b.observe_headers({"X-MBX-USED-WEIGHT-1M": "149", "X-MBX-ORDER-COUNT-10S": "3", "Content-Type": "x"})
    assert b.used()["binance/spot@default weight/60s"] == 149 and b.used()["binance/a orders/10s"] == 3
    b.observe_headers({"x-mbx-used-weight-1m": "5"})  # lower than ours: requests in flight are still ours
    assert b.used()["binance/spot@default weight/60s"] == 149
    await b.acquire("POST /api/v3/order", orders=1)  # IP weight 149 + 1 fits; the venue's 3 orders do not
    assert clock.slept == [pytest.approx(9.0)]
    await b.acquire("GET /api/v3/time", weight=2)  # the IP's 150 of 150 are used: the next minute
    assert clock.slept[1:] == [pytest.approx(50.0)]
    # WebSocket-API rateLimits: adopt count and a lower limit
    b.observe_rate_limits(
        [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 2, "count": 2},
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 7},
            {"bad": "entry"},
        ]
    )
    assert b.orders[10].limit == 2 and b.used()["binance/a orders/10s"] == 2
    assert b.ip.weight[60].limit == 150  # a higher venue limit is not adopted over ours


async def test_429_backs_off_every_account_on_the_ip(hub, clock):
    a = hub.account("binance/a", "spot", LIMITS, META)
    b = hub.account("binance/b", "spot", LIMITS, META)
    other_market = hub.account("binance/b", "usdm", LIMITS, META)
    a.on_rate_limited(429, 7)
    await other_market.acquire("GET /fapi/v1/time")
    assert clock.slept == []
    await b.acquire("GET /api/v3/time")
    assert clock.slept == [pytest.approx(7.0)]
    a.on_rate_limited(418, 120)
    assert a.ip.backoffs == 2


async def test_max_wait_raises_rate_limited(clock):
    hub = RateLimits(now_ns=clock.now, sleep=clock.sleep, max_wait_s=5)
    b = hub.account("binance/a", "spot", LIMITS, META)
    b.on_rate_limited(418, 120)
    with pytest.raises(RateLimited) as err:
        await b.acquire("GET /api/v3/time")
    assert str(err.value) == (
        "failed to call for binance/a: GET /api/v3/time would wait 120.0 s for budget (more than 5 s) "
        "(retry after 120 s)"
    )
    assert err.value.status == 0 and err.value.retry_after_s == pytest.approx(120)


async def test_concurrent_callers_never_exceed_a_window(hub, clock):
    b = hub.account("binance/a", "spot", LIMITS, META)
    stamps: list[int] = []

    async def order():
        await b.acquire("POST /api/v3/order", orders=1)
        stamps.append(clock.now())

    await asyncio.gather(*(order() for _ in range(9)))
    per_window: dict[int, int] = {}
    for t in stamps:
        per_window[t // (10 * 10**9)] = per_window.get(t // (10 * 10**9), 0) + 1
    assert sorted(per_window.values()) == [3, 3, 3]


async def test_websocket_slots():
    b = RateLimits().account("binance/a", "spot", LIMITS)
    entered = asyncio.Event()
    async with b.connection(), b.connection():
        assert b.ws_open == 2

        async def third():
            async with b.connection():
                entered.set()

        task = asyncio.create_task(third())
        await asyncio.sleep(0)
        assert not entered.is_set()
    await asyncio.wait_for(entered.wait(), 5)
    await task
    assert b.ws_open == 0


@pytest.fixture(scope="module")
def tight_server():
    limits = RateLimitConfig(spot_weight_per_minute=400, ban_after_violations=1000)
    yield from start_server(ServerConfig(port=free_port(), replay=False, rate_limits=limits))


async def test_against_the_local_exchange(tight_server):
    """Awaiting budget (the IP rule set to the server's limit) never earns a 429; an unaware budget earns one,
    and its Retry-After stops the other account on the IP."""
    meta = VenueMetadata(
        exchange="binance",
        market=Market.SPOT,
        capabilities=Capabilities(market=Market.SPOT),
        weights={"GET /api/v3/depth": EndpointWeight(5)},
        rate_limits=(RateLimitRule(kind="weight", interval_s=60, limit=400, scope="ip"),),
    )
    hub = RateLimits(max_wait_s=0.001)  # real time; no real waiting allowed
    b = hub.account("binance/a", "spot", AccountLimits(10**6, 100, 1000), meta)
    statuses = []
    async with aiohttp.ClientSession() as http:
        try:
            for _ in range(200):
                await b.acquire("GET /api/v3/depth")
                async with http.get(f"{tight_server.url}/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
                    statuses.append(r.status)
                    b.observe_headers(r.headers)
        except RateLimited as exc:
            assert "would wait" in str(exc)
        assert 429 not in statuses and len(statuses) >= 2
        assert b.used()["binance/spot@default weight/60s"] >= int(r.headers["X-MBX-USED-WEIGHT-1M"])
        # a budget that does not know the IP limit earns the 429 and backs the IP off
        hub2 = RateLimits(max_wait_s=3600)
        unaware = hub2.account("binance/x", "spot", AccountLimits(10**6, 100, 1000))
        other = hub2.account("binance/y", "spot", AccountLimits(10**6, 100, 1000))
        while True:
            await unaware.acquire("GET /api/v3/depth", weight=5)
            async with http.get(f"{tight_server.url}/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
                if r.status in (429, 418):
                    unaware.on_rate_limited(r.status, float(r.headers["Retry-After"]))
                    break
        assert other.ip.backoff_until_ns > hub2.now_ns()
