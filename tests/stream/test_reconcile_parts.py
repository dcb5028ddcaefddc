"""Reconciliation's parts through their real dependencies: what JetStream already holds (a real nats-server),
and the pacing of venue calls within a share of the IP's weight budget (the real rate-limit budgets, on a
simulated clock so that minutes pass at once)."""

from __future__ import annotations

import asyncio

import pytest

from oms.model import Fill, Market, OrderEvent, OrderEventKind, OrderStatus, Side
from oms.venues.binance.metadata import SPOT_CAPABILITIES, SPOT_METADATA, USDM_METADATA
from oms.venues.metadata import RateLimitRule, VenueMetadata
from oms.venues.ratelimit import AccountLimits, RateLimits
from stream.reconcile_history import AccountHistory
from stream.reconcile_pacing import WeightPacer, expected_weight
from tests.stream.reconcile_kit import SPOT, connect_bus, unique

T = 1_800_000_000_000_000_000


def fill(account: str, trade_id: str, event_ns: int, symbol: str = SPOT) -> Fill:
    return Fill(
        account=account, symbol=symbol, client_order_id="c1", venue_order_id="9", trade_id=trade_id, side=Side.BUY,
        price="60000", qty="0.001", event_ns=event_ns,
    )  # fmt: skip


@pytest.fixture
async def bus(nats_server, tmp_path):
    b = await connect_bus(nats_server, tmp_path / "outbox")
    try:
        yield b
    finally:
        await b.close()


async def test_last_fills_lists_every_trade_id_at_the_last_time_across_other_subjects(bus):
    acct = f"binance/{unique()}"
    other = f"binance/{unique()}"
    await bus.publisher.publish(fill(acct, "1", T - 5))
    await bus.nc.publish(f"trades.binance.{acct.split('/')[1]}.spot.BTC-USDT", b"not json")  # garbage: skipped
    await bus.js.publish(f"trades.binance.{acct.split('/')[1]}.spot.BTC-USDT", b"{]")
    for k in range(3):  # three fills of one taker order in one millisecond, far apart in the stream
        await bus.publisher.publish(fill(acct, f"1{k}", T))
        for j in range(40):
            await bus.publisher.publish(fill(other, f"{k}-{j}", T + j))
    assert await bus.publisher.flush()
    h = AccountHistory(bus.js, acct, Market.SPOT)
    last = await h.last_fills(SPOT)
    assert last.event_ns == T and last.trade_ids == {"10", "11", "12"}
    assert last.is_new(fill(acct, "13", T)) and not last.is_new(fill(acct, "11", T))
    assert last.is_new(fill(acct, "2", T + 1)) and not last.is_new(fill(acct, "1", T - 5))
    empty = await AccountHistory(bus.js, f"binance/{unique()}", Market.SPOT).last_fills(SPOT)
    assert empty.event_ns == -1 and empty.is_new(fill(acct, "1", 0))


async def test_order_states_keep_the_last_event_per_order_and_skip_garbage(bus):
    name = unique()
    acct = f"binance/{name}"

    def ev(coid: str, kind: OrderEventKind, status: OrderStatus, n: int) -> OrderEvent:
        return OrderEvent(account=acct, symbol=SPOT, client_order_id=coid, venue_order_id=f"v{coid}", kind=kind,
                          status=status, event_ns=T + n)  # fmt: skip

    await bus.publisher.publish(ev("a", OrderEventKind.ACCEPTED, OrderStatus.NEW, 1))
    await bus.publisher.publish(ev("b", OrderEventKind.ACCEPTED, OrderStatus.NEW, 2))
    await bus.js.publish(f"orders.binance.{name}.spot.BTC-USDT", b'{"type": "order_event", "account": 7}')
    await bus.publisher.publish(ev("a", OrderEventKind.CANCELED, OrderStatus.CANCELED, 3))
    assert await bus.publisher.flush()
    hist = await AccountHistory(bus.js, acct, Market.SPOT).order_states(0)
    assert {c: e.status for c, e in hist.last.items()} == {"a": OrderStatus.CANCELED, "b": OrderStatus.NEW}
    assert hist.by_venue_id == {"va": "a", "vb": "b"} and hist.undecodable == 1 and hist.read == 4
    info = await bus.js.stream_info("ORDERS")
    consumers = await bus.js.consumers_info("ORDERS")
    assert info.state.consumer_count == len(consumers) == 0  # the read leaves no consumer behind
    nothing = await AccountHistory(bus.js, f"binance/{unique()}", Market.SPOT).order_states(0)
    assert nothing.last == {} and nothing.read == 0


class SimClock:
    """Time that passes only when someone sleeps (so a minute's window resets at once)."""

    def __init__(self, start_ns: int = T):
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += max(1, int(s * 1e9))
        await asyncio.sleep(0)


async def test_pacer_holds_many_accounts_under_the_share_of_the_ip_budget():
    clock = SimClock()
    meta = VenueMetadata(
        exchange="binance", market=Market.SPOT, capabilities=SPOT_CAPABILITIES,
        rate_limits=(RateLimitRule(kind="weight", interval_s=60, limit=1000, scope="ip"),),
    )  # fmt: skip
    hub = RateLimits(now_ns=clock, sleep=clock.sleep, max_wait_s=600)
    limits = AccountLimits(weight_per_minute=1000, orders_per_10s=10, orders_per_day=1000)
    budgets = [hub.account(f"binance/a{k}", "spot", limits, meta) for k in range(200)]
    pacer = WeightPacer(0.8, now_ns=clock, sleep=clock.sleep)
    done = []

    async def account(b) -> None:
        for weight in (6, 20, 20):  # open orders on a symbol, balances, fills
            async with pacer.call(b, weight):
                await b.acquire("GET /api/v3/x", weight=weight)
                await asyncio.sleep(0)
        done.append(b.account)

    start = clock.now
    await asyncio.gather(*(account(b) for b in budgets))
    assert len(done) == 200 and pacer.calls == 600
    assert 0.7 < pacer.peak_share <= 0.8  # close to the share, never above it
    minutes = (clock.now - start) / 60e9
    assert 200 * 46 / 800 - 1 <= minutes <= 200 * 46 / 800 + 1  # as fast as the share allows
    # without the pacer, the IP budget's own background share holds reads there too; trading requests (which
    # the pacer never sees) may fill the window to its limit
    for trading, peak in ((False, 0.8), (True, 1.0)):
        clock2 = SimClock()
        hub2 = RateLimits(now_ns=clock2, sleep=clock2.sleep, max_wait_s=600)
        raw = [hub2.account(f"binance/a{k}", "spot", limits, meta) for k in range(200)]
        await asyncio.gather(*(b.acquire("GET /api/v3/x", weight=20, trading=trading) for b in raw))
        ip = next(iter(hub2.ips.values()))
        assert max(w.count for w in ip.weight.values()) / 1000 == peak


def test_expected_weights_come_from_the_venue_metadata():
    assert expected_weight(SPOT_METADATA, Market.SPOT, "open_orders") == 6
    assert expected_weight(SPOT_METADATA, Market.SPOT, "open_orders_all") == 80
    assert expected_weight(SPOT_METADATA, Market.SPOT, "balances") == 20
    assert expected_weight(USDM_METADATA, Market.USDM, "fills") == 5
    assert expected_weight(SPOT_METADATA, Market.SPOT, "positions") == 0
    assert expected_weight(None, Market.SPOT, "fills") == 20
    with pytest.raises(ValueError, match="share"):
        WeightPacer(1.5)
