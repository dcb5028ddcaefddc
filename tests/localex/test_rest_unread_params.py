"""Spot's -1104 ("not all sent parameters were read") and -1101 (too many parameters) for parameters an endpoint
does not read, before anything is placed; the clients see them as Binance's errors."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import ccxt
import pytest
from binance.exceptions import BinanceAPIException

from localex import clients
from tests.localex.rest_support import Ctx, funded_ctx, signed


@pytest.fixture(scope="module")
def ctx(server) -> Ctx:
    return funded_ctx(server)


def _counters(ctx: Ctx) -> dict[str, int]:
    return ctx.server.admin("GET", "/admin/v1/counters")["errorsByCode"]  # type: ignore[index, return-value]


def _open_count(ctx: Ctx) -> int:
    return len(ctx.sig("GET", "/api/v3/openOrders", symbol="BTCUSDT"))  # type: ignore[arg-type]


def _raw_signed(secret: str, pairs: list[tuple[str, str]]) -> str:
    q = urllib.parse.urlencode(pairs)
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


async def test_spot_unread_parameter_is_rejected_before_the_order_is_placed(ctx: Ctx) -> None:
    ts = str(int(time.time() * 1000))
    # the exact request of ccxt issue #7082, answered there by Binance with read '9' ... sent '10'
    body = _raw_signed(
        ctx.secret,
        [
            ("timestamp", ts),
            ("recvWindow", "5000"),
            ("symbol", "BTCUSDT"),
            ("type", "LIMIT"),
            ("side", "BUY"),
            ("quantity", "0.002"),
            ("price", "3000.00"),
            ("timeInForce", "GTC"),
            ("reduceOnly", "true"),
        ],
    )
    before_open, before_errors = _open_count(ctx), _counters(ctx).get("-1104", 0)
    before_all = len(ctx.sig("GET", "/api/v3/allOrders", symbol="BTCUSDT"))  # type: ignore[arg-type]
    hdr = {"X-MBX-APIKEY": ctx.key, "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as http:
        async with http.post(ctx.url + "/api/v3/order", data=body, headers=hdr) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "code": -1104,
                "msg": "Not all sent parameters were read; read '9' parameter(s) but was sent '10'.",
            }
            rejected_count = int(resp.headers["X-MBX-ORDER-COUNT-10S"])
        # the server keeps serving on the same connection, and the same order without the stray name is placed
        ok = _raw_signed(
            ctx.secret,
            [
                ("timestamp", ts),
                ("symbol", "BTCUSDT"),
                ("type", "LIMIT"),
                ("side", "BUY"),
                ("quantity", "0.002"),
                ("price", "3000.00"),
                ("timeInForce", "GTC"),
            ],
        )
        async with http.post(ctx.url + "/api/v3/order", data=ok, headers=hdr) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "NEW"
            assert int(resp.headers["X-MBX-ORDER-COUNT-10S"]) == rejected_count + 1  # the rejection counted none
    assert len(ctx.sig("GET", "/api/v3/allOrders", symbol="BTCUSDT")) == before_all + 1  # type: ignore[arg-type]
    assert _open_count(ctx) == before_open + 1
    assert _counters(ctx)["-1104"] == before_errors + 1
    ctx.sig("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")


async def test_spot_too_many_and_public_unread_parameters(ctx: Ctx) -> None:
    hdr = {"X-MBX-APIKEY": ctx.key}
    async with aiohttp.ClientSession() as http:
        # GET /api/v3/order declares 6 (symbol, orderId, origClientOrderId, recvWindow, timestamp, signature);
        # binance-api-postman #236 recorded this answer for order parameters sent to it
        q = signed(
            ctx.secret,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "1",
                "price": "3000",
            },
        )
        async with http.get(ctx.url + "/api/v3/order?" + q, headers=hdr) as resp:
            assert (resp.status, await resp.json()) == (
                400,
                {"code": -1101, "msg": "Too many parameters; expected '6' and received '8'."},
            )
        # public endpoints count too (node-binance-api #18: depth with "depth" instead of "limit")
        async with http.get(ctx.url + "/api/v3/depth?symbol=BTCUSDT&depth=5") as resp:
            assert (resp.status, await resp.json()) == (
                400,
                {"code": -1104, "msg": "Not all sent parameters were read; read '1' parameter(s) but was sent '2'."},
            )
        async with http.get(ctx.url + "/api/v3/ticker/price?symbol=BTCUSDT&symbolStatus=TRADING") as resp:
            assert resp.status == 200  # documented optional parameters are read
        # USD-M is not known to reject unknown names: the order is placed
        q = signed(
            ctx.secret, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02", "clientTag": "x"}
        )
        async with http.post(ctx.url + "/fapi/v1/order?" + q, headers=hdr) as resp:
            assert resp.status == 200 and (await resp.json())["orderId"] > 0


def test_clients_get_binance_errors_for_unread_parameters(server, ctx: Ctx) -> None:
    client = clients.binance_sync(server.url, ctx.key, ctx.secret)
    # python-binance #793: get_order(order_id=...) sends "order_id", which Binance does not read (1.0.37 also sends
    # recvWindow, so one more of each than the 2021 report's read '3' ... sent '4')
    with pytest.raises(BinanceAPIException) as err:
        client.get_order(symbol="BTCUSDT", order_id=1)
    assert (err.value.status_code, err.value.code) == (400, -1104)
    assert err.value.message == "Not all sent parameters were read; read '4' parameter(s) but was sent '5'."
    ex = clients.ccxt_sync(server.url, ctx.key, ctx.secret)
    ex.load_markets()
    before = _open_count(ctx)
    with pytest.raises(ccxt.BadRequest, match="-1104"):
        ex.create_order("BTC/USDT", "limit", "buy", 0.002, 3000, {"positionSide": "LONG"})  # ccxt #18268
    assert _open_count(ctx) == before
    placed = ex.create_order("BTC/USDT", "limit", "buy", 0.002, 3000)  # still serving, same client
    assert placed["status"] == "open"
    ex.cancel_order(placed["id"], "BTC/USDT")


def test_every_spot_endpoint_declares_its_parameters() -> None:
    from localex.server import routes_market, routes_spot

    spot = [ep for ep in routes_market.ENDPOINTS + routes_spot.ENDPOINTS if ep.path.startswith("/api/v3/")]
    assert spot and all(ep.params is not None for ep in spot)
    assert all(ep.params is None for ep in routes_market.ENDPOINTS if ep.path.startswith("/fapi/"))
