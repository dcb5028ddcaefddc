"""REST bodies against Binance's documented examples, and Spot's -1104/-1101 for parameters it does not read.

The key lists below are copied from Binance's documentation (response examples), one table row per body:
- Spot: binance-spot-api-docs ``rest-api.md`` (https://developers.binance.com/docs/binance-spot-api-docs/rest-api)
  and ``faqs/commission_faq.md`` (commission and ``computeCommissionRates`` bodies).
- USD-M futures: https://developers.binance.com/docs/derivatives/usds-margined-futures (Market Data, Trade,
  Account pages: "New Order", "Position Information V2/V3", "Account Information V2/V3", ...).
- SAPI: https://developers.binance.com/docs/sub_account and /docs/wallet (universalTransfer, asset/transfer).
Each row names the exact key set, in Binance's order where the docs fix one, and each value's JSON type:
``DEC`` a decimal string ("0.01000000", never a float or "0E-8"), ``INT`` an integer (ids, ms times).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import aiohttp
import ccxt
import pytest
from binance.exceptions import BinanceAPIException

from localex import clients

DEC, INT, BOOL, STR, LIST, DICT, FLOAT = "dec", "int", "bool", "str", "list", "dict", "float"
DEC_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def type_ok(kind: str, value: object) -> bool:
    """Whether ``value`` has the JSON type ``kind`` stands for."""
    if kind == DEC:
        return isinstance(value, str) and bool(DEC_RE.match(value))
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {BOOL: bool, STR: str, LIST: list, DICT: dict, FLOAT: float}[kind])


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, object]:
    """One HTTP request: ``(status, json)`` whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def signed(secret: str, params: dict[str, object]) -> str:
    """``params`` + timestamp, signed like Binance: hex HMAC-SHA256 of the query string."""
    q = urllib.parse.urlencode({**params, "timestamp": int(time.time() * 1000)})
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


class Ctx:
    """A funded account on the module's server and signed/public request helpers."""

    def __init__(self, server) -> None:
        self.url = server.url
        self.account, self.key, self.secret = server.new_account(
            spot={"USDT": "100000", "BTC": "2"}, futures={"USDT": "100000"}
        )
        self.server = server
        self.cache: dict[str, object] = {}

    def pub(self, path: str, **params: object) -> object:
        status, body = call(self.url + path + ("?" + urllib.parse.urlencode(params) if params else ""))
        assert status == 200, body
        return body

    def sig(self, method: str, path: str, **params: object) -> object:
        status, body = call(self.url + path + "?" + signed(self.secret, params), method, {"X-MBX-APIKEY": self.key})
        assert status == 200, body
        return body

    def once(self, name: str, make: Callable[[], object]) -> object:
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]


@pytest.fixture(scope="module")
def ctx(server):
    c = Ctx(server)
    c.sig("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    c.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.05")
    return c


def _resting_spot(c: Ctx) -> dict:
    return c.once(
        "spot_limit",
        lambda: c.sig(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.002",
            price="3000.00",
        ),
    )  # type: ignore


def _resting_fut(c: Ctx) -> dict:
    return c.once(
        "fut_limit",
        lambda: c.sig(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.05",
            price=c.server.resting_futures_price(),
        ),
    )  # type: ignore


def _sub_email(c: Ctx) -> str:
    def make() -> str:
        c.sig("POST", "/sapi/v1/sub-account/virtualSubAccount", subAccountString="fidelity")
        return c.sig("GET", "/sapi/v1/sub-account/list")["subAccounts"][0]["email"]  # type: ignore[index]

    return c.once("sub", make)  # type: ignore[return-value]


SPOT_ORDER_ACK = {"symbol": STR, "orderId": INT, "orderListId": INT, "clientOrderId": STR, "transactTime": INT}
SPOT_ORDER_RESULT = {
    **SPOT_ORDER_ACK,
    "price": DEC,
    "origQty": DEC,
    "executedQty": DEC,
    "origQuoteOrderQty": DEC,
    "cummulativeQuoteQty": DEC,
    "status": STR,
    "timeInForce": STR,
    "type": STR,
    "side": STR,
    "workingTime": INT,
    "selfTradePreventionMode": STR,
}
SPOT_ORDER = {
    "symbol": STR,
    "orderId": INT,
    "orderListId": INT,
    "clientOrderId": STR,
    "price": DEC,
    "origQty": DEC,
    "executedQty": DEC,
    "cummulativeQuoteQty": DEC,
    "status": STR,
    "timeInForce": STR,
    "type": STR,
    "side": STR,
    "stopPrice": DEC,
    "icebergQty": DEC,
    "time": INT,
    "updateTime": INT,
    "isWorking": BOOL,
    "workingTime": INT,
    "origQuoteOrderQty": DEC,
    "selfTradePreventionMode": STR,
}
SPOT_CANCEL = {
    "symbol": STR,
    "origClientOrderId": STR,
    "orderId": INT,
    "orderListId": INT,
    "clientOrderId": STR,
    "transactTime": INT,
    "price": DEC,
    "origQty": DEC,
    "executedQty": DEC,
    "origQuoteOrderQty": DEC,
    "cummulativeQuoteQty": DEC,
    "status": STR,
    "timeInForce": STR,
    "type": STR,
    "side": STR,
    "selfTradePreventionMode": STR,
}
SPOT_SYMBOL = {
    "symbol": STR,
    "status": STR,
    "baseAsset": STR,
    "baseAssetPrecision": INT,
    "quoteAsset": STR,
    "quotePrecision": INT,
    "quoteAssetPrecision": INT,
    "baseCommissionPrecision": INT,
    "quoteCommissionPrecision": INT,
    "orderTypes": LIST,
    "icebergAllowed": BOOL,
    "ocoAllowed": BOOL,
    "otoAllowed": BOOL,
    "opoAllowed": BOOL,
    "quoteOrderQtyMarketAllowed": BOOL,
    "allowTrailingStop": BOOL,
    "cancelReplaceAllowed": BOOL,
    "amendAllowed": BOOL,
    "pegInstructionsAllowed": BOOL,
    "isSpotTradingAllowed": BOOL,
    "isMarginTradingAllowed": BOOL,
    "filters": LIST,
    "permissions": LIST,
    "permissionSets": LIST,
    "defaultSelfTradePreventionMode": STR,
    "allowedSelfTradePreventionModes": LIST,
}
TICKER_MINI = {
    "symbol": STR,
    "openPrice": DEC,
    "highPrice": DEC,
    "lowPrice": DEC,
    "lastPrice": DEC,
    "volume": DEC,
    "quoteVolume": DEC,
    "openTime": INT,
    "closeTime": INT,
    "firstId": INT,
    "lastId": INT,
    "count": INT,
}
SPOT_TICKER = {
    "symbol": STR,
    "priceChange": DEC,
    "priceChangePercent": DEC,
    "weightedAvgPrice": DEC,
    "prevClosePrice": DEC,
    "lastPrice": DEC,
    "lastQty": DEC,
    "bidPrice": DEC,
    "bidQty": DEC,
    "askPrice": DEC,
    "askQty": DEC,
    "openPrice": DEC,
    "highPrice": DEC,
    "lowPrice": DEC,
    "volume": DEC,
    "quoteVolume": DEC,
    "openTime": INT,
    "closeTime": INT,
    "firstId": INT,
    "lastId": INT,
    "count": INT,
}
RATES4 = {"maker": DEC, "taker": DEC, "buyer": DEC, "seller": DEC}
RATES2 = {"maker": DEC, "taker": DEC}
DISCOUNT = {"enabledForAccount": BOOL, "enabledForSymbol": BOOL, "discountAsset": STR, "discount": DEC}
FUT_ORDER = {
    "orderId": INT,
    "symbol": STR,
    "status": STR,
    "clientOrderId": STR,
    "price": DEC,
    "avgPrice": DEC,
    "origQty": DEC,
    "executedQty": DEC,
    "cumQty": DEC,
    "cumQuote": DEC,
    "timeInForce": STR,
    "type": STR,
    "reduceOnly": BOOL,
    "closePosition": BOOL,
    "side": STR,
    "positionSide": STR,
    "stopPrice": DEC,
    "workingType": STR,
    "priceProtect": BOOL,
    "origType": STR,
    "priceMatch": STR,
    "selfTradePreventionMode": STR,
    "goodTillDate": INT,
    "updateTime": INT,
}
FUT_SYMBOL = {
    "symbol": STR,
    "pair": STR,
    "contractType": STR,
    "deliveryDate": INT,
    "onboardDate": INT,
    "status": STR,
    "maintMarginPercent": DEC,
    "requiredMarginPercent": DEC,
    "baseAsset": STR,
    "quoteAsset": STR,
    "marginAsset": STR,
    "pricePrecision": INT,
    "quantityPrecision": INT,
    "baseAssetPrecision": INT,
    "quotePrecision": INT,
    "underlyingType": STR,
    "underlyingSubType": LIST,
    "triggerProtect": DEC,
    "liquidationFee": DEC,
    "marketTakeBound": DEC,
    "maxMoveOrderLimit": INT,
    "filters": LIST,
    "orderTypes": LIST,
    "timeInForce": LIST,
    "permissionSets": LIST,
}
FUT_TOTALS = {
    "totalInitialMargin": DEC,
    "totalMaintMargin": DEC,
    "totalWalletBalance": DEC,
    "totalUnrealizedProfit": DEC,
    "totalMarginBalance": DEC,
    "totalPositionInitialMargin": DEC,
    "totalOpenOrderInitialMargin": DEC,
    "totalCrossWalletBalance": DEC,
    "totalCrossUnPnl": DEC,
    "availableBalance": DEC,
    "maxWithdrawAmount": DEC,
}
FUT_ASSET_V3 = {
    "asset": STR,
    "walletBalance": DEC,
    "unrealizedProfit": DEC,
    "marginBalance": DEC,
    "maintMargin": DEC,
    "initialMargin": DEC,
    "positionInitialMargin": DEC,
    "openOrderInitialMargin": DEC,
    "crossWalletBalance": DEC,
    "crossUnPnl": DEC,
    "availableBalance": DEC,
    "maxWithdrawAmount": DEC,
    "updateTime": INT,
}
FUT_ASSET_V2 = {k: v for k, v in FUT_ASSET_V3.items() if k != "updateTime"} | {
    "marginAvailable": BOOL,
    "updateTime": INT,
}
POSITION_V2 = {
    "symbol": STR,
    "positionAmt": DEC,
    "entryPrice": DEC,
    "breakEvenPrice": DEC,
    "markPrice": DEC,
    "unRealizedProfit": DEC,
    "liquidationPrice": DEC,
    "leverage": DEC,
    "maxNotionalValue": DEC,
    "marginType": STR,
    "isolatedMargin": DEC,
    "isAutoAddMargin": STR,
    "positionSide": STR,
    "notional": DEC,
    "isolatedWallet": DEC,
    "updateTime": INT,
}
POSITION_V3 = {
    "symbol": STR,
    "positionSide": STR,
    "positionAmt": DEC,
    "entryPrice": DEC,
    "breakEvenPrice": DEC,
    "markPrice": DEC,
    "unRealizedProfit": DEC,
    "liquidationPrice": DEC,
    "isolatedMargin": DEC,
    "notional": DEC,
    "marginAsset": STR,
    "isolatedWallet": DEC,
    "initialMargin": DEC,
    "maintMargin": DEC,
    "positionInitialMargin": DEC,
    "openOrderInitialMargin": DEC,
    "adl": INT,
    "bidNotional": DEC,
    "askNotional": DEC,
    "updateTime": INT,
}
ACCOUNT_POSITION_V2 = {
    "symbol": STR,
    "initialMargin": DEC,
    "maintMargin": DEC,
    "unrealizedProfit": DEC,
    "positionInitialMargin": DEC,
    "openOrderInitialMargin": DEC,
    "leverage": DEC,
    "isolated": BOOL,
    "entryPrice": DEC,
    "breakEvenPrice": DEC,
    "maxNotional": DEC,
    "bidNotional": DEC,
    "askNotional": DEC,
    "positionSide": STR,
    "positionAmt": DEC,
    "updateTime": INT,
}
ACCOUNT_POSITION_V3 = {
    "symbol": STR,
    "positionSide": STR,
    "positionAmt": DEC,
    "unrealizedProfit": DEC,
    "isolatedMargin": DEC,
    "notional": DEC,
    "isolatedWallet": DEC,
    "initialMargin": DEC,
    "maintMargin": DEC,
    "updateTime": INT,
}

Fetch = Callable[[Ctx], object]
CASES: list[tuple[str, Fetch, dict[str, str]]] = [
    # ---- Spot public (rest-api.md "General endpoints", "Market Data endpoints")
    ("spot ping", lambda c: c.pub("/api/v3/ping"), {}),
    ("spot time", lambda c: c.pub("/api/v3/time"), {"serverTime": INT}),
    (
        "spot exchangeInfo",
        lambda c: c.pub("/api/v3/exchangeInfo"),
        {"timezone": STR, "serverTime": INT, "rateLimits": LIST, "exchangeFilters": LIST, "symbols": LIST},
    ),
    ("spot exchangeInfo symbol", lambda c: c.pub("/api/v3/exchangeInfo", symbol="BTCUSDT")["symbols"][0], SPOT_SYMBOL),
    (
        "spot rateLimit",
        lambda c: c.pub("/api/v3/exchangeInfo")["rateLimits"][0],
        {"rateLimitType": STR, "interval": STR, "intervalNum": INT, "limit": INT},
    ),
    (
        "spot depth",
        lambda c: c.pub("/api/v3/depth", symbol="BTCUSDT", limit=5),
        {"lastUpdateId": INT, "bids": LIST, "asks": LIST},
    ),
    (
        "spot trades",
        lambda c: c.pub("/api/v3/trades", symbol="BTCUSDT")[-1],
        {"id": INT, "price": DEC, "qty": DEC, "quoteQty": DEC, "time": INT, "isBuyerMaker": BOOL, "isBestMatch": BOOL},
    ),
    (
        "spot aggTrades",
        lambda c: c.pub("/api/v3/aggTrades", symbol="BTCUSDT")[-1],
        {"a": INT, "p": DEC, "q": DEC, "f": INT, "l": INT, "T": INT, "m": BOOL, "M": BOOL},
    ),
    ("spot ticker 24hr", lambda c: c.pub("/api/v3/ticker/24hr", symbol="BTCUSDT"), SPOT_TICKER),
    ("spot ticker 24hr MINI", lambda c: c.pub("/api/v3/ticker/24hr", symbol="BTCUSDT", type="MINI"), TICKER_MINI),
    ("spot ticker price", lambda c: c.pub("/api/v3/ticker/price", symbol="BTCUSDT"), {"symbol": STR, "price": DEC}),
    (
        "spot bookTicker",
        lambda c: c.pub("/api/v3/ticker/bookTicker", symbol="BTCUSDT"),
        {"symbol": STR, "bidPrice": DEC, "bidQty": DEC, "askPrice": DEC, "askQty": DEC},
    ),
    # ---- Spot account (rest-api.md "Account endpoints"; commission_faq.md)
    (
        "spot order ACK",
        lambda c: c.sig(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.001",
            newOrderRespType="ACK",
        ),
        SPOT_ORDER_ACK,
    ),
    (
        "spot order RESULT",
        lambda c: c.sig(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.001",
            newOrderRespType="RESULT",
        ),
        SPOT_ORDER_RESULT,
    ),
    (
        "spot order FULL",
        lambda c: c.sig("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"),
        {**SPOT_ORDER_RESULT, "fills": LIST},
    ),
    (
        "spot FULL fill",
        lambda c: c.sig("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001")[
            "fills"
        ][0],
        {"price": DEC, "qty": DEC, "commission": DEC, "commissionAsset": STR, "tradeId": INT},
    ),
    (
        "spot test order commission",
        lambda c: c.sig(
            "POST",
            "/api/v3/order/test",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.001",
            computeCommissionRates="true",
        ),
        {
            "standardCommissionForOrder": DICT,
            "specialCommissionForOrder": DICT,
            "taxCommissionForOrder": DICT,
            "discount": DICT,
        },
    ),
    (
        "spot query order",
        lambda c: c.sig("GET", "/api/v3/order", symbol="BTCUSDT", orderId=_resting_spot(c)["orderId"]),
        SPOT_ORDER,
    ),
    ("spot allOrders market row", lambda c: c.sig("GET", "/api/v3/allOrders", symbol="BTCUSDT")[0], SPOT_ORDER),
    (
        "spot cancel",
        lambda c: c.sig(
            "DELETE",
            "/api/v3/order",
            symbol="BTCUSDT",
            orderId=c.sig(
                "POST",
                "/api/v3/order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.002",
                price="3000.00",
            )["orderId"],
        ),
        SPOT_CANCEL,
    ),
    (
        "spot myTrades",
        lambda c: c.sig("GET", "/api/v3/myTrades", symbol="BTCUSDT")[0],
        {
            "symbol": STR,
            "id": INT,
            "orderId": INT,
            "orderListId": INT,
            "price": DEC,
            "qty": DEC,
            "quoteQty": DEC,
            "commission": DEC,
            "commissionAsset": STR,
            "time": INT,
            "isBuyer": BOOL,
            "isMaker": BOOL,
            "isBestMatch": BOOL,
        },
    ),
    (
        "spot account",
        lambda c: c.sig("GET", "/api/v3/account"),
        {
            "makerCommission": INT,
            "takerCommission": INT,
            "buyerCommission": INT,
            "sellerCommission": INT,
            "commissionRates": DICT,
            "canTrade": BOOL,
            "canWithdraw": BOOL,
            "canDeposit": BOOL,
            "brokered": BOOL,
            "requireSelfTradePrevention": BOOL,
            "preventSor": BOOL,
            "updateTime": INT,
            "accountType": STR,
            "balances": LIST,
            "permissions": LIST,
            "uid": INT,
        },
    ),
    (
        "spot account balance",
        lambda c: c.sig("GET", "/api/v3/account")["balances"][0],
        {"asset": STR, "free": DEC, "locked": DEC},
    ),
    (
        "spot commission",
        lambda c: c.sig("GET", "/api/v3/account/commission", symbol="BTCUSDT"),
        {"symbol": STR, "standardCommission": DICT, "specialCommission": DICT, "taxCommission": DICT, "discount": DICT},
    ),
    (
        "spot commission rates",
        lambda c: c.sig("GET", "/api/v3/account/commission", symbol="BTCUSDT")["taxCommission"],
        RATES4,
    ),
    (
        "spot commission discount",
        lambda c: c.sig("GET", "/api/v3/account/commission", symbol="BTCUSDT")["discount"],
        DISCOUNT,
    ),
    # ---- USD-M market data (usds-margined-futures/market-data/rest-api)
    (
        "fut exchangeInfo",
        lambda c: c.pub("/fapi/v1/exchangeInfo"),
        {
            "timezone": STR,
            "serverTime": INT,
            "futuresType": STR,
            "rateLimits": LIST,
            "exchangeFilters": LIST,
            "assets": LIST,
            "symbols": LIST,
        },
    ),
    ("fut exchangeInfo symbol", lambda c: c.pub("/fapi/v1/exchangeInfo")["symbols"][0], FUT_SYMBOL),
    (
        "fut depth",
        lambda c: c.pub("/fapi/v1/depth", symbol="BTCUSDT", limit=5),
        {"lastUpdateId": INT, "E": INT, "T": INT, "bids": LIST, "asks": LIST},
    ),
    (
        "fut trades",
        lambda c: c.pub("/fapi/v1/trades", symbol="BTCUSDT")[-1],
        {"id": INT, "price": DEC, "qty": DEC, "quoteQty": DEC, "time": INT, "isBuyerMaker": BOOL},
    ),
    (
        "fut aggTrades",
        lambda c: c.pub("/fapi/v1/aggTrades", symbol="BTCUSDT")[-1],
        {"a": INT, "p": DEC, "q": DEC, "f": INT, "l": INT, "T": INT, "m": BOOL},
    ),
    (
        "fut ticker 24hr",
        lambda c: c.pub("/fapi/v1/ticker/24hr", symbol="BTCUSDT"),
        {
            "symbol": STR,
            "priceChange": DEC,
            "priceChangePercent": DEC,
            "weightedAvgPrice": DEC,
            "lastPrice": DEC,
            "lastQty": DEC,
            "openPrice": DEC,
            "highPrice": DEC,
            "lowPrice": DEC,
            "volume": DEC,
            "quoteVolume": DEC,
            "openTime": INT,
            "closeTime": INT,
            "firstId": INT,
            "lastId": INT,
            "count": INT,
        },
    ),
    (
        "fut ticker price",
        lambda c: c.pub("/fapi/v1/ticker/price", symbol="BTCUSDT"),
        {"symbol": STR, "price": DEC, "time": INT},
    ),
    (
        "fut ticker price v2",
        lambda c: c.pub("/fapi/v2/ticker/price", symbol="BTCUSDT"),
        {"symbol": STR, "price": DEC, "time": INT},
    ),
    (
        "fut bookTicker",
        lambda c: c.pub("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT"),
        {
            "lastUpdateId": INT,
            "symbol": STR,
            "bidPrice": DEC,
            "bidQty": DEC,
            "askPrice": DEC,
            "askQty": DEC,
            "time": INT,
        },
    ),
    (
        "fut premiumIndex",
        lambda c: c.pub("/fapi/v1/premiumIndex", symbol="BTCUSDT"),
        {
            "symbol": STR,
            "markPrice": DEC,
            "indexPrice": DEC,
            "estimatedSettlePrice": DEC,
            "lastFundingRate": DEC,
            "interestRate": DEC,
            "nextFundingTime": INT,
            "time": INT,
        },
    ),
    # ---- USD-M trade and account (usds-margined-futures/trade/rest-api, account/rest-api)
    (
        "fut order ACK",
        lambda c: c.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02"),
        FUT_ORDER,
    ),
    (
        "fut order RESULT",
        lambda c: c.sig(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.02",
            newOrderRespType="RESULT",
        ),
        FUT_ORDER,
    ),
    (
        "fut query order",
        lambda c: c.sig("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=_resting_fut(c)["orderId"]),
        {**FUT_ORDER, "time": INT},
    ),
    (
        "fut openOrders",
        lambda c: (_resting_fut(c), c.sig("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")[0])[1],
        {**FUT_ORDER, "time": INT},
    ),
    (
        "fut userTrades",
        lambda c: c.sig("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")[0],
        {
            "buyer": BOOL,
            "commission": DEC,
            "commissionAsset": STR,
            "id": INT,
            "maker": BOOL,
            "orderId": INT,
            "price": DEC,
            "qty": DEC,
            "quoteQty": DEC,
            "realizedPnl": DEC,
            "side": STR,
            "positionSide": STR,
            "symbol": STR,
            "time": INT,
        },
    ),
    (
        "fut account v2",
        lambda c: c.sig("GET", "/fapi/v2/account"),
        {
            "feeTier": INT,
            "feeBurn": BOOL,
            "canTrade": BOOL,
            "canDeposit": BOOL,
            "canWithdraw": BOOL,
            "updateTime": INT,
            "multiAssetsMargin": BOOL,
            "tradeGroupId": INT,
            **FUT_TOTALS,
            "assets": LIST,
            "positions": LIST,
        },
    ),
    ("fut account v2 asset", lambda c: c.sig("GET", "/fapi/v2/account")["assets"][0], FUT_ASSET_V2),
    ("fut account v2 position", lambda c: c.sig("GET", "/fapi/v2/account")["positions"][0], ACCOUNT_POSITION_V2),
    ("fut account v3", lambda c: c.sig("GET", "/fapi/v3/account"), {**FUT_TOTALS, "assets": LIST, "positions": LIST}),
    ("fut account v3 asset", lambda c: c.sig("GET", "/fapi/v3/account")["assets"][0], FUT_ASSET_V3),
    ("fut account v3 position", lambda c: c.sig("GET", "/fapi/v3/account")["positions"][0], ACCOUNT_POSITION_V3),
    (
        "fut balance v2",
        lambda c: c.sig("GET", "/fapi/v2/balance")[0],
        {
            "accountAlias": STR,
            "asset": STR,
            "balance": DEC,
            "crossWalletBalance": DEC,
            "crossUnPnl": DEC,
            "availableBalance": DEC,
            "maxWithdrawAmount": DEC,
            "marginAvailable": BOOL,
            "updateTime": INT,
        },
    ),
    ("fut positionRisk v2", lambda c: c.sig("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")[0], POSITION_V2),
    ("fut positionRisk v3", lambda c: c.sig("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")[0], POSITION_V3),
    (
        "fut leverage",
        lambda c: c.sig("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=20),
        {"leverage": INT, "maxNotionalValue": DEC, "symbol": STR},
    ),
    (
        "fut leverageBracket",
        lambda c: c.sig("GET", "/fapi/v1/leverageBracket", symbol="BTCUSDT"),
        {"symbol": STR, "notionalCoef": FLOAT, "brackets": LIST},
    ),
    (
        "fut leverageBracket row",
        lambda c: c.sig("GET", "/fapi/v1/leverageBracket", symbol="BTCUSDT")["brackets"][0],
        {
            "bracket": INT,
            "initialLeverage": INT,
            "notionalCap": INT,
            "notionalFloor": INT,
            "maintMarginRatio": FLOAT,
            "cum": FLOAT,
        },
    ),
    ("fut positionSide dual", lambda c: c.sig("GET", "/fapi/v1/positionSide/dual"), {"dualSidePosition": BOOL}),
    (
        "fut commissionRate",
        lambda c: c.sig("GET", "/fapi/v1/commissionRate", symbol="BTCUSDT"),
        {"symbol": STR, "makerCommissionRate": DEC, "takerCommissionRate": DEC},
    ),
    (
        "fut cancel all",
        lambda c: c.sig("DELETE", "/fapi/v1/allOpenOrders", symbol="ETHUSDT"),
        {"code": INT, "msg": STR},
    ),
    # ---- SAPI (sub_account/..., wallet/asset/...)
    ("sapi system status", lambda c: c.pub("/sapi/v1/system/status"), {"status": INT, "msg": STR}),
    (
        "sapi sub-account list row",
        lambda c: (_sub_email(c), c.sig("GET", "/sapi/v1/sub-account/list"))[1]["subAccounts"][0],
        {
            "email": STR,
            "isFreeze": BOOL,
            "createTime": INT,
            "isManagedSubAccount": BOOL,
            "isAssetManagementSubAccount": BOOL,
        },
    ),
    (
        "sapi universalTransfer",
        lambda c: c.sig(
            "POST",
            "/sapi/v1/sub-account/universalTransfer",
            toEmail=_sub_email(c),
            fromAccountType="SPOT",
            toAccountType="SPOT",
            asset="USDT",
            amount="10",
        ),
        {"tranId": INT, "clientTranId": STR},
    ),
    (
        "sapi universalTransfer history",
        lambda c: c.sig("GET", "/sapi/v1/sub-account/universalTransfer"),
        {"result": LIST, "totalCount": INT},
    ),
    (
        "sapi universalTransfer row",
        lambda c: c.sig("GET", "/sapi/v1/sub-account/universalTransfer")["result"][0],
        {
            "tranId": INT,
            "fromEmail": STR,
            "toEmail": STR,
            "asset": STR,
            "amount": DEC,
            "createTimeStamp": INT,
            "fromAccountType": STR,
            "toAccountType": STR,
            "status": STR,
            "clientTranId": STR,
        },
    ),
    (
        "sapi v4 sub-account asset",
        lambda c: c.sig("GET", "/sapi/v4/sub-account/assets", email=_sub_email(c))["balances"][0],
        {"asset": STR, "free": DEC, "locked": DEC, "freeze": DEC, "withdrawing": DEC},
    ),
    (
        "sapi v3 sub-account asset",
        lambda c: c.sig("GET", "/sapi/v3/sub-account/assets", email=_sub_email(c))["balances"][0],
        {"asset": STR, "free": FLOAT, "locked": FLOAT, "freeze": INT, "withdrawing": INT},
    ),
    (
        "sapi v2 sub-account futures account",  # Get Detail on Sub-account's Futures Account V2, USD-M
        lambda c: c.sig("GET", "/sapi/v2/sub-account/futures/account", email=_sub_email(c), futuresType=1)[
            "futureAccountResp"
        ],
        {
            "email": STR,
            "assets": LIST,
            "canDeposit": BOOL,
            "canTrade": BOOL,
            "canWithdraw": BOOL,
            "feeTier": INT,
            "maxWithdrawAmount": DEC,
            "totalInitialMargin": DEC,
            "totalMaintenanceMargin": DEC,
            "totalMarginBalance": DEC,
            "totalOpenOrderInitialMargin": DEC,
            "totalPositionInitialMargin": DEC,
            "totalUnrealizedProfit": DEC,
            "totalWalletBalance": DEC,
            "updateTime": INT,
        },  # fmt: skip
    ),
    (
        "sapi v2 sub-account futures asset",
        lambda c: c.sig("GET", "/sapi/v2/sub-account/futures/account", email=_sub_email(c), futuresType=1)[
            "futureAccountResp"
        ]["assets"][0],
        {
            "asset": STR,
            "initialMargin": DEC,
            "maintenanceMargin": DEC,
            "marginBalance": DEC,
            "maxWithdrawAmount": DEC,
            "openOrderInitialMargin": DEC,
            "positionInitialMargin": DEC,
            "unrealizedProfit": DEC,
            "walletBalance": DEC,
        },  # fmt: skip
    ),
    (
        "sapi asset transfer",
        lambda c: c.sig("POST", "/sapi/v1/asset/transfer", type="MAIN_UMFUTURE", asset="USDT", amount="1"),
        {"tranId": INT},
    ),
    (
        "sapi asset transfer row",
        lambda c: c.sig("GET", "/sapi/v1/asset/transfer", type="MAIN_UMFUTURE")["rows"][0],
        {"asset": STR, "amount": DEC, "type": STR, "status": STR, "tranId": INT, "timestamp": INT},
    ),
]


@pytest.mark.parametrize(("name", "fetch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_body_matches_documented_keys_and_types(ctx: Ctx, name: str, fetch: Fetch, expected: dict[str, str]) -> None:
    body = fetch(ctx)
    assert isinstance(body, dict), body
    assert list(body) == list(expected), f"{name}: keys differ from Binance's documented example"
    bad = {k: body[k] for k, kind in expected.items() if not type_ok(kind, body[k])}
    assert not bad, f"{name}: values of the wrong JSON type: {bad}"


def test_klines_rows_are_ints_and_decimal_strings(ctx: Ctx) -> None:
    kinds = [INT, DEC, DEC, DEC, DEC, DEC, INT, DEC, INT, DEC, DEC, DEC]  # rest-api.md "Kline/Candlestick data"
    for path in ("/api/v3/klines", "/fapi/v1/klines"):
        rows = ctx.pub(path, symbol="BTCUSDT", interval="1m", limit=3)
        assert rows and all(len(r) == 12 and all(type_ok(k, v) for k, v in zip(kinds, r, strict=True)) for r in rows)


def test_decimal_formats_follow_binance(ctx: Ctx) -> None:
    order = ctx.sig("GET", "/api/v3/allOrders", symbol="BTCUSDT")[0]
    assert order["type"] == "MARKET" and order["timeInForce"] == "GTC"  # Binance prints GTC for MARKET orders
    assert re.fullmatch(r"[0-9]+\.[0-9]{8}", order["origQty"])  # spot: 8 decimals
    risk = ctx.sig("GET", "/fapi/v2/positionRisk", symbol="ETHUSDT")[0]  # no position: zeros, never "0E-8"
    assert "E" not in risk["entryPrice"] + risk["liquidationPrice"] and float(risk["entryPrice"]) == 0
    fut = ctx.pub("/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", fut["priceChange"])  # BTCUSDT pricePrecision 2
    assert ctx.sig("GET", "/fapi/v3/positionRisk", symbol="ETHUSDT") == []  # v3: only active positions
    ack = ctx.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    assert (ack["status"], float(ack["executedQty"])) == ("NEW", 0)  # default ACK: the order as accepted
    assert ctx.sig("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=ack["orderId"])["status"] == "FILLED"


# ---- unknown parameters --------------------------------------------------------------------------------------
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
