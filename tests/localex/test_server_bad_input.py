"""Bad input gets Binance's own error (code, message, HTTP status), is counted, and never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import pytest
from conftest import free_port, start_server

from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], object]:
    """One HTTP request; ``(status, headers, json)`` whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def signed_query(secret: str, params: dict[str, object], ts: int | None = None) -> str:
    """Binance signing: timestamp appended, hex HMAC-SHA256 of the raw query."""
    q = urllib.parse.urlencode({**params, "timestamp": ts if ts is not None else int(time.time() * 1000)})
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def acct(server):
    return server.new_account(spot={"USDT": "1000"}, permissions=["SPOT"])


def test_unsigned_missing_key_and_unknown_key(server, acct) -> None:
    _, key, secret = acct
    status, _, body = call(server.url + "/api/v3/account?timestamp=1")
    assert (status, body) == (401, {"code": -2014, "msg": "API-key format invalid."})
    unknown = {"X-MBX-APIKEY": "A" * 64}
    status, _, body = call(server.url + "/api/v3/account?" + signed_query(secret, {}), headers=unknown)
    assert (status, body["code"]) == (401, -2015)
    q = urllib.parse.urlencode({"timestamp": int(time.time() * 1000)})
    status, _, body = call(server.url + "/api/v3/account?" + q, headers={"X-MBX-APIKEY": key})
    assert (status, body["code"]) == (400, -1102) and "signature" in body["msg"]


def test_mis_signed_and_stale(server, acct) -> None:
    _, key, secret = acct
    status, _, body = call(server.url + "/api/v3/account?" + signed_query("wrong", {}), headers={"X-MBX-APIKEY": key})
    assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    stale = signed_query(secret, {}, ts=int(time.time() * 1000) - 60_000)
    status, _, body = call(server.url + "/api/v3/account?" + stale, headers={"X-MBX-APIKEY": key})
    assert (status, body["code"]) == (400, -1021)
    ahead = signed_query(secret, {}, ts=int(time.time() * 1000) + 5_000)
    assert call(server.url + "/api/v3/account?" + ahead, headers={"X-MBX-APIKEY": key})[2]["code"] == -1021
    big_window = signed_query(secret, {"recvWindow": 70000})
    assert call(server.url + "/api/v3/account?" + big_window, headers={"X-MBX-APIKEY": key})[2]["code"] == -1131


def test_signed_post_body_and_permission(server, acct) -> None:
    _, key, secret = acct
    hdr = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    body = signed_query(
        secret,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "6000.00",
        },
    ).encode()
    status, headers, order = call(server.url + "/api/v3/order", "POST", hdr, body)
    assert status == 200 and order["status"] == "NEW" and isinstance(order["price"], str)
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) > 0 and headers["X-MBX-ORDER-COUNT-10S"] == "1"
    fut = signed_query(secret, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"}).encode()
    status, _, err = call(server.url + "/fapi/v1/order", "POST", hdr, fut)
    assert (status, err["code"]) == (401, -2015)  # key has SPOT permission only


def test_revoked_key_is_rejected(server) -> None:
    _, key, secret = server.new_account()
    assert call(server.url + "/api/v3/account?" + signed_query(secret, {}), headers={"X-MBX-APIKEY": key})[0] == 200
    server.admin("DELETE", f"/admin/v1/keys/{key}")
    status, _, body = call(server.url + "/api/v3/account?" + signed_query(secret, {}), headers={"X-MBX-APIKEY": key})
    assert (status, body["code"]) == (401, -2015)


def test_unknown_symbol_filters_and_malformed_params(server, acct) -> None:
    _, key, secret = acct
    assert call(server.url + "/api/v3/depth?symbol=NOPEUSDT")[2] == {"code": -1121, "msg": "Invalid symbol."}
    assert call(server.url + "/api/v3/depth?symbol=btc%20usdt")[2]["code"] == -1100
    assert call(server.url + "/api/v3/depth")[2]["code"] == -1102
    assert call(server.url + "/api/v3/depth?symbol=BTCUSDT&limit=abc")[2]["code"] == -1100
    assert call(server.url + "/api/v3/klines?symbol=BTCUSDT&interval=7m")[2]["code"] == -1120
    hdr = {"X-MBX-APIKEY": key}
    off_tick = signed_query(
        secret,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "6000.001",
        },
    )
    assert call(server.url + "/api/v3/order?" + off_tick, "POST", hdr)[2] == {
        "code": -1013,
        "msg": "Filter failure: PRICE_FILTER",
    }
    bad_qty = signed_query(secret, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1e-3"})
    assert call(server.url + "/api/v3/order?" + bad_qty, "POST", hdr)[2]["code"] == -1100
    bad_side = signed_query(secret, {"symbol": "BTCUSDT", "side": "UP", "type": "MARKET", "quantity": "0.001"})
    assert call(server.url + "/api/v3/order?" + bad_side, "POST", hdr)[2] == {"code": -1117, "msg": "Invalid side."}
    cancel = signed_query(secret, {"symbol": "BTCUSDT", "orderId": 424242})
    assert call(server.url + "/api/v3/order?" + cancel, "DELETE", hdr)[2]["code"] == -2011
    rich = signed_query(
        secret,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "1000",
            "price": "6000.00",
        },
    )
    assert call(server.url + "/api/v3/order?" + rich, "POST", hdr)[2]["code"] == -2010


def test_duplicate_parameters(server, acct) -> None:
    """A name twice in the query (or twice in the body): -1101; once in each: the query's value wins."""
    _, key, secret = acct
    status, _, body = call(server.url + "/api/v3/depth?symbol=BTCUSDT&limit=5&limit=10")
    assert (status, body) == (400, {"code": -1101, "msg": "Duplicate values for a parameter detected."})
    hdr = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    order = signed_query(
        secret,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "6000.00",
            "newClientOrderId": "dup-1",
        },
    )
    twice = ("quantity=0.002&" + order).encode()  # the body repeats quantity: rejected, nothing placed
    assert call(server.url + "/api/v3/order", "POST", hdr, twice)[2]["code"] == -1101
    lookup = signed_query(secret, {"symbol": "BTCUSDT", "origClientOrderId": "dup-1"})
    assert call(server.url + "/api/v3/order?" + lookup, "GET", hdr)[2]["code"] == -2013
    assert call(server.url + "/fapi/v1/depth?symbol=BTCUSDT&symbol=ETHUSDT")[2]["code"] == -1101


def test_unknown_path_and_method_are_json_not_500(server) -> None:
    status, _, body = call(server.url + "/api/v3/nothing")
    assert status == 404 and body["code"] == -1000
    status, _, body = call(server.url + "/api/v3/ping", "PATCH")
    assert status == 405 and "code" in body
    counters = server.admin("GET", "/admin/v1/counters")
    assert counters["internalErrors"] == 0 and counters["badInput"]


async def test_malformed_websocket_frames_keep_connections_open(server) -> None:
    ws_url = server.url.replace("http", "ws")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url + "/ws") as ws:
            await ws.send_str("{not json")
            assert (await ws.receive_json(timeout=3))["error"]["code"] == 3
            await ws.send_str(json.dumps({"method": "DANCE", "params": [], "id": 1}))
            assert (await ws.receive_json(timeout=3))["error"]["code"] == 2
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 2}))
            assert (await ws.receive_json(timeout=3))["error"]["code"] == 2
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 3}))
            assert await ws.receive_json(timeout=3) == {"result": None, "id": 3}
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            assert await ws.receive_json(timeout=3) == {"result": ["btcusdt@trade"], "id": 4}
        async with session.ws_connect(ws_url + "/ws-api/v3") as api:
            await api.send_str("[1,2")
            assert (await api.receive_json(timeout=3))["status"] == 400
            await api.send_str(json.dumps({"id": "a", "method": "order.place", "params": {"symbol": "BTCUSDT"}}))
            reply = await api.receive_json(timeout=3)
            assert reply["id"] == "a" and reply["status"] == 401 and reply["error"]["code"] == -2014
            await api.send_str(json.dumps({"id": "b", "method": "ping", "params": {}}))
            assert (await api.receive_json(timeout=3))["status"] == 200


def test_weight_limit_429_then_418_ban() -> None:
    limits = RateLimitConfig(spot_weight_per_minute=30, ban_after_violations=2, ban_seconds=60)
    for srv in start_server(ServerConfig(port=free_port(), rate_limits=limits, replay=False, demo_accounts=False)):
        statuses = [call(srv.url + "/api/v3/depth?symbol=BTCUSDT")[0] for _ in range(6)]  # weight 5 each
        assert statuses == [200] * 6
        status, headers, body = call(srv.url + "/api/v3/depth?symbol=BTCUSDT")
        assert (status, body["code"]) == (429, -1003) and int(headers["Retry-After"]) >= 1
        assert call(srv.url + "/api/v3/depth?symbol=BTCUSDT")[0] == 429
        status, _, body = call(srv.url + "/api/v3/ping")
        assert status == 418 and "banned until" in body["msg"]
        assert call(srv.url + "/fapi/v1/ping")[0] == 200  # futures weight is a separate budget


def test_open_order_limit_is_advertised_enforced_and_configurable() -> None:
    """``ServerConfig.max_open_orders`` (``--max-open-orders``) sets MAX_NUM_ORDERS: exchangeInfo shows it and
    the order over it gets Binance's -1013 filter failure."""
    for srv in start_server(ServerConfig(port=free_port(), replay=False, demo_accounts=False, max_open_orders=3)):
        info = call(srv.url + "/api/v3/exchangeInfo?symbol=BTCUSDT")[2]
        limit = next(f for f in info["symbols"][0]["filters"] if f["filterType"] == "MAX_NUM_ORDERS")
        assert limit == {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 3}
        _, key, secret = srv.new_account(spot={"USDT": "1000"})
        hdr = {"X-MBX-APIKEY": key}
        codes = []
        for i in range(4):
            q = signed_query(
                secret,
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.001",
                    "price": f"{6000 + i}.00",
                },
            )
            codes.append(call(srv.url + "/api/v3/order?" + q, "POST", hdr)[2].get("code"))
        assert codes == [None, None, None, -1013]
