"""Amend through the daemon over NATS, against the local exchange: on Spot a lower quantity in place (Binance's
``order.amend.keepPriority``, same order ids), a new price as a cancel-replace (``order.cancelReplace``: a
new order for the remainder, linked to the old one, which ends cancelled), on USD-M a new price (``PUT
/fapi/v1/order``); each amended order is one ``amended`` event in JetStream and a smaller or re-checked risk
reservation. An amend the risk kernel refuses, or the venue cannot do, leaves the order as it was, with a
reason."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from decimal import ROUND_UP, Decimal

import pytest

from kernels.state import P_OPEN_BUY
from localex import clients
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.model import AmendOrder, Market, OrderEvent, OrderEventKind, OrderStatus, OrderType, PlaceOrder, Side
from oms.services import free_port
from stream.replace import replacement_id as replace_id
from tests.localex.conftest import LocalServer, start_server
from tests.stream.conftest import place, request, unique, until
from tests.stream.test_daemon_orders import events

PERP = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def exchange() -> Iterator[LocalServer]:
    """This module's local exchange (it overrides the bench's): the replay at the speed of history, so the
    ladder stays put while a test makes its own order the best bid and fills part of it."""
    limits = RateLimitConfig(spot_weight_per_minute=100_000, futures_weight_per_minute=100_000,
                             spot_orders_per_10s=10_000, futures_orders_per_10s=10_000,
                             futures_orders_per_minute=100_000)  # fmt: skip
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, speed=1.0, replay_interval_s=0.1))


def price_at(bench, frac: str, futures: bool = False) -> str:
    mid = futures_ticker(bench) if futures else bench.ticker()
    return str((mid * Decimal(frac)).quantize(Decimal("0.1")))


def futures_ticker(bench) -> Decimal:
    url = f"{bench.exchange.url}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT"
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.loads(r.read())
    return (Decimal(doc["bidPrice"]) + Decimal(doc["askPrice"])) / 2


def open_units(d, acct: str, symbol: str) -> int:
    s = d.sessions[acct]
    i, _ = d.wiring.instruments.lookup("binance", symbol)
    return int(d.wiring.state.pos[P_OPEN_BUY, s.number, i, 0])


async def amended_events(nc, name: str, market: str, sym: str, coid: str) -> list[OrderEvent]:
    evs = await events(nc, "ORDERS", f"orders.binance.{name}.{market}.{sym}")
    return [
        e for e in evs if isinstance(e, OrderEvent) and e.client_order_id == coid and e.kind is OrderEventKind.AMENDED
    ]


async def rest_inside(bench, nc, acct: str, seller: str, qty: str, intent: str):
    """A BUY resting inside the spread through the daemon, and the seller's client that can fill it: (its price,
    its client order id, the seller's python-binance client)."""
    bid, ask = book(bench)
    inside = str(((bid + ask) / 2 - (ask - bid) / 5).quantize(Decimal("0.1")))
    cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty=qty,
                     price=inside, intent=intent)  # fmt: skip
    [res] = (await request(nc, acct, cmd)).results
    assert res.ok and res.status is OrderStatus.NEW, res
    _, key, secret = bench.accounts[seller]
    return inside, res.client_order_id, clients.binance_sync(bench.exchange.url, key, secret)


async def test_spot_amend_lowers_the_quantity_in_place_and_refusals_leave_the_order(bench, nc):
    name = unique("amend")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        price = price_at(bench, "0.97")
        [res] = (await request(nc, acct, place(acct, "0.03", price, intent="rest"))).results
        assert res.ok and res.status is OrderStatus.NEW, res
        coid = res.client_order_id
        rec = d.gateway.orders.get(coid)
        before_units, venue_id = open_units(d, acct, "BTC/USDT"), rec.venue_order_id
        down = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.02")
        [r] = (await request(nc, acct, down)).results
        assert r.ok and r.status is OrderStatus.NEW, r
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        order = await execution.query_order("BTC/USDT", coid)
        assert Decimal(order.qty) == Decimal("0.02") and order.venue_order_id == venue_id  # in place
        assert rec.qty * 3 == before_units * 2 and open_units(d, acct, "BTC/USDT") * 3 == before_units * 2
        [ev] = await until(lambda: amended_events(nc, name, "spot", "BTC-USDT", coid), what="the amended event")
        assert Decimal(ev.qty) == Decimal("0.02")

        # more than the risk limits allow (max_order_notional 50,000 USDT): the kernel's reason, nothing sent
        qty = str((Decimal(60000) / bench.ticker()).quantize(Decimal("0.01")) + 1)
        huge = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty=qty)
        [r] = (await request(nc, acct, huge)).results
        assert not r.ok and r.code.startswith("risk:"), r
        assert rec.qty * 3 == before_units * 2 and open_units(d, acct, "BTC/USDT") * 3 == before_units * 2
        assert Decimal((await execution.query_order("BTC/USDT", coid)).qty) == Decimal("0.02")
        rejected = [e for e in await events(nc, "ORDERS", f"orders.binance.{name}.spot.BTC-USDT")
                    if isinstance(e, OrderEvent) and e.kind is OrderEventKind.AMEND_REJECTED]  # fmt: skip
        assert len(rejected) == 1 and rejected[0].reason.startswith("risk:"), rejected
        # not the daemon's order, or a finished one
        other = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id="nobody-1", side=Side.BUY, qty="0.01")
        [r] = (await request(nc, acct, other)).results
        assert r.code == "unknown_order", r
    finally:
        await d.stop()


async def test_usdm_amend_moves_the_price_through_the_venues_modify(bench, nc):
    name = unique("amendf")
    bench.write([name], usdm=(PERP,))
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        price = price_at(bench, "0.97", futures=True)
        qty = str((Decimal(300) / Decimal(price)).quantize(Decimal("0.001"), ROUND_UP))  # above the 100 USDT minimum
        cmd = PlaceOrder(account=acct, symbol=PERP, side=Side.BUY, order_type=OrderType.LIMIT, qty=qty,
                         price=price, intent="perp-rest")  # fmt: skip
        [res] = (await request(nc, acct, cmd)).results
        assert res.ok and res.status is OrderStatus.NEW, res
        coid = res.client_order_id
        new_price = price_at(bench, "0.96", futures=True)
        amend = AmendOrder(account=acct, symbol=PERP, client_order_id=coid, side=Side.BUY, price=new_price)
        [r] = (await request(nc, acct, amend)).results
        assert r.ok and r.status is OrderStatus.NEW, r
        execution = d.sessions[acct].links[Market.USDM].clients.execution
        order = await execution.query_order(PERP, coid)
        assert Decimal(order.price) == Decimal(new_price) and Decimal(order.qty) == Decimal(qty)
        assert Decimal(d.gateway.orders.get(coid).cmd.price) == Decimal(new_price)
        [ev] = await until(lambda: amended_events(nc, name, "usdm", "BTC-USDT", coid), what="amended event")
        assert Decimal(ev.price) == Decimal(new_price)
        assert open_units(d, acct, PERP) == d.gateway.orders.get(coid).qty  # re-checked and reserved once
    finally:
        await d.stop()


def book(bench, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    url = f"{bench.exchange.url}/api/v3/ticker/bookTicker?symbol={symbol}"
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.loads(r.read())
    return Decimal(doc["bidPrice"]), Decimal(doc["askPrice"])


async def test_spot_new_price_is_a_cancel_replace_for_the_remainder(bench, nc):
    """A partly filled Spot order moved to a new price: the old one ends CANCELED with its fill (in positions
    and JetStream), the new one (a derived client order id, same account and strategy) rests for the remainder
    with the risk reservation; the same amend again places nothing; a replacement the risk kernel refuses is
    never sent and the order stays as it was."""
    name, seller = unique("repl"), unique("replcp")
    bench.write([name, seller])
    acct = bench.account(name)
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        bid, ask = book(bench)
        inside = str(((bid + ask) / 2 - (ask - bid) / 5).quantize(Decimal("0.1")))  # the best bid, above the ladder
        cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.03",
                         price=inside, strategy="mm_probe", intent="replace-me")  # fmt: skip
        [res] = (await request(nc, acct, cmd)).results
        assert res.ok and res.status is OrderStatus.NEW, res
        old = res.client_order_id
        _, key, secret = bench.accounts[seller]
        cp = clients.binance_sync(bench.exchange.url, key, secret)
        sold = await asyncio.to_thread(cp.create_order, symbol="BTCUSDT", side="SELL", type="LIMIT",
                                       timeInForce="IOC", quantity="0.01", price=inside)  # fmt: skip
        assert Decimal(sold["executedQty"]) == Decimal("0.01"), sold  # against the daemon's order, the best bid
        rec = d.gateway.orders.get(old)
        ins = d.wiring.instruments.lookup("binance", "BTC/USDT")[1]
        await until(lambda: rec.filled == ins.qty("0.01"), what="the partial fill in the gateway")

        far = price_at(bench, "0.96")
        move = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=old, side=Side.BUY, price=far)
        [r] = (await request(nc, acct, move)).results
        assert r.ok and r.status is OrderStatus.NEW and r.client_order_id != old and old in r.reason, r
        new = r.client_order_id
        fresh = d.gateway.orders.get(new)
        assert rec.status is OrderStatus.CANCELED and rec.replaced_by == new and rec.filled == ins.qty("0.01")
        assert fresh.replaces == old and fresh.qty == ins.qty("0.02") and Decimal(fresh.cmd.price) == Decimal(far)
        assert fresh.cmd.strategy == "mm_probe" and fresh.cmd.account == acct and fresh.reserved
        assert open_units(d, acct, "BTC/USDT") == fresh.qty  # the replacement's reservation, the old one's gone
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        venue_old, venue_new = (
            await execution.query_order("BTC/USDT", old),
            await execution.query_order("BTC/USDT", new),
        )
        assert venue_old.status is OrderStatus.CANCELED and Decimal(venue_old.filled_qty) == Decimal("0.01")
        assert venue_new.status is OrderStatus.NEW and Decimal(venue_new.qty) == Decimal("0.02")
        assert Decimal(venue_new.price) == Decimal(far)

        [ev] = await until(lambda: amended_events(nc, name, "spot", "BTC-USDT", old), what="the amended event")
        assert new in ev.reason and ev.status is OrderStatus.CANCELED
        assert (Decimal(ev.qty), Decimal(ev.price), Decimal(ev.filled_qty)) == (Decimal("0.03"), Decimal(far),
                                                                                  Decimal("0.01"))  # fmt: skip
        fills = [e for e in await events(nc, "TRADES", f"trades.binance.{name}.spot.BTC-USDT")]
        assert [(f.client_order_id, Decimal(f.qty)) for f in fills] == [(old, Decimal("0.01"))]

        # the same amend again (a retry): answered with the replacement, nothing sent
        [again] = (await request(nc, acct, move)).results
        assert again.ok and again.client_order_id == new and again.status is OrderStatus.NEW, again
        mine = [o for o in await execution.open_orders("BTC/USDT") if o.client_order_id in (old, new)]
        assert [o.client_order_id for o in mine] == [new]

        # a replacement the risk kernel refuses (max_order_notional 50,000 USDT): nothing sent, order unchanged
        qty = str((Decimal(60000) / Decimal(far)).quantize(Decimal("0.01")) + 1)
        huge = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=new, side=Side.BUY, qty=qty,
                          price=price_at(bench, "0.95"))  # fmt: skip
        [r] = (await request(nc, acct, huge)).results
        assert not r.ok and r.code.startswith("risk:"), r
        assert fresh.status is OrderStatus.NEW and fresh.reserved and open_units(d, acct, "BTC/USDT") == fresh.qty
        mine = [o.client_order_id for o in await execution.open_orders("BTC/USDT")]
        assert mine == [new]
    finally:
        await d.stop()


async def test_spot_replace_with_a_fill_racing_it_keeps_the_total(bench, nc):
    """A fill of the old order at the venue that the daemon has not seen when it decides the cancel-replace: the
    cancel's answer shows it, the replacement is lowered in place, and old fills plus the replacement stay the
    quantity asked for; the fill is the old order's, in positions and JetStream. The same amend after a restart
    places nothing."""
    name, seller = unique("race"), unique("racecp")
    bench.write([name, seller])
    acct = bench.account(name)
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        inside, old, cp = await rest_inside(bench, nc, acct, seller, "0.03", "race-me")
        sold = []

        async def fill_first(c):  # blocks the daemon's loop: the fill's stream event waits until after the decision
            if isinstance(c, AmendOrder) and c.client_order_id == old and not sold:
                sold.append(cp.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="IOC",
                                            quantity="0.01", price=inside))  # fmt: skip
            return c

        d.router.hooks.append(fill_first)
        far = price_at(bench, "0.96")
        move = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=old, side=Side.BUY, price=far)
        [r] = (await request(nc, acct, move)).results
        assert Decimal(sold[0]["executedQty"]) == Decimal("0.01"), sold
        assert r.ok and r.client_order_id != old, r
        new = r.client_order_id
        ins = d.wiring.instruments.lookup("binance", "BTC/USDT")[1]
        rec, fresh = d.gateway.orders.get(old), d.gateway.orders.get(new)
        await until(lambda: rec.filled == ins.qty("0.01"), what="the racing fill on the old order")
        await until(lambda: fresh.qty == ins.qty("0.02") and not d.gateway.amends, what="the replacement lowered")
        assert rec.status is OrderStatus.CANCELED and fresh.status is OrderStatus.NEW
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        venue_new = await execution.query_order("BTC/USDT", new)
        assert Decimal(venue_new.qty) == Decimal("0.02") and Decimal(venue_new.price) == Decimal(far)
        assert open_units(d, acct, "BTC/USDT") == ins.qty("0.02")
        fills = await until(lambda: events(nc, "TRADES", f"trades.binance.{name}.spot.BTC-USDT"), what="the fill")
        assert [(f.client_order_id, Decimal(f.qty)) for f in fills] == [(old, Decimal("0.01"))]
    finally:
        await d.stop()

    # the same amend after a restart: the replacement (adopted from the venue) answers it, nothing is placed
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        [again] = (await request(nc, acct, move)).results
        assert again.ok and again.client_order_id == new and again.status is OrderStatus.NEW, again
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        assert [o.client_order_id for o in await execution.open_orders("BTC/USDT")] == [new]
    finally:
        await d.stop()


async def test_spot_replace_refused_by_the_venue_leaves_nothing_twice(bench, nc):
    """-2022: the old order filled completely at the venue before the cancel-replace reached it (the daemon had
    not seen the fill): nothing is placed, the replacement ends rejected, the old order FILLED with its fill.
    -2021: the old order (post-only) is cancelled but its replacement would take liquidity and is refused: the
    old order ends CANCELED, the replacement rejected, and neither holds a reservation."""
    name, seller = unique("refu"), unique("refucp")
    bench.write([name, seller])
    acct = bench.account(name)
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        ins = d.wiring.instruments.lookup("binance", "BTC/USDT")[1]
        inside, old, cp = await rest_inside(bench, nc, acct, seller, "0.02", "fill-me")
        sold = []

        async def fill_all(c):  # blocks the daemon's loop: the fill is at the venue, not yet in the gateway
            if isinstance(c, AmendOrder) and c.client_order_id == old and not sold:
                sold.append(cp.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="IOC",
                                            quantity="0.02", price=inside))  # fmt: skip
            return c

        d.router.hooks.append(fill_all)
        move = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=old, side=Side.BUY,
                          price=price_at(bench, "0.96"))  # fmt: skip
        [r] = (await request(nc, acct, move)).results
        assert Decimal(sold[0]["executedQty"]) == Decimal("0.02"), sold
        assert not r.ok and r.code == "venue:-2022" and r.client_order_id == old, r
        rec = d.gateway.orders.get(old)
        await until(lambda: rec.status is OrderStatus.FILLED and rec.filled == ins.qty("0.02"), what="the fill")
        replacement = d.gateway.orders.get(replace_id(move))
        assert replacement.status is OrderStatus.REJECTED and not replacement.reserved
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        assert [o.client_order_id for o in await execution.open_orders("BTC/USDT")] == []
        assert open_units(d, acct, "BTC/USDT") == 0

        maker = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.01",
                           price=price_at(bench, "0.97"), post_only=True, intent="maker")  # fmt: skip
        [res] = (await request(nc, acct, maker)).results
        assert res.ok and res.status is OrderStatus.NEW, res
        taker_price = str((book(bench)[1] * Decimal("1.001")).quantize(Decimal("0.1")))  # above the best ask
        cross = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=res.client_order_id, side=Side.BUY,
                           price=taker_price)  # fmt: skip
        [r] = (await request(nc, acct, cross)).results
        assert not r.ok and r.code == "venue:-2021", r
        rec = d.gateway.orders.get(res.client_order_id)
        await until(lambda: rec.status is OrderStatus.CANCELED, what="the old post-only order cancelled")
        assert d.gateway.orders.get(replace_id(cross)).status is OrderStatus.REJECTED
        assert open_units(d, acct, "BTC/USDT") == 0 and not rec.reserved
        assert [o.client_order_id for o in await execution.open_orders("BTC/USDT")] == []
    finally:
        await d.stop()


async def test_spot_stop_limit_new_price_is_replaced_with_its_stop(bench, nc):
    """A resting Spot stop-limit moved to a new limit price: the replacement is a stop-limit again with the same
    trigger price, at the venue and in the gateway (cancelReplace carries the whole order, not just a price)."""
    name = unique("stoprepl")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        stop, limit, moved = price_at(bench, "1.02"), price_at(bench, "1.025"), price_at(bench, "1.03")
        cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.STOP_LIMIT, qty="0.01",
                         price=limit, stop_price=stop, intent="stop-replace")  # fmt: skip
        [res] = (await request(nc, acct, cmd)).results
        assert res.ok and res.status is OrderStatus.NEW, res
        old = res.client_order_id
        move = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=old, side=Side.BUY, price=moved)
        [r] = (await request(nc, acct, move)).results
        assert r.ok and r.status is OrderStatus.NEW and r.client_order_id != old, r
        fresh = d.gateway.orders.get(r.client_order_id)
        assert fresh.cmd.order_type is OrderType.STOP_LIMIT and Decimal(fresh.cmd.stop_price) == Decimal(stop)
        execution = d.sessions[acct].links[Market.SPOT].clients.execution
        venue_old = await execution.query_order("BTC/USDT", old)
        venue_new = await execution.query_order("BTC/USDT", r.client_order_id)
        assert venue_old.status is OrderStatus.CANCELED
        assert venue_new.status is OrderStatus.NEW and venue_new.order_type is OrderType.STOP_LIMIT
        assert (Decimal(venue_new.price), Decimal(venue_new.stop_price), Decimal(venue_new.qty)) == (
            Decimal(moved), Decimal(stop), Decimal("0.01"))  # fmt: skip
    finally:
        await d.stop()
