"""ccxt (sync) and ccxt.pro against the local exchange over real sockets, Spot and USD-M Futures."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest

from localex import clients

WAIT = 5.0


@pytest.fixture(scope="module")
def spot(server):
    _, key, secret = server.new_account(spot={"USDT": "100000", "BTC": "2"})
    ex = clients.ccxt_sync(server.url, key, secret)
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def swap(server):
    _, key, secret = server.new_account(futures={"USDT": "100000"})
    ex = clients.ccxt_sync(server.url, key, secret, default_type="swap")
    ex.load_markets()
    return ex


def _mid(ex: ccxt.binance, symbol: str) -> Decimal:
    book = ex.fetch_order_book(symbol, 5)
    return (Decimal(str(book["bids"][0][0])) + Decimal(str(book["asks"][0][0]))) / 2


def test_load_markets_has_spot_and_linear_with_filters(spot: ccxt.binance) -> None:
    m = spot.market("BTC/USDT")
    assert m["spot"] and m["precision"]["price"] == 0.01 and m["limits"]["cost"]["min"] > 0
    f = spot.market("BTC/USDT:USDT")
    assert f["swap"] and f["linear"] and f["settle"] == "USDT"


def test_balance_order_lifecycle_and_open_orders(spot: ccxt.binance) -> None:
    assert spot.fetch_balance()["free"]["USDT"] == 100000
    bid = float(_mid(spot, "BTC/USDT") * Decimal("0.8"))
    order = spot.create_order("BTC/USDT", "limit", "buy", 0.01, round(bid, 2))
    assert order["status"] == "open"
    assert [o["id"] for o in spot.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert spot.fetch_order(order["id"], "BTC/USDT")["amount"] == 0.01
    assert spot.fetch_balance()["used"]["USDT"] > 0
    assert spot.cancel_order(order["id"], "BTC/USDT")["status"] == "canceled"
    assert spot.fetch_open_orders("BTC/USDT") == []


def test_market_order_fills_against_replayed_liquidity_and_shows_in_my_trades(spot: ccxt.binance) -> None:
    order = spot.create_order("BTC/USDT", "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01
    trades = spot.fetch_my_trades("BTC/USDT")
    assert trades and trades[-1]["order"] == order["id"] and trades[-1]["fee"]["currency"] == "BTC"


def test_order_book_and_ohlcv(spot: ccxt.binance) -> None:
    book = spot.fetch_order_book("BTC/USDT", 10)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    candles = spot.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert candles and len(candles[0]) == 6 and candles[-1][2] >= candles[-1][3]


def test_filter_violation_is_binance_minus_1013(spot: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        spot.create_order("BTC/USDT", "limit", "buy", 0.0001, 1.0)  # notional 0.0001 < NOTIONAL


def test_futures_balance_leverage_order_and_positions(swap: ccxt.binance) -> None:
    assert swap.fetch_balance()["total"]["USDT"] == 100000
    assert swap.set_leverage(5, "BTC/USDT:USDT")["leverage"] == 5
    order = swap.create_order("BTC/USDT:USDT", "market", "buy", 0.05)
    assert order["status"] == "closed"
    positions = swap.fetch_positions(["BTC/USDT:USDT"])
    assert len(positions) == 1 and positions[0]["contracts"] == 0.05 and positions[0]["side"] == "long"
    # /fapi/v3/positionRisk carries no leverage field (as Binance documents it); ccxt derives the initial margin
    # rate from initialMargin / notional, which the leverage set above determines
    assert positions[0]["leverage"] is None
    assert positions[0]["initialMarginPercentage"] == pytest.approx(0.2, abs=1e-6)
    trades = swap.fetch_my_trades("BTC/USDT:USDT")
    assert trades[-1]["order"] == order["id"]


async def test_pro_watch_trades_and_order_book(server, spot: ccxt.binance) -> None:
    pro = clients.ccxt_pro_client(server.url, spot.apiKey, spot.secret)
    try:
        await pro.load_markets()
        book_task = asyncio.ensure_future(pro.watch_order_book("BTC/USDT"))
        trades_task = asyncio.ensure_future(pro.watch_trades("BTC/USDT"))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(spot.create_order, "BTC/USDT", "market", "sell", 0.01)
        book = await asyncio.wait_for(book_task, WAIT)
        trades = await asyncio.wait_for(trades_task, WAIT)
        assert book["bids"] and book["asks"] and book["nonce"] > 0
        assert trades and trades[0]["symbol"] == "BTC/USDT"
        for _ in range(3):  # diffs keep applying without a sequence gap
            book = await asyncio.wait_for(pro.watch_order_book("BTC/USDT"), WAIT)
        assert book["bids"][0][0] < book["asks"][0][0]
    finally:
        await pro.close()


async def test_pro_watch_orders_and_balance_spot(server, spot: ccxt.binance) -> None:
    pro = clients.ccxt_pro_client(server.url, spot.apiKey, spot.secret)
    try:
        await pro.load_markets()
        orders_task = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
        balance_task = asyncio.ensure_future(pro.watch_balance())
        await asyncio.sleep(0.5)
        bid = float(_mid(spot, "BTC/USDT") * Decimal("0.8"))
        placed = await asyncio.to_thread(spot.create_order, "BTC/USDT", "limit", "buy", 0.01, round(bid, 2))
        orders = await asyncio.wait_for(orders_task, WAIT)
        balance = await asyncio.wait_for(balance_task, WAIT)
        assert orders[-1]["id"] == placed["id"] and orders[-1]["status"] == "open"
        assert "USDT" in balance
        await asyncio.to_thread(spot.cancel_order, placed["id"], "BTC/USDT")
    finally:
        await pro.close()


async def test_pro_watch_orders_and_balance_futures(server, swap: ccxt.binance) -> None:
    pro = clients.ccxt_pro_client(server.url, swap.apiKey, swap.secret, default_type="swap")
    try:
        await pro.load_markets()
        orders_task = asyncio.ensure_future(pro.watch_orders("BTC/USDT:USDT"))
        balance_task = asyncio.ensure_future(pro.watch_balance())
        await asyncio.sleep(0.5)
        placed = await asyncio.to_thread(swap.create_order, "BTC/USDT:USDT", "market", "buy", 0.05)
        orders = await asyncio.wait_for(orders_task, WAIT)
        balance = await asyncio.wait_for(balance_task, WAIT)
        assert orders[-1]["id"] == placed["id"]
        assert "USDT" in balance
    finally:
        await pro.close()


def test_main_account_sub_accounts_universal_transfer_and_history(server) -> None:
    main = server.admin("GET", "/admin/v1/demo-keys")[0]
    ex = clients.ccxt_sync(server.url, main["apiKey"], main["secret"])
    emails = [s["email"] for s in ex.sapiGetSubAccountList()["subAccounts"]]
    sub = emails[0]
    before = {b["asset"]: b["free"] for b in ex.sapiV4GetSubAccountAssets({"email": sub})["balances"]}
    res = ex.sapiPostSubAccountUniversalTransfer(
        {"toEmail": sub, "fromAccountType": "SPOT", "toAccountType": "USDT_FUTURE", "asset": "USDT", "amount": "12.5"}
    )
    assert res["tranId"] > 0
    history = ex.sapiGetSubAccountUniversalTransfer({"toEmail": sub})["result"]
    assert history[-1]["tranId"] == res["tranId"] and history[-1]["amount"] == "12.50000000"
    assert history[-1]["toAccountType"] == "USDT_FUTURE"
    after = {b["asset"]: b["free"] for b in ex.sapiV4GetSubAccountAssets({"email": sub})["balances"]}
    assert after["USDT"] == before["USDT"]  # it went to the sub's futures wallet, not its spot wallet
    with pytest.raises(ccxt.ExchangeError, match="-5002"):
        ex.sapiPostSubAccountUniversalTransfer(
            {
                "toEmail": sub,
                "fromAccountType": "SPOT",
                "toAccountType": "SPOT",
                "asset": "USDT",
                "amount": "1000000000",
            }
        )
