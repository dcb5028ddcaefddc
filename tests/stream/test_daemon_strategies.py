"""A strategy of strategies.yaml, bound to its account by account_routing, hosted by the daemon: live trades
drive its compiled callbacks and its intents reach the exchange through the gateway (risk included)."""

from __future__ import annotations

from oms.model import OrderStatus
from tests.stream.conftest import place, unique, until


async def test_market_making_quotes_reach_the_exchange_through_the_gateway(bench):
    name, taker = unique("mm"), unique("taker")
    strategies = {
        "mm_test": {"account": name, "kind": "market_making", "exchange": "binance", "market": "spot",
                    "symbols": ["BTC/USDT"], "params": {"half_spread_bps": 50, "order_usdt": 200}},
    }  # fmt: skip
    bench.write([name, taker], strategies=strategies)
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        [hosted] = d.strategies.hosted
        assert hosted.name == "mm_test" and hosted.account == acct
        # another account trades at the market: the public trade reaches the strategy as a market event
        [r] = await d.router.execute([place(bench.account(taker), "0.002", None, intent="take")])
        assert r.ok, r

        def quoted():
            return [r for r in d.gateway.orders._orders.values()
                    if r.cmd.strategy == "mm_test" and r.status is OrderStatus.NEW]  # fmt: skip

        live = await until(quoted, timeout=60, what="a quote of the strategy resting at the exchange")
        rec = live[0]
        assert rec.cmd.post_only and rec.cmd.intent.startswith("mm_test:")
        execution = next(iter(d.sessions[acct].links.values())).clients.execution
        await until(lambda: _at_exchange(execution, d), timeout=30, what="the exchange to list a quote")
        assert d.strategies.intents > 0
    finally:
        await d.stop()


async def _at_exchange(execution, d) -> bool:
    ours = {r.client_order_id for r in d.gateway.orders._orders.values() if r.cmd.strategy == "mm_test"}
    return any(o.client_order_id in ours for o in await execution.open_orders("BTC/USDT"))


async def test_a_bar_driven_strategy_quotes_from_the_replayed_book_without_any_trade(bench):
    """``bar_seconds``: the local exchange's replay moves the books while nobody trades; the strategy still gets
    a BAR event (OHLC of the mid) every interval and quotes."""
    name = unique("mmbar")
    strategies = {
        "mm_bars": {"account": name, "kind": "market_making", "exchange": "binance", "market": "spot",
                    "symbols": ["BTC/USDT"], "params": {"half_spread_bps": 50, "order_usdt": 200},
                    "bar_seconds": 1},
    }  # fmt: skip
    bench.write([name], strategies=strategies)
    d = bench.daemon()
    await d.start()
    try:
        [hosted] = d.strategies.hosted
        assert hosted.bar_seconds == 1
        [clock] = d.strategies.clocks
        await until(lambda: clock.emitted >= 2, timeout=30, what="two bars built from the book's mid")

        def quoted():
            return [r for r in d.gateway.orders._orders.values()
                    if r.cmd.strategy == "mm_bars" and r.status is OrderStatus.NEW]  # fmt: skip

        live = await until(quoted, timeout=30, what="a quote of the bar-driven strategy at the exchange")
        assert live[0].cmd.intent.startswith("mm_bars:") and live[0].cmd.post_only
    finally:
        await d.stop()
