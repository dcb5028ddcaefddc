"""Time and rate limits against a real local exchange: a skewed clock earns -1021, is resynced, and only the
idempotent call is retried; a 429 and then a 418 with ``Retry-After`` become ``RateLimited`` and make every
account on the IP back off; the venue's own counts (headers, WebSocket-API ``rateLimits``) feed the budget."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from binance.exceptions import BinanceAPIException

from localex.clients import binance_async
from oms.model import Market, OrderStatus, PlaceOrder
from oms.venues import ClockSkew, RateLimited
from oms.venues.ratelimit import RateLimits
from tests.localex.conftest import LocalServer, start_server
from tests.venues.binance.conftest import Harness, server_config


def cmd(account: str, price: str) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol="BTC/USDT",
        side="buy",
        order_type="limit",
        qty="0.01",
        price=price,
        intent=str(time.time_ns()),
    ).with_client_order_id()


@pytest.fixture(scope="module")
def tight_server() -> Iterator[LocalServer]:
    """Spot request weight 400/min per IP; banned (418, 3 s) after 2 violations in a minute."""
    yield from start_server(server_config(spot_weight_per_minute=400, ban_after_violations=2, ban_seconds=3))


@pytest.fixture
async def tight(tight_server: LocalServer) -> AsyncIterator[Harness]:
    h = Harness(tight_server, limits=RateLimits(max_wait_s=0.5))
    try:
        yield h
    finally:
        await h.close()


async def test_clock_skew_resyncs_and_retries_only_idempotent_calls(harness: Harness):
    c = await harness.account(Market.SPOT)
    acct = str(c.ctx.account)
    clock = harness.clock(Market.SPOT)
    placed = await c.execution.place(cmd(acct, "1000.00"))
    resyncs = clock.resyncs
    clock.offset_ns += 5_000_000_000  # our clock runs 5 s ahead of the venue
    order = await c.execution.query_order("BTC/USDT", placed.client_order_id)  # -1021, resync, retried
    assert order.status is OrderStatus.NEW and clock.resyncs == resyncs + 1
    queries = [r for r in c.execution.session.log.records if r.op == "query"]
    assert [r.outcome for r in queries[-2:]] == ["error -1021", "ok"]
    clock.offset_ns += 5_000_000_000
    skewed = cmd(acct, "1000.00")
    with pytest.raises(ClockSkew) as info:
        await c.execution.place(skewed)  # a placement is not retried...
    assert info.value.code == -1021 and skewed.client_order_id in str(info.value) and acct in str(info.value)
    assert clock.resyncs == resyncs + 2
    assert c.execution.session.tracker.get(skewed.client_order_id).status is OrderStatus.REJECTED
    again = await c.execution.place(cmd(acct, "1000.00"))  # ...but the clock is right again for the next one
    assert again.status is OrderStatus.NEW
    assert sorted(o.client_order_id for o in await c.execution.open_orders("BTC/USDT")) == sorted(
        [placed.client_order_id, again.client_order_id]
    )


async def test_venue_counts_feed_the_budget(harness: Harness):
    c = await harness.account(Market.SPOT)
    acct = str(c.ctx.account)
    for _ in range(3):
        await c.execution.place(cmd(acct, "1000.00"))
    assert {r.path for r in c.execution.session.log.records if r.op == "place"} == {"ws"}
    budget = harness.limits.accounts[(acct, "spot")]
    used = budget.used()
    assert used[f"{acct} orders/10s"] >= 3  # from the WebSocket API's rateLimits (and our own count)
    await c.execution.balances()
    assert any(v > 0 for k, v in used.items() if "weight" in k)
    ip_weight = budget.ip.weight[60].count
    assert ip_weight >= 20  # X-MBX-USED-WEIGHT-1M / rateLimits REQUEST_WEIGHT adopted: at least our own requests


async def test_open_orders_of_every_symbol_are_charged_their_own_weight(harness: Harness):
    """Binance charges 80 for Spot's open orders without a symbol (6 with one): the budget must count that
    before sending, or 200 accounts' starts (each reads its open orders once) overrun the IP's minute."""
    c = await harness.account(Market.SPOT)
    budget = harness.limits.accounts[(str(c.ctx.account), "spot")]
    own = budget.weight[60]  # the account's window: only our own charges, never the venue's counts
    charged = []
    for symbol in ("BTC/USDT", None):
        for _ in range(3):  # again if the minute's window turned meanwhile
            before = own.count
            await c.execution.open_orders(symbol)
            if own.count > before:
                break
        charged.append(own.count - before)
    assert charged == [6, 80]
    assert {r.path for r in c.execution.session.log.records if r.op == "open_orders"} == {"ws"}


async def test_429_then_418_with_retry_after_back_off_every_account_on_the_ip(tight: Harness):
    a = await tight.account(Market.SPOT)
    b = await tight.account(Market.SPOT)
    raw = await binance_async(tight.server.url)  # another client on the same IP spends the weight
    try:
        with pytest.raises(BinanceAPIException):
            for _ in range(200):
                await raw.get_exchange_info()  # weight 20 each
        with pytest.raises(RateLimited) as first:
            await a.execution.balances()
        assert first.value.status == 429 and first.value.retry_after_s > 0
        assert str(a.ctx.account) in str(first.value)
        ip = tight.limits.accounts[(str(a.ctx.account), "spot")].ip
        assert ip.backoff_until_ns > time.time_ns()  # the whole IP waits for Retry-After...
        with pytest.raises(RateLimited, match="would wait"):
            await b.execution.balances()  # ...so the other account waits instead of earning a 429
        # the budget now knows the minute is spent (the venue's count was adopted) and would wait; a client
        # that does not care sends anyway, and after repeated 429s the IP is banned: 418 with Retry-After
        assert ip.weight[60].count > ip.weight[60].limit or ip.weight[60].limit <= 400
        banned = None
        for _ in range(6):
            ip.backoff_until_ns = 0
            ip.weight[60].count = 0
            try:
                await a.execution.balances()
            except RateLimited as exc:
                if exc.status == 418:
                    banned = exc
                    break
        assert banned is not None and 0 < banned.retry_after_s <= 3
    finally:
        await raw.close_connection()
