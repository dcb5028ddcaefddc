"""Spot cancel-replace and amend keep priority on the local exchange, against Binance's documentation
(binance-spot-api-docs rest-api.md "Cancel an Existing Order and Send a New Order", "Order Amend Keep Priority";
web-socket-api.md ``order.cancelReplace``, ``order.amend.keepPriority``): REST and the WebSocket API answer alike,
an amend lowers the quantity in place (same order id, same place in the queue, the lock released), and what
Binance refuses is refused with its codes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from localex.engine.types import OrderRequest
from localex.server.app import server_state
from tests.localex.rest_support import Ctx, call, signed


def on_server(server, fn):
    async def run():
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), server.loop).result(10)


def failing(c: Ctx, method: str, path: str, status: int = 400, **params: object) -> dict:
    got, body = call(c.url + path + "?" + signed(c.secret, params), method, {"X-MBX-APIKEY": c.key})
    assert got == status, body
    return body  # type: ignore[return-value]


def low_price(c: Ctx) -> str:
    bid = Decimal(c.pub("/api/v3/ticker/bookTicker", symbol="BTCUSDT")["bidPrice"])  # type: ignore[index]
    return f"{bid * Decimal('0.9'):.2f}"


def limit(c: Ctx, price: str, qty: str, coid: str) -> dict:
    return c.sig(
        "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty,
        price=price, newClientOrderId=coid, newOrderRespType="RESULT",
    )  # type: ignore[return-value]  # fmt: skip


def test_cancel_replace_over_rest(server):
    c = Ctx(server)
    price = low_price(c)
    first = limit(c, price, "0.01", "cr-old")
    body = c.sig(
        "POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="cr-old", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.02", price=price,
        newClientOrderId="cr-new",
    )  # fmt: skip
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")  # type: ignore[index]
    assert body["cancelResponse"]["origClientOrderId"] == "cr-old"  # type: ignore[index]
    assert body["cancelResponse"]["orderId"] == first["orderId"]  # type: ignore[index]
    assert (body["newOrderResponse"]["clientOrderId"], body["newOrderResponse"]["origQty"]) == ("cr-new", "0.02000000")  # type: ignore[index]
    bad = failing(
        c, "POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="cr-old", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.02", price=price,
    )  # fmt: skip  # the old order is gone: nothing is placed
    assert bad["code"] == -2022 and bad["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    assert bad["data"]["cancelResponse"]["code"] == -2011
    half = failing(
        c, "POST", "/api/v3/order/cancelReplace", 409, symbol="BTCUSDT", cancelReplaceMode="ALLOW_FAILURE",
        cancelOrigClientOrderId="no-such", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=price,
        newClientOrderId="cr-third",
    )  # fmt: skip
    assert half["code"] == -2021 and half["data"]["newOrderResult"] == "SUCCESS"
    assert failing(c, "POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", cancelReplaceMode="STOP_ON_FAILURE",
                   cancelOrigClientOrderId="cr-new", side="BUY", type="LIMIT", quantity="0.01", price=price,
                   bogus="1")["code"] == -1104  # fmt: skip


def test_amend_keep_priority_lowers_the_quantity_in_place(server):
    c = Ctx(server)
    state = server_state(server.app)
    ex = state.exchange
    price = low_price(c)
    locked_before = Decimal(
        next(b["locked"] for b in c.sig("GET", "/api/v3/account")["balances"] if b["asset"] == "USDT")  # type: ignore[index]
    )
    first = limit(c, price, "0.04", "am-first")
    limit(c, price, "0.04", "am-second")
    body = c.sig(
        "PUT", "/api/v3/order/amend/keepPriority", symbol="BTCUSDT", origClientOrderId="am-first", newQty="0.01"
    )
    amended = body["amendedOrder"]  # type: ignore[index]
    assert set(body) == {"transactTime", "executionId", "amendedOrder"}  # type: ignore[arg-type]
    assert (amended["orderId"], amended["qty"], amended["status"]) == (first["orderId"], "0.01000000", "NEW")
    assert amended["clientOrderId"] == amended["origClientOrderId"] == "am-first"
    locked = Decimal(
        next(b["locked"] for b in c.sig("GET", "/api/v3/account")["balances"] if b["asset"] == "USDT")  # type: ignore[index]
    )
    assert locked - locked_before == Decimal(price) * Decimal("0.05")  # 0.04 + 0.04 - 0.03 released
    depth = {p: q for p, q in c.pub("/api/v3/depth", symbol="BTCUSDT", limit=5000)["bids"]}  # type: ignore[index]
    assert Decimal(depth[f"{Decimal(price):.8f}"]) >= Decimal("0.05")
    seller, _, _ = server.new_account(spot={"BTC": "10"})
    spec = ex.spec("spot", "BTCUSDT")
    ticks = spec.parse_price(price)

    def sell_down_to_the_amended_order() -> None:
        # one callback on the server's loop: the replay requotes its ladder every 0.1 s with new sizes, so what
        # lies above our price (and ahead of us at it) must be counted in the same step as the sell is placed
        above = sum(q for p, q in ex.depth("spot", "BTCUSDT", 5000).bids if p > ticks)
        level = ex.matcher.books[("spot", "BTCUSDT")].bids.levels[ticks]
        ahead = 0
        for o in level:
            if o.client_order_id == "am-first":
                break
            ahead += o.orig_qty - o.executed_qty
        qty = spec.fmt_qty(above + ahead + spec.parse_qty("0.01"))
        ex.place_order(seller, OrderRequest("spot", "BTCUSDT", "SELL", "LIMIT", qty, price, time_in_force="IOC"))

    on_server(server, sell_down_to_the_amended_order)  # everything ahead of the amended order, then its 0.01
    assert c.sig("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="am-first")["status"] == "FILLED"  # type: ignore[index]
    assert c.sig("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="am-second")["executedQty"] == "0.00000000"  # type: ignore[index]
    up = failing(c, "PUT", "/api/v3/order/amend/keepPriority", symbol="BTCUSDT", origClientOrderId="am-second",
                 newQty="0.05")  # fmt: skip
    assert up["code"] == -2038
    gone = failing(c, "PUT", "/api/v3/order/amend/keepPriority", symbol="BTCUSDT", origClientOrderId="am-first",
                   newQty="0.001")  # fmt: skip
    assert gone["code"] == -2013
    assert failing(c, "PUT", "/api/v3/order/amend/keepPriority", symbol="BTCUSDT",
                   origClientOrderId="am-second")["code"] == -1102  # fmt: skip
