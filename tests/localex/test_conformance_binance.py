"""python-binance (sync Client, AsyncClient, socket manager, WebSocket API) against the local exchange."""

from __future__ import annotations

import asyncio

import pytest
from binance.exceptions import BinanceAPIException

from localex import clients

WAIT = 5.0
POLL = 0.2  # python-binance's read loop polls every TIMEOUT s; exiting a socket waits for one poll


def fast(sock):
    """Shorten a python-binance socket's poll interval so leaving it takes 0.2 s, not 10 s."""
    sock.TIMEOUT = POLL
    return sock


@pytest.fixture(scope="module")
def keys(server):
    _, key, secret = server.new_account(spot={"USDT": "100000", "BTC": "1"}, futures={"USDT": "100000"})
    return key, secret


def test_sync_rest_spot_and_futures(server, keys) -> None:
    client = clients.binance_sync(server.url, *keys)
    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - client.get_server_time()["serverTime"]) < 5000
    info = client.get_symbol_info("BTCUSDT")
    assert {f["filterType"] for f in info["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL", "MARKET_LOT_SIZE"}
    usdt = next(b for b in client.get_account()["balances"] if b["asset"] == "USDT")
    assert usdt == {"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"}
    order = client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert order["status"] == "FILLED" and order["fills"] and isinstance(order["fills"][0]["price"], str)
    assert client.get_my_trades(symbol="BTCUSDT")[-1]["orderId"] == order["orderId"]
    with pytest.raises(BinanceAPIException) as err:
        client.get_order(symbol="BTCUSDT", orderId=99999999)
    assert err.value.code == -2013
    fut = client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.05")
    assert fut["status"] in ("NEW", "FILLED")
    risk = [p for p in client.futures_position_information(symbol="BTCUSDT") if float(p["positionAmt"])]
    assert risk and risk[0]["positionAmt"] == "0.050"
    assert client.futures_change_leverage(symbol="BTCUSDT", leverage=3)["leverage"] == 3
    assert client.futures_leverage_bracket(symbol="BTCUSDT")["brackets"][0]["initialLeverage"] == 125


async def test_socket_manager_trade_and_depth_streams(server, keys) -> None:
    client = await clients.binance_async(server.url, *keys)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        trade_sock, depth_sock = fast(bsm.trade_socket("BTCUSDT")), fast(bsm.depth_socket("BTCUSDT", interval=100))
        async with trade_sock as trades, depth_sock as depth:
            await asyncio.sleep(0.3)
            await client.order_market_sell(symbol="BTCUSDT", quantity="0.001")
            trade = await asyncio.wait_for(trades.recv(), WAIT)
            diff = await asyncio.wait_for(depth.recv(), WAIT)
        assert trade["e"] == "trade" and trade["s"] == "BTCUSDT" and isinstance(trade["p"], str)
        assert diff["e"] == "depthUpdate" and diff["U"] <= diff["u"]
        async with fast(bsm.futures_multiplex_socket(["btcusdt@aggTrade"])) as fut:
            await asyncio.sleep(0.3)
            await client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")
            msg = await asyncio.wait_for(fut.recv(), WAIT)
        assert msg["stream"] == "btcusdt@aggTrade" and msg["data"]["e"] == "aggTrade"
    finally:
        await client.close_connection()


async def test_user_socket_and_ws_create_order(server, keys) -> None:
    client = await clients.binance_async(server.url, *keys)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        fast(client.ws_api)
        async with fast(bsm.user_socket()) as user:
            placed = await client.ws_create_order(
                symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002", price="3000.00"
            )
            assert placed["status"] == "NEW"
            events = [await asyncio.wait_for(user.recv(), WAIT) for _ in range(2)]
        kinds = {e["e"] for e in events}
        assert "executionReport" in kinds
        report = next(e for e in events if e["e"] == "executionReport")
        assert report["i"] == placed["orderId"] and report["x"] == "NEW"
        got = await client.ws_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
        assert got["status"] == "NEW"
        canceled = await client.ws_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
        assert canceled["status"] == "CANCELED"
    finally:
        await client.close_connection()


async def test_futures_user_socket_and_ws_futures_order(server, keys) -> None:
    client = await clients.binance_async(server.url, *keys)
    try:
        bsm = clients.binance_socket_manager(client, server.url)
        fast(client.ws_future)
        async with fast(bsm.futures_user_socket()) as user:
            await asyncio.sleep(0.2)
            placed = await client.ws_futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.05")
            events = [await asyncio.wait_for(user.recv(), WAIT) for _ in range(2)]
        assert placed["orderId"] > 0
        kinds = {e["e"] for e in events}
        assert kinds <= {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"} and "ORDER_TRADE_UPDATE" in kinds
    finally:
        await client.close_connection()


def test_api_restrictions_report_what_the_key_may_do(server) -> None:
    """GET /sapi/v1/account/apiRestrictions (python-binance get_account_api_permissions), as Binance
    documents it: the live preflight refuses sub-account keys that report enableWithdrawals."""
    main_id, key, secret = server.new_account(permissions=["SPOT", "FUTURES", "TRANSFER", "WITHDRAW"])
    full = clients.binance_sync(server.url, key, secret).get_account_api_permissions()
    assert full["enableWithdrawals"] is True and full["enableFutures"] is True
    assert full["enableSpotAndMarginTrading"] is True and full["enableReading"] is True
    assert isinstance(full["createTime"], int) and full["ipRestrict"] is False
    _, sub_key, sub_secret = server.new_account(permissions=["SPOT"], parent=main_id)
    narrow = clients.binance_sync(server.url, sub_key, sub_secret).get_account_api_permissions()
    assert narrow["enableWithdrawals"] is False and narrow["enableFutures"] is False
    assert narrow["permitsUniversalTransfer"] is False
