"""Amend through the daemon over NATS, against the local exchange: on Spot a lower quantity in place (Binance's
``order.amend.keepPriority``, same order ids), on USD-M a new price (``PUT /fapi/v1/order``); each amended
order is one ``amended`` event in JetStream and a smaller or re-checked risk reservation. An amend the risk
kernel refuses, or the venue cannot do, leaves the order as it was, with a reason."""

from __future__ import annotations

import json
import urllib.request
from decimal import ROUND_UP, Decimal

import yaml

from kernels.state import P_OPEN_BUY
from oms.model import AmendOrder, Market, OrderEvent, OrderEventKind, OrderStatus, OrderType, PlaceOrder, Side
from tests.stream.conftest import place, request, unique, until
from tests.stream.test_daemon_orders import events

PERP = "BTC/USDT:USDT"


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

        # a new price is a new order on Binance Spot: refused by the connector, the order unchanged
        repriced = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY,
                              price=price_at(bench, "0.96"))  # fmt: skip
        [r] = (await request(nc, acct, repriced)).results
        assert not r.ok and r.code == "venue:unsupported" and coid in r.reason, r
        # more than the risk limits allow (max_order_notional 50,000 USDT): the kernel's reason, nothing sent
        qty = str((Decimal(60000) / bench.ticker()).quantize(Decimal("0.01")) + 1)
        huge = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty=qty)
        [r] = (await request(nc, acct, huge)).results
        assert not r.ok and r.code.startswith("risk:"), r
        assert rec.qty * 3 == before_units * 2 and open_units(d, acct, "BTC/USDT") * 3 == before_units * 2
        assert Decimal((await execution.query_order("BTC/USDT", coid)).qty) == Decimal("0.02")
        rejected = [e for e in await events(nc, "ORDERS", f"orders.binance.{name}.spot.BTC-USDT")
                    if isinstance(e, OrderEvent) and e.kind is OrderEventKind.AMEND_REJECTED]  # fmt: skip
        assert len(rejected) == 2 and {e.reason.split(":")[0] for e in rejected} == {"venue", "risk"}
        # not the daemon's order, or a finished one
        other = AmendOrder(account=acct, symbol="BTC/USDT", client_order_id="nobody-1", side=Side.BUY, qty="0.01")
        [r] = (await request(nc, acct, other)).results
        assert r.code == "unknown_order", r
    finally:
        await d.stop()


async def test_usdm_amend_moves_the_price_through_the_venues_modify(bench, nc):
    name = unique("amendf")
    cfg = bench.write([name])
    doc = yaml.safe_load((cfg / "accounts.yaml").read_text())
    doc["accounts"]["binance"][name]["futures_enabled"] = True
    (cfg / "accounts.yaml").write_text(yaml.safe_dump(doc))
    doc = yaml.safe_load((cfg / "stream.yaml").read_text())
    doc["daemon"]["markets"]["binance"]["usdm"] = [PERP]
    (cfg / "stream.yaml").write_text(yaml.safe_dump(doc))
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
