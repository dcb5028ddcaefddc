"""Smart routing through the daemon (stream.routing), over NATS against the real local exchange: a placement that
names other accounts (``PlaceOrder.route``) goes to the one the routing kernel scores best from its book, fee,
balance and rate-limit headroom; the reply names it; a retry places nothing; no eligible account is a refusal
with each account's reason."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from oms.model import Market, OrderStatus, Side
from tests.stream.conftest import place, request, unique


def fund(bench, name: str, **spot: str) -> None:
    """``name`` on the exchange with these Spot balances (before ``bench.write``, which then keeps them)."""
    acct = bench.exchange.new_account(spot=dict(spot), futures={"USDT": "1000"})
    bench.accounts[name] = acct
    stem = f"OMS_KEY_BINANCE_{name.upper()}"
    bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = acct[1], acct[2]


async def test_a_routed_order_goes_to_the_account_that_can_take_it_and_a_retry_places_nothing(bench, nc):
    poor, rich = unique("poor"), unique("rich")
    fund(bench, poor, USDT="10")  # cannot pay for 0.01 BTC, holds none to sell
    fund(bench, rich, USDT="100000", BTC="1")
    bench.write([poor, rich])
    home, other = bench.account(poor), bench.account(rich)
    d = bench.daemon()
    await d.start()
    try:
        price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))  # marketable
        buy = msgspec.structs.replace(place(home, "0.01", price, intent="routed-buy"), route=(other,))
        [res] = (await request(nc, home, buy)).results
        assert res.ok and res.account == other, res
        coid = res.client_order_id
        rich_exec = d.sessions[other].links[Market.SPOT].clients.execution
        order = await rich_exec.query_order("BTC/USDT", coid)
        assert order.status is OrderStatus.FILLED and Decimal(order.filled_qty) == Decimal("0.01")
        assert d.gateway.orders.get(coid).cmd.account == other
        # the same command again: answered from the order it became, nothing sent anywhere
        [again] = (await request(nc, home, buy)).results
        assert again.ok and again.client_order_id == coid and again.account == other, again
        assert int(d.metrics.orders.labels(other)._value.get()) == 1
        assert int(d.metrics.orders.labels(home)._value.get()) == 0

        # a market sell: only the account holding BTC can
        sell = msgspec.structs.replace(place(home, "0.005", None, side=Side.SELL, intent="routed-sell"), route=(other,))
        [res] = (await request(nc, home, sell)).results
        assert res.ok and res.account == other and res.status is OrderStatus.FILLED, res

        # nobody holds 5 BTC to sell: refused, each account's reason named, nothing placed
        low = str((bench.ticker() * Decimal("0.98")).quantize(Decimal("0.01")))
        big = place(home, "5", low, side=Side.SELL, intent="too-big")
        big = msgspec.structs.replace(big, route=(other,))
        [no] = (await request(nc, home, big)).results
        assert not no.ok and no.code == "route:no_candidate", no
        assert home in no.reason and other in no.reason and "balance too small" in no.reason, no.reason
        assert d.gateway.orders.get(no.client_order_id) is None
    finally:
        await d.stop()


async def test_an_account_that_is_not_trading_is_not_routed_to(bench, nc):
    a, b = unique("route"), unique("route")
    bench.write([a, b])
    home, other = bench.account(a), bench.account(b)
    d = bench.daemon()
    await d.start()
    try:
        d.sessions[other].trading = False  # as while it reconciles
        price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        cmd = msgspec.structs.replace(place(home, "0.01", price, intent="stay-home"), route=(other,))
        [res] = (await request(nc, home, cmd)).results
        assert res.ok and res.account == home, res
        d.sessions[home].trading = False
        [res2] = (await request(nc, home, msgspec.structs.replace(cmd, intent="x"))).results
        assert not res2.ok and res2.code == "not_trading", res2  # the subject's own account refuses first
    finally:
        d.sessions[home].trading = d.sessions[other].trading = True
        await d.stop()
