"""The WebSocket API through raw frames: envelopes, rateLimits, result shapes, cancelReplace, user-data events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time

import aiohttp
import pytest

WAIT = 5.0
WEIGHT = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
ACK = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
RESULT = ACK + [
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "workingTime",
    "selfTradePreventionMode",
]
CANCEL = [
    "symbol",
    "origClientOrderId",
    "orderId",
    "orderListId",
    "clientOrderId",
    "transactTime",
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "selfTradePreventionMode",
]
STATUS = [
    "symbol",
    "orderId",
    "orderListId",
    "clientOrderId",
    "price",
    "origQty",
    "executedQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "stopPrice",
    "icebergQty",
    "time",
    "updateTime",
    "isWorking",
    "workingTime",
    "origQuoteOrderQty",
    "selfTradePreventionMode",
]
EXECUTION_REPORT = [
    "e",
    "E",
    "s",
    "c",
    "S",
    "o",
    "f",
    "q",
    "p",
    "P",
    "F",
    "g",
    "C",
    "x",
    "X",
    "r",
    "i",
    "l",
    "z",
    "L",
    "n",
    "N",
    "T",
    "t",
    "I",
    "w",
    "m",
    "M",
    "O",
    "Z",
    "Y",
    "Q",
    "W",
    "V",
]


class Api:
    """A raw WebSocket API connection that signs like a Binance client (params sorted, HMAC-SHA256)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, key: str, secret: str) -> None:
        self.ws, self.key, self.secret = ws, key, secret
        self.ids = itertools.count(1)
        self.events: list[dict[str, object]] = []

    async def call(
        self, method: str, params: dict[str, object] | None = None, signed: bool = False, request_id: object = ...
    ) -> dict[str, object]:
        body = dict(params or {})
        if signed:
            body.update({"apiKey": self.key, "timestamp": int(time.time() * 1000)})
            payload = "&".join(f"{k}={v}" for k, v in sorted(body.items()))
            body["signature"] = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        rid = next(self.ids) if request_id is ... else request_id
        await self.ws.send_str(json.dumps({"id": rid, "method": method, "params": body}))
        while True:
            msg = await self.ws.receive_json(timeout=WAIT)
            if "event" in msg:
                self.events.append(msg)
                continue
            assert msg["id"] == rid
            return msg


@pytest.fixture(scope="module")
def account(server):
    _, key, secret = server.new_account(spot={"USDT": "100000", "BTC": "1"}, futures={"USDT": "100000"})
    return key, secret


async def _open(server, account, path: str = "/ws-api/v3"):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(server.url.replace("http", "ws") + path)
    return session, Api(ws, *account)


async def test_envelopes_and_rate_limits(server, account) -> None:
    session, api = await _open(server, account)
    try:
        ping = await api.call("ping")
        assert list(ping) == ["id", "status", "result", "rateLimits"] and ping["result"] == {}
        assert ping["rateLimits"][0].items() >= WEIGHT.items() and ping["rateLimits"][0]["count"] >= 2
        assert "rateLimits" not in await api.call("time", {"returnRateLimits": False})
        assert (await api.call("v3/time"))["result"]["serverTime"] > 0
        assert (await api.call("ping", request_id=None))["id"] is None
        err = await api.call("order.status", {"symbol": "BTCUSDT", "orderId": 987654}, signed=True)
        assert list(err) == ["id", "status", "error", "rateLimits"] and err["status"] == 400
        assert err["error"] == {"code": -2013, "msg": "Order does not exist."}
        bad = await api.call("time", {"returnRateLimits": "no"})
        assert bad["status"] == 400 and bad["error"]["code"] == -1130
    finally:
        await api.ws.close()
        await session.close()
    async with (
        aiohttp.ClientSession() as s2,
        s2.ws_connect(server.url.replace("http", "ws") + "/ws-api/v3?returnRateLimits=false") as ws,
    ):
        quiet = Api(ws, *account)
        assert list(await quiet.call("ping")) == ["id", "status", "result"]
        assert "rateLimits" in await quiet.call("ping", {"returnRateLimits": True})


async def test_open_orders_without_a_symbol_weigh_80_as_binance_documents(server, account) -> None:
    """openOrders.status: weight 6 for one symbol, 80 for all (Binance's WebSocket API docs, as REST)."""
    session, api = await _open(server, account)
    try:
        counts = []
        for params in ({"symbol": "BTCUSDT"}, {}):
            for _ in range(3):  # again if the minute's window turned between the two calls
                before = (await api.call("ping"))["rateLimits"][0]["count"]
                answer = await api.call("openOrders.status", params, signed=True)
                assert answer["status"] == 200, answer
                if answer["rateLimits"][0]["count"] > before:
                    break
            counts.append(answer["rateLimits"][0]["count"] - before)
        assert counts == [6, 80]
    finally:
        await api.ws.close()
        await session.close()


async def test_order_methods_results_and_user_events(server, account) -> None:
    session, api = await _open(server, account)
    try:
        sub = await api.call("userDataStream.subscribe.signature", signed=True)
        sub_id = sub["result"]["subscriptionId"]
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.002",
            "price": "3000.00",
        }
        ack = await api.call("order.place", {**order, "newOrderRespType": "ACK"}, signed=True)
        assert list(ack["result"]) == ACK
        limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r for r in ack["rateLimits"]}
        assert set(limits) == {("ORDERS", "SECOND", 10), ("ORDERS", "DAY", 1), ("REQUEST_WEIGHT", "MINUTE", 1)}
        assert limits[("ORDERS", "SECOND", 10)]["count"] >= 1
        result = await api.call("order.place", {**order, "newOrderRespType": "RESULT"}, signed=True)
        assert list(result["result"]) == RESULT
        full = await api.call("order.place", {**order, "newOrderRespType": "FULL"}, signed=True)
        assert list(full["result"]) == RESULT + ["fills"]
        status = await api.call("order.status", {"symbol": "BTCUSDT", "orderId": ack["result"]["orderId"]}, signed=True)
        assert list(status["result"]) == STATUS
        opened = await api.call("openOrders.status", {"symbol": "BTCUSDT"}, signed=True)
        assert {o["orderId"] for o in opened["result"]} >= {ack["result"]["orderId"], full["result"]["orderId"]}
        canceled = await api.call(
            "order.cancel", {"symbol": "BTCUSDT", "orderId": ack["result"]["orderId"]}, signed=True
        )
        assert list(canceled["result"]) == CANCEL and canceled["result"]["status"] == "CANCELED"
        counts = await api.call("account.rateLimits.orders", signed=True)
        assert [r["interval"] for r in counts["result"]] == ["SECOND", "DAY"] and counts["result"][0]["count"] >= 3
        everything = await api.call("openOrders.cancelAll", {"symbol": "BTCUSDT"}, signed=True)
        assert {o["status"] for o in everything["result"]} == {"CANCELED"}
        account_status = await api.call("account.status", signed=True)
        assert account_status["result"]["accountType"] == "SPOT"
        await asyncio.sleep(0.2)
        await api.call("ping")
        reports = [m["event"] for m in api.events if m["event"]["e"] == "executionReport"]
        assert reports and all(m["subscriptionId"] == sub_id for m in api.events)
        for report in reports:
            assert list(report) == EXECUTION_REPORT
        kinds = {m["event"]["e"] for m in api.events}
        assert {"executionReport", "outboundAccountPosition"} <= kinds
        assert (await api.call("userDataStream.unsubscribe", {"subscriptionId": sub_id}))["status"] == 200
    finally:
        await api.ws.close()
        await session.close()


async def test_cancel_replace_modes(server, account) -> None:
    session, api = await _open(server, account)
    try:
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.002"}
        placed = await api.call("order.place", {**order, "price": "3000.00"}, signed=True)
        replaced = await api.call(
            "order.cancelReplace",
            {
                **order,
                "price": "3100.00",
                "cancelReplaceMode": "STOP_ON_FAILURE",
                "cancelOrderId": placed["result"]["orderId"],
            },
            signed=True,
        )
        body = replaced["result"]
        assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
        assert body["cancelResponse"]["orderId"] == placed["result"]["orderId"]
        assert body["newOrderResponse"]["price"] == "3100.00000000"
        failed = await api.call(
            "order.cancelReplace",
            {**order, "price": "3200.00", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": 99999999},
            signed=True,
        )
        assert failed["status"] == 400 and failed["error"]["code"] == -2022
        assert failed["error"]["data"] == {
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": None,
        }
        partial = await api.call(
            "order.cancelReplace",
            {**order, "price": "3200.00", "cancelReplaceMode": "ALLOW_FAILURE", "cancelOrderId": 99999999},
            signed=True,
        )
        assert partial["status"] == 409 and partial["error"]["code"] == -2021
        assert partial["error"]["data"]["newOrderResult"] == "SUCCESS"
        await api.call("openOrders.cancelAll", {"symbol": "BTCUSDT"}, signed=True)
    finally:
        await api.ws.close()
        await session.close()


async def test_futures_methods(server, account) -> None:
    session, api = await _open(server, account, "/ws-fapi/v1")
    try:
        price, moved = server.resting_futures_price(), server.resting_futures_price(below=0.02)
        placed = await api.call(
            "order.place",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.05",
                "price": price,
            },
            signed=True,
        )
        assert placed["status"] == 200 and placed["result"]["status"] == "NEW"
        limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]) for r in placed["rateLimits"]}
        assert ("ORDERS", "SECOND", 10) in limits and ("REQUEST_WEIGHT", "MINUTE", 1) in limits
        oid = placed["result"]["orderId"]
        modified = await api.call(
            "order.modify",
            {"symbol": "BTCUSDT", "orderId": oid, "side": "BUY", "quantity": "0.05", "price": moved},
            signed=True,
        )
        assert float(modified["result"]["price"]) == float(moved)
        assert float(
            (await api.call("order.status", {"symbol": "BTCUSDT", "orderId": oid}, signed=True))["result"]["price"]
        ) == float(moved)
        assert (await api.call("order.cancel", {"symbol": "BTCUSDT", "orderId": oid}, signed=True))["result"][
            "status"
        ] == "CANCELED"
        for method in (
            "account.balance",
            "v2/account.balance",
            "account.position",
            "v2/account.position",
            "account.status",
            "v2/account.status",
        ):
            reply = await api.call(method, signed=True)
            assert reply["status"] == 200, (method, reply)
    finally:
        await api.ws.close()
        await session.close()


async def test_unread_parameters_rejected_before_anything_changes(server, account) -> None:
    """The WebSocket API keeps REST's parameter accounting: -1104 for a name the method does not read."""
    session, api = await _open(server, account)
    before = server.admin("GET", "/admin/v1/counters")
    try:
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "20000.00",
            "newClientOrderId": "ws-unread-1",
        }
        bad = await api.call("order.place", {**order, "positionSide": "LONG"}, signed=True)
        assert bad["status"] == 400
        assert bad["error"] == {
            "code": -1104,
            "msg": "Not all sent parameters were read; read '10' parameter(s) but was sent '11'.",
        }
        missing = await api.call("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "ws-unread-1"}, signed=True)
        assert missing["error"]["code"] == -2013  # nothing was placed
        depth = await api.call("depth", {"symbol": "BTCUSDT", "limit": 5, "bogus": 1})
        assert depth["error"]["code"] == -1104
        ok = await api.call("order.place", order, signed=True)
        assert ok["status"] == 200, ok
        assert ok["result"]["clientOrderId"] == "ws-unread-1"
    finally:
        await session.close()
    after = server.admin("GET", "/admin/v1/counters")
    assert after["errorsByCode"]["-1104"] == before["errorsByCode"].get("-1104", 0) + 2  # type: ignore[index]
