"""The local exchange's USD-M Algo Order API against Binance's documentation
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order and the
Cancel/Query/Current-Open/All/Cancel-All algo pages, user-data-streams/Event-Algo-Order-Update): conditional
types refused by ``/fapi/v1/order`` (-4120), the algo order's body, its status as it waits, triggers and
finishes, and that the ordinary order endpoints know it only once its trigger made it an order.
"""

from __future__ import annotations

import asyncio

from localex.engine.types import OrderRequest
from localex.server.app import server_state
from tests.localex.rest_support import DEC, INT, STR, Ctx, call, signed, type_ok

# POST /fapi/v1/algoOrder response example, key by key (BOOL and null-able ones checked by value below)
ALGO_KEYS = {
    "algoId": INT,
    "clientAlgoId": STR,
    "algoType": STR,
    "orderType": STR,
    "symbol": STR,
    "side": STR,
    "positionSide": STR,
    "timeInForce": STR,
    "quantity": DEC,
    "algoStatus": STR,
    "triggerPrice": DEC,
    "price": DEC,
    "icebergQuantity": None,
    "selfTradePreventionMode": STR,
    "workingType": STR,
    "priceMatch": STR,
    "closePosition": bool,
    "priceProtect": bool,
    "reduceOnly": bool,
    "activatePrice": STR,
    "callbackRate": STR,
    "createTime": INT,
    "updateTime": INT,
    "triggerTime": INT,
    "goodTillDate": INT,
}


def on_server(server, fn):
    async def run():
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), server.loop).result(10)


def failing(c: Ctx, method: str, path: str, **params: object) -> dict:
    status, body = call(c.url + path + "?" + signed(c.secret, params), method, {"X-MBX-APIKEY": c.key})
    assert status == 400, body
    return body  # type: ignore[return-value]


def stop_above(c: Ctx) -> tuple[str, str]:
    """(trigger price 3 % above the mark, a quantity worth about 200 USDT)."""
    mark = float(c.pub("/fapi/v1/premiumIndex", symbol="BTCUSDT")["markPrice"])  # type: ignore[index]
    return f"{mark * 1.03:.1f}", f"{200 / mark:.3f}"


def test_conditional_types_are_refused_by_the_order_endpoint(server):
    c = Ctx(server)
    trigger, qty = stop_above(c)
    for order_type in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
        body = failing(
            c, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type=order_type, quantity=qty, stopPrice=trigger
        )
        assert body["code"] == -4120 and "Algo Order API" in body["msg"], body


def test_an_algo_order_waits_outside_the_order_book_endpoints_then_is_cancelled(server):
    c = Ctx(server)
    trigger, qty = stop_above(c)
    body = c.sig(
        "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="BUY", type="STOP_MARKET",
        quantity=qty, triggerPrice=trigger, clientAlgoId="algo-wait-1",
    )  # fmt: skip
    assert list(body) == list(ALGO_KEYS), body  # type: ignore[arg-type]
    for key, kind in ALGO_KEYS.items():
        value = body[key]  # type: ignore[index]
        assert (value is None) if kind is None else isinstance(value, bool) if kind is bool else type_ok(kind, value)
    assert (body["algoStatus"], body["clientAlgoId"], body["orderType"]) == ("NEW", "algo-wait-1", "STOP_MARKET")  # type: ignore[index]
    assert float(body["triggerPrice"]) == float(trigger) and body["triggerTime"] == 0  # type: ignore[index]
    open_algo = c.sig("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
    assert [o["clientAlgoId"] for o in open_algo] == ["algo-wait-1"]  # type: ignore[union-attr]
    assert c.sig("GET", "/fapi/v1/openOrders", symbol="BTCUSDT") == []
    assert failing(c, "GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="algo-wait-1")["code"] == -2013
    assert failing(c, "DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="algo-wait-1")["code"] == -2011
    got = c.sig("GET", "/fapi/v1/algoOrder", clientAlgoId="algo-wait-1")
    assert (got["algoId"], got["algoStatus"], got["actualOrderId"]) == (body["algoId"], "NEW", "")  # type: ignore[index]
    gone = c.sig("DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", clientAlgoId="algo-wait-1")
    assert gone == {"algoId": body["algoId"], "clientAlgoId": "algo-wait-1", "code": "200", "msg": "success"}  # type: ignore[index]
    assert failing(c, "DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", algoId=body["algoId"])["code"] == -2011  # type: ignore[index]
    assert c.sig("GET", "/fapi/v1/algoOrder", algoId=body["algoId"])["algoStatus"] == "CANCELED"  # type: ignore[index]
    history = c.sig("GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")
    assert [o["algoStatus"] for o in history] == ["CANCELED"]  # type: ignore[union-attr]
    assert failing(c, "GET", "/fapi/v1/algoOrder", clientAlgoId="no-such-algo")["code"] == -2013
    bad = failing(c, "POST", "/fapi/v1/algoOrder", algoType="VP", symbol="BTCUSDT", side="BUY", type="STOP_MARKET",
                  quantity=qty, triggerPrice=trigger)  # fmt: skip
    assert bad["code"] == -1116


def test_cancel_all_algo_orders_leaves_the_ordinary_ones(server):
    c = Ctx(server)
    trigger, qty = stop_above(c)
    for i in range(2):
        c.sig("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="BUY", type="STOP_MARKET",
              quantity=qty, triggerPrice=trigger, clientAlgoId=f"algo-all-{i}")  # fmt: skip
    resting = server.resting_futures_price()
    c.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty,
          price=resting, newClientOrderId="plain-1")  # fmt: skip
    assert c.sig("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")["code"] == 200  # type: ignore[index]
    assert c.sig("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT") == []
    assert [o["clientOrderId"] for o in c.sig("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")] == ["plain-1"]  # type: ignore[union-attr]
    c.sig("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="BUY", type="STOP_MARKET",
          quantity=qty, triggerPrice=trigger, clientAlgoId="algo-all-2")  # fmt: skip
    c.sig("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
    assert c.sig("GET", "/fapi/v1/openOrders", symbol="BTCUSDT") == []
    assert [o["clientAlgoId"] for o in c.sig("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")] == ["algo-all-2"]  # type: ignore[union-attr]


def test_a_triggered_algo_order_becomes_an_order_under_its_client_algo_id(server):
    c = Ctx(server)
    state = server_state(server.app)
    ex = state.exchange
    spec = ex.spec("usdm", "BTCUSDT")
    _, qty = stop_above(c)
    maker, _, _ = server.new_account(futures={"USDT": "1000000"})
    taker, _, _ = server.new_account(futures={"USDT": "1000000"})
    level = on_server(
        server, lambda: max(ex.last_price("usdm", "BTCUSDT"), ex.book_ticker("usdm", "BTCUSDT").ask_price) + 20
    )
    trigger = spec.fmt_price(level)
    body = c.sig("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="BUY",
                 type="STOP_MARKET", quantity=qty, triggerPrice=trigger, clientAlgoId="algo-fire-1")  # fmt: skip

    def trade_at_the_trigger() -> None:
        ex.place_order(maker, OrderRequest("usdm", "BTCUSDT", "SELL", "LIMIT", qty, trigger, time_in_force="GTC"))
        lots = sum(q for p, q in ex.depth("usdm", "BTCUSDT", 1000).asks if p <= level)
        ex.place_order(
            taker, OrderRequest("usdm", "BTCUSDT", "BUY", "LIMIT", spec.fmt_qty(lots), trigger, time_in_force="IOC")
        )

    on_server(server, trade_at_the_trigger)
    algo = c.sig("GET", "/fapi/v1/algoOrder", clientAlgoId="algo-fire-1")
    assert algo["algoStatus"] == "FINISHED" and algo["triggerTime"] > 0  # type: ignore[index]
    order = c.sig("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="algo-fire-1")
    assert str(order["orderId"]) == algo["actualOrderId"]  # type: ignore[index]
    assert (order["status"], order["type"], order["origType"]) == ("FILLED", "MARKET", "STOP_MARKET")  # type: ignore[index]
    assert order["executedQty"] == algo["executedQty"] == body["quantity"]  # type: ignore[index]
