"""Issue 15 items 2 and 4: hostile input gets Binance's own error (or a clear admin error), state unchanged.

Every case is the issue's own reproduction, sent over real sockets to a real server: an admin deposit of
``1e5000`` (which used to be stored and break the account for good), a body over 1 MiB, ``recvWindow=inf``,
``orderIdList=[null]`` / ``["a"]`` / ``[true]`` / ``[1.5]``, a URL over 8,190 bytes, a Spot-only key on
``/fapi/v2/account``, and an admin account id or email no exchange would take.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import aiohttp
import ccxt
import pytest
from binance.exceptions import BinanceAPIException
from conftest import LocalServer, free_port, start_server

from localex import clients
from localex.server.state import ServerConfig

TOKEN = "X-Admin-Token"


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, object]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def signed(secret: str, params: dict[str, object], ts: int | None = None) -> str:
    q = urllib.parse.urlencode({**params, "timestamp": ts if ts is not None else int(time.time() * 1000)})
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    yield from start_server(ServerConfig(port=free_port(), replay=False, demo_accounts=False))


def admin_raw(srv: LocalServer, method: str, path: str, body: object) -> tuple[int, object]:
    data = json.dumps(body).encode()
    return call(srv.url + path, method, data, {TOKEN: srv.admin_token, "Content-Type": "application/json"})


def counters(srv: LocalServer) -> dict[str, object]:
    return srv.admin("GET", "/admin/v1/counters")  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- item 2


def test_rejected_deposit_changes_nothing_and_the_account_keeps_working(srv: LocalServer) -> None:
    main, main_key, main_secret = srv.new_account(spot={"USDT": "100"})
    sub, sub_key, sub_secret = srv.new_account(spot={"USDT": "5"}, parent=main)
    sub_email = next(a["email"] for a in srv.admin("GET", "/admin/v1/accounts") if a["accountId"] == sub)  # type: ignore[index, union-attr]
    before = srv.admin("GET", f"/admin/v1/accounts/{sub}/balances")
    cases = [
        ({"asset": "USDT", "amount": "1e5000"}, "Data sent for parameter 'amount' is not valid."),
        ({"asset": "USDT", "amount": "92233720369"}, "Data sent for parameter 'amount' is not valid."),  # > int64
        ({"asset": "USDT", "amount": "-5"}, "Data sent for parameter 'amount' is not valid."),
        ({"asset": "USDT", "amount": "0.000000001"}, "Data sent for parameter 'amount' is not valid."),
        ({"asset": "USDT", "amount": "NaN"}, "Data sent for parameter 'amount' is not valid."),
        ({"asset": "US DT", "amount": "1"}, "Data sent for parameter 'asset' is not valid."),
        ({"asset": "../x", "amount": "1"}, "Data sent for parameter 'asset' is not valid."),
    ]
    for body, msg in cases:
        status, answer = admin_raw(srv, "POST", f"/admin/v1/accounts/{sub}/fund", body)
        assert (status, answer) == (400, {"code": -1130, "msg": msg}), body
    for body, msg in [
        ({"asset": "USDT", "amount": 1e300}, "amount must be a string (got float)"),
        ({"asset": "USDT"}, "amount is missing"),
        ({"asset": "USDT", "amount": "1", "wallet": "MARGIN"}, "wallet must be SPOT or FUTURES (got 'MARGIN')"),
    ]:
        status, answer = admin_raw(srv, "POST", f"/admin/v1/accounts/{sub}/fund", body)
        assert (status, answer) == (400, {"code": -1, "msg": f"bad admin request: {msg}"}), body
    assert srv.admin("GET", f"/admin/v1/accounts/{sub}/balances") == before
    # the account and its main account's view of it still answer (they used to say -1000 forever)
    status, account = call(srv.url + "/api/v3/account?" + signed(sub_secret, {}), headers={"X-MBX-APIKEY": sub_key})
    assert status == 200
    assert {b["asset"]: b["free"] for b in account["balances"]} == {"USDT": "5.00000000"}  # type: ignore[index]
    q = signed(main_secret, {"email": sub_email})
    status, assets = call(srv.url + "/sapi/v4/sub-account/assets?" + q, headers={"X-MBX-APIKEY": main_key})
    assert status == 200 and assets["balances"][0]["free"] == "5.00000000"  # type: ignore[index]
    assert counters(srv)["internalErrors"] == 0


def test_a_transfer_that_cannot_happen_leaves_no_trace(srv: LocalServer) -> None:
    main, key, secret = srv.new_account(spot={"USDT": "10"})
    ex = clients.binance_sync(srv.url, key, secret)
    with pytest.raises(BinanceAPIException) as err:
        ex.universal_transfer(type="MAIN_UMFUTURE", asset="DOGE", amount="1")
    assert err.value.code == -5002
    spot = srv.admin("GET", f"/admin/v1/accounts/{main}/balances")
    assert [b["asset"] for b in spot] == ["USDT"]  # type: ignore[index, union-attr] - no empty DOGE row appeared


# ---------------------------------------------------------------------------------------------- item 4


def test_body_over_one_mib_is_binance_error_not_internal(srv: LocalServer) -> None:
    _, key, secret = srv.new_account(spot={"USDT": "1000"})
    port = int(srv.url.rsplit(":", 1)[1])
    order = signed(secret, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                            "quantity": "0.001", "price": "6000.00"})  # fmt: skip
    body = (order + "&pad=" + "x" * (1 << 20)).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v3/order HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-MBX-APIKEY: %s\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % (port, key.encode(), len(body))
        )
        try:
            sock.sendall(body)
        except OSError:  # the server may answer and close before reading it all
            pass
        head, _, rest = sock.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(rest) == {
        "code": -1101,
        "msg": "Too many parameters sent for this endpoint; the request body is too large.",
    }
    status, orders = call(srv.url + "/api/v3/openOrders?" + signed(secret, {}), headers={"X-MBX-APIKEY": key})
    assert (status, orders) == (200, [])
    assert counters(srv)["internalErrors"] == 0


@pytest.mark.parametrize("window", ["inf", "-inf", "nan", "1e3", "0x10", "5000.1234", "１０００", "1_000", " 5000"])
def test_malformed_recv_window_is_illegal_chars(srv: LocalServer, window: str) -> None:
    _, key, secret = srv.new_account()
    status, body = call(
        srv.url + "/api/v3/account?" + signed(secret, {"recvWindow": window}), headers={"X-MBX-APIKEY": key}
    )
    assert (status, body) == (
        400,
        {"code": -1100, "msg": r"Illegal characters found in parameter 'recvWindow'; legal range is "
                               r"'^[0-9]{1,20}(\.[0-9]{1,3})?$'."},
    )  # fmt: skip


def test_recv_window_bounds_and_microsecond_precision(srv: LocalServer) -> None:
    _, key, secret = srv.new_account()
    hdr = {"X-MBX-APIKEY": key}
    assert call(srv.url + "/api/v3/account?" + signed(secret, {"recvWindow": "5000.5"}), headers=hdr)[0] == 200
    assert call(srv.url + "/fapi/v2/account?" + signed(secret, {"recvWindow": "60000"}), headers=hdr)[0] == 200
    for window in ("60001", "0", "0.000"):
        status, body = call(srv.url + "/api/v3/account?" + signed(secret, {"recvWindow": window}), headers=hdr)
        assert (status, body["code"]) == (400, -1131), window  # type: ignore[index]
    status, body = call(srv.url + "/api/v3/account?" + signed(secret, {}, ts="1_7e12"), headers=hdr)  # type: ignore[arg-type]
    assert (status, body["code"]) == (400, -1100)  # type: ignore[index]


async def test_ws_api_recv_window_as_a_huge_number(srv: LocalServer) -> None:
    """The WebSocket API takes JSON numbers: 1e300 is no recvWindow either, and the session stays open."""
    _, key, secret = srv.new_account()
    params: dict[str, object] = {"apiKey": key, "recvWindow": 1e300, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as session, session.ws_connect(srv.url + "/ws-api/v3") as ws:
        await ws.send_json({"id": 1, "method": "account.status", "params": params})
        reply = await ws.receive_json(timeout=5)
        assert reply["status"] == 400 and reply["error"]["code"] == -1100 and "recvWindow" in reply["error"]["msg"]
        await ws.send_json({"id": 2, "method": "ping"})
        assert (await ws.receive_json(timeout=5))["status"] == 200


@pytest.mark.parametrize("ids", ["[null]", '["a"]', "[true]", "[1.5]", "[0]", "[-1]", "[1e3]", "{}", '"1"', "[1,2"])
def test_batch_cancel_with_malformed_order_ids_cancels_nothing(server: LocalServer, ids: str) -> None:
    srv = server  # with the price replay: a futures order needs a mark price
    _, key, secret = srv.new_account(futures={"USDT": "10000"})
    fut = clients.binance_sync(srv.url, key, secret)
    placed = fut.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.05",
        price=srv.resting_futures_price(),
    )
    q = signed(secret, {"symbol": "BTCUSDT", "orderIdList": ids})
    status, body = call(srv.url + "/fapi/v1/batchOrders?" + q, "DELETE", headers={"X-MBX-APIKEY": key})
    assert (status, body) == (400, {"code": -1130, "msg": "Data sent for parameter 'orderIdList' is not valid."})
    still = fut.futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
    assert still["status"] == "NEW"
    q = signed(secret, {"symbol": "BTCUSDT", "origClientOrderIdList": '["ok", "bad id!"]'})
    status, body = call(srv.url + "/fapi/v1/batchOrders?" + q, "DELETE", headers={"X-MBX-APIKEY": key})
    assert (status, body["code"]) == (400, -1130)  # type: ignore[index]
    assert "origClientOrderIdList" in body["msg"]  # type: ignore[index]
    # a well-formed list still works, order by order
    q = signed(secret, {"symbol": "BTCUSDT", "orderIdList": f"[{placed['orderId']}, 987654321]"})
    status, body = call(srv.url + "/fapi/v1/batchOrders?" + q, "DELETE", headers={"X-MBX-APIKEY": key})
    assert (
        status == 200
        and body[0]["status"] == "CANCELED"
        and body[1]
        == {  # type: ignore[index]
            "code": -2011,
            "msg": "Unknown order sent.",
        }
    )
    assert counters(srv)["internalErrors"] == 0


def test_url_over_8190_bytes_is_binance_json(srv: LocalServer) -> None:
    status, body = call(srv.url + "/api/v3/ticker/price?symbol=BTCUSDT&pad=" + "x" * 9000)
    assert (status, body) == (
        414,
        {"code": -1101, "msg": "Too many parameters sent for this endpoint; the request URL is too large."},
    )
    status, body = call(srv.url + "/api/v3/time", headers={"X-Pad": "y" * 9000})
    assert status == 431 and body["code"] == -1000 and "header" in body["msg"]  # type: ignore[index]
    assert counters(srv)["badInput"]["http_url_too_long"] >= 1  # type: ignore[index]
    assert call(srv.url + "/api/v3/ping") == (200, {})


def test_spot_only_key_cannot_read_futures(srv: LocalServer) -> None:
    _, key, secret = srv.new_account(spot={"USDT": "10"}, futures={"USDT": "10"}, permissions=["SPOT"])
    hdr = {"X-MBX-APIKEY": key}
    for path in ("/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/balance", "/fapi/v2/positionRisk",
                 "/fapi/v1/openOrders", "/fapi/v1/income"):  # fmt: skip
        status, body = call(srv.url + path + "?" + signed(secret, {}), headers=hdr)
        assert (status, body) == (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}), path
    status, body = call(srv.url + "/fapi/v1/listenKey", "POST", headers=hdr)
    assert (status, body["code"]) == (401, -2015)  # type: ignore[index]
    with pytest.raises(ccxt.AuthenticationError):
        clients.ccxt_sync(srv.url, key, secret, default_type="swap").fetch_balance()
    assert call(srv.url + "/api/v3/account?" + signed(secret, {}), headers=hdr)[0] == 200  # spot still reads


async def test_spot_only_key_on_the_futures_websocket_api(srv: LocalServer) -> None:
    _, key, secret = srv.new_account(permissions=["SPOT"])
    params: dict[str, object] = {"apiKey": key, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as session, session.ws_connect(srv.url + "/ws-fapi/v1") as ws:
        await ws.send_json({"id": 1, "method": "account.status", "params": params})
        reply = await ws.receive_json(timeout=5)
        assert reply["status"] == 401 and reply["error"]["code"] == -2015
        await ws.send_json({"id": 2, "method": "userDataStream.start", "params": {"apiKey": key}})
        assert (await ws.receive_json(timeout=5))["error"]["code"] == -2015


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accountId": "../../x\n\u0000"}, "accountId"),
        ({"accountId": "a" * 65}, "accountId"),
        ({"accountId": ""}, "accountId"),
        ({"email": "x" * 1000 + "@example.com"}, "email"),
        ({"email": "not an email"}, "email"),
        ({"email": "a@b.c\n2026-01-01 INFO forged"}, "email"),
    ],
)
def test_admin_account_with_hostile_id_or_email_is_refused(
    srv: LocalServer, body: dict[str, object], field: str
) -> None:
    before = srv.admin("GET", "/admin/v1/accounts")
    status, answer = admin_raw(srv, "POST", "/admin/v1/accounts", body)
    assert status == 400 and answer["code"] == -1130  # type: ignore[index]
    assert answer["msg"].startswith(f"Data sent for parameter '{field}' is not valid")  # type: ignore[index]
    assert srv.admin("GET", "/admin/v1/accounts") == before


def test_admin_body_of_900_kb_is_refused_before_it_is_read(srv: LocalServer) -> None:
    before = srv.admin("GET", "/admin/v1/accounts")
    status, answer = admin_raw(srv, "POST", "/admin/v1/accounts", {"email": "x" * 900_000 + "@example.com"})
    assert (status, answer) == (413, {"code": -1, "msg": "admin body over 65536 bytes"})
    assert srv.admin("GET", "/admin/v1/accounts") == before


def test_the_server_keeps_serving_after_all_of_it(srv: LocalServer) -> None:
    assert asyncio.run(_ping(srv.url)) == {}
    assert counters(srv)["internalErrors"] == 0


async def _ping(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.get(url + "/api/v3/ping") as resp:
        return await resp.json()
