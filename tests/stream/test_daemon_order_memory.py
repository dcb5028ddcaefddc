"""The daemon's memory of finished orders stays bounded while a quoting strategy cancels and re-quotes on every
trade (stream.orders): against the real local exchange and nats-server, with a tiny window and cap, the
gateway's tracker and the strategy runner's per-order maps hold the open orders and a few finished ones,
however many orders went through, and the strategy keeps quoting with its reservations matching its orders."""

from __future__ import annotations

from kernels.state import A_OPEN_ORDERS
from oms.model import OrderStatus, Side
from tests.stream.conftest import place, unique, until

CAP = 12  # finished orders kept at most (finished_orders_max)
EVERY = 2  # finishes between two sweeps (the daemon's default is 64: smaller here so the bound is tight)


async def test_a_quoting_strategy_leaves_a_bounded_memory_and_keeps_quoting(bench):
    name, taker = unique("mm"), unique("taker")
    strategies = {
        "mm_mem": {"account": name, "kind": "market_making", "exchange": "binance", "market": "spot",
                   "symbols": ["BTC/USDT"], "params": {"half_spread_bps": 50, "order_usdt": 200}},
    }  # fmt: skip
    bench.write([name, taker], strategies=strategies)
    d = bench.daemon(finished_order_retention_s=0.3, finished_orders_max=CAP)
    tracker = d.gateway.orders
    assert tracker.retention_ns == 300_000_000 and tracker.max_finished == CAP  # from the daemon's settings
    tracker.set_limits(0.3, CAP, EVERY)
    await d.start()
    try:
        [hosted] = d.strategies.hosted
        mm = d.sessions[bench.account(name)].number
        taker_acct = bench.account(taker)
        for n in range(80):  # every trade of the taker is a tick: the strategy cancels its quotes and re-quotes
            side = Side.BUY if n % 2 == 0 else Side.SELL
            [r] = await d.router.execute([place(taker_acct, "0.001", None, side=side, intent=f"take-{n}")])
            assert r.ok, r
            assert sum(1 for r in tracker if not r.is_open) <= CAP + EVERY - 1
            if tracker.forgotten >= 100:
                break
        assert tracker.forgotten >= 100, (
            f"only {tracker.forgotten} orders forgotten after {d.strategies.intents} intents"
        )

        def settled():  # the ticks' commands all decided: the runner knows no order the gateway does not
            known = {r.client_order_id for r in tracker}
            return set(d.strategies._orders) <= known and set(hosted.by_order) <= known

        await until(settled, timeout=30, what="the strategy's commands in flight to be decided")
        assert sum(1 for r in tracker if not r.is_open) <= CAP + EVERY - 1
        assert len(tracker) <= len(tracker.open_orders(mm)) + CAP + EVERY - 1
        assert {c for c, _ in hosted.tags.values()} <= {r.client_order_id for r in tracker}
        assert d.strategies._seen <= {t for r in tracker for t in r.trade_ids}
        assert set(hosted.also) <= set(hosted.by_order)  # (two ticks of one timestamp: one order, two tags)

        def quoting_and_reserved():  # a fresh quote rests at the venue; reservations are those of the open orders
            live = [r for r in tracker.open_orders(mm) if r.status is OrderStatus.NEW]
            reserved = int(d.wiring.state.acc[A_OPEN_ORDERS, mm])
            return live and reserved == sum(1 for r in tracker.open_orders(mm) if r.reserved)

        await until(quoting_and_reserved, timeout=30, what="a resting quote and the reservations of the open orders")
        execution = next(iter(d.sessions[bench.account(name)].links.values())).clients.execution
        ours = {r.client_order_id for r in tracker.open_orders(mm)}
        resting = {o.client_order_id for o in await execution.open_orders("BTC/USDT")}
        assert ours & resting, (ours, resting)
        assert d.strategies.dropped["bad_intent"] == 0
        scraped = d.metrics.render().decode()
        assert f"oms_finished_orders {float(tracker.finished)}" in scraped
        early = tracker.forgotten_early
        assert f'oms_forgotten_orders{{why="cap"}} {float(early)}' in scraped
        assert f'oms_forgotten_orders{{why="window"}} {float(tracker.forgotten - early)}' in scraped
    finally:
        await d.stop()
