"""Binance REST bodies and WebSocket-API results as frozen ``msgspec.Struct``s with Binance's field names.

One struct serves a REST body and the matching WebSocket-API ``result`` (Binance returns the same object on
both paths). python-binance hands decoded dicts on, so these are filled with ``msgspec.convert``; a body that
does not fit raises ``msgspec.ValidationError`` naming the field, which the connector reports as a typed
venue error instead of indexing a dict that is not what it expected.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class SpotFill(msgspec.Struct, frozen=True):
    """One ``fills`` entry of a FULL Spot new-order response."""

    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int


class SpotOrder(msgspec.Struct, frozen=True):
    """A Spot order: new-order response (ACK/RESULT/FULL), ``GET /api/v3/order``, cancel, openOrders rows."""

    symbol: str
    orderId: int
    clientOrderId: str
    transactTime: int = 0  # new-order and cancel responses
    time: int = 0  # queries
    updateTime: int = 0
    price: str = "0"
    origQty: str = "0"
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    status: str = ""  # empty on an ACK response
    timeInForce: str = ""
    type: str = ""
    side: str = ""
    stopPrice: str = "0"
    origClientOrderId: str = ""  # cancel responses
    fills: list[SpotFill] = []


class FuturesOrder(msgspec.Struct, frozen=True):
    """A USD-M order: new-order, query, cancel and modify responses, openOrders rows."""

    symbol: str
    orderId: int
    clientOrderId: str
    status: str
    price: str
    origQty: str
    executedQty: str
    side: str
    type: str
    timeInForce: str = "GTC"
    avgPrice: str = "0"
    cumQuote: str = "0"
    stopPrice: str = "0"
    reduceOnly: bool = False
    closePosition: bool = False
    positionSide: str = "BOTH"
    origType: str = ""
    updateTime: int = 0
    time: int = 0


class AlgoOrder(msgspec.Struct, frozen=True):
    """A USD-M conditional order of the Algo Order API: ``POST``/``GET /fapi/v1/algoOrder``, ``openAlgoOrders``
    rows. ``algoStatus``: NEW (waiting for its trigger), CANCELED, EXPIRED, REJECTED, TRIGGERING, TRIGGERED (its
    order, ``actualOrderId``, is in the matching engine), FINISHED (that order is closed)."""

    algoId: int
    clientAlgoId: str
    orderType: str
    symbol: str
    side: str
    algoStatus: str
    quantity: str = "0"
    price: str = "0"
    triggerPrice: str = "0"
    timeInForce: str = "GTC"
    positionSide: str = "BOTH"
    reduceOnly: bool = False
    closePosition: bool = False
    activatePrice: str = ""
    callbackRate: str = ""
    createTime: int = 0
    updateTime: int = 0
    triggerTime: int = 0
    actualOrderId: str = ""


class BatchError(msgspec.Struct, frozen=True):
    """A failed row of ``POST /fapi/v1/batchOrders`` (the row is an error object, not an order)."""

    code: int
    msg: str


class SpotTrade(msgspec.Struct, frozen=True):
    """``GET /api/v3/myTrades`` row."""

    symbol: str
    id: int
    orderId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool


class FuturesTrade(msgspec.Struct, frozen=True):
    """``GET /fapi/v1/userTrades`` row."""

    symbol: str
    id: int
    orderId: int
    side: str
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    realizedPnl: str
    time: int
    maker: bool
    positionSide: str = "BOTH"


class SpotBalance(msgspec.Struct, frozen=True):
    """``balances`` row of ``GET /api/v3/account``."""

    asset: str
    free: str
    locked: str


class SpotAccount(msgspec.Struct, frozen=True):
    """``GET /api/v3/account`` (the fields this connector reads)."""

    balances: list[SpotBalance]
    updateTime: int = 0
    canTrade: bool = True


class FuturesBalance(msgspec.Struct, frozen=True):
    """``GET /fapi/v2/balance`` row."""

    asset: str
    balance: str
    availableBalance: str
    crossWalletBalance: str = "0"
    updateTime: int = 0


class FuturesPosition(msgspec.Struct, frozen=True):
    """``GET /fapi/v2/positionRisk`` row."""

    symbol: str
    positionAmt: str
    entryPrice: str
    markPrice: str
    unRealizedProfit: str
    leverage: str = "0"
    marginType: str = "cross"
    isolatedMargin: str = "0"
    positionSide: str = "BOTH"
    liquidationPrice: str = "0"
    updateTime: int = 0


class RateLimit(msgspec.Struct, frozen=True):
    """One ``rateLimits`` entry (exchangeInfo, and every WebSocket-API answer with its ``count``)."""

    rateLimitType: str  # REQUEST_WEIGHT, ORDERS, RAW_REQUESTS
    interval: str  # SECOND, MINUTE, DAY
    intervalNum: int
    limit: int
    count: int = -1  # absent in exchangeInfo


class WsApiError(msgspec.Struct, frozen=True):
    """The ``error`` object of a failed WebSocket-API answer."""

    code: int
    msg: str
    data: dict[str, Any] | None = None


class WsApiResponse(msgspec.Struct, frozen=True):
    """A WebSocket-API answer: ``{"id", "status", "result" | "error", "rateLimits"}``."""

    id: str | int | None
    status: int
    result: Any = None
    error: WsApiError | None = None
    rateLimits: list[RateLimit] = []


class SymbolFilter(msgspec.Struct, frozen=True):
    """One ``filters`` entry of exchangeInfo (only the fields of the filters this connector reads)."""

    filterType: str
    tickSize: str = "0"
    minPrice: str = "0"
    maxPrice: str = "0"
    stepSize: str = "0"
    minQty: str = "0"
    maxQty: str = "0"
    minNotional: str = "0"
    notional: str = "0"
    maxNumOrders: int = 0
    limit: int = 0


class SymbolInfo(msgspec.Struct, frozen=True):
    """One ``symbols`` entry of exchangeInfo (Spot and USD-M share these fields)."""

    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    filters: list[SymbolFilter]
    orderTypes: list[str] = []
    contractType: str = ""  # USD-M: PERPETUAL, CURRENT_QUARTER...
    marginAsset: str = ""
    baseAssetPrecision: int = 8
    quotePrecision: int = 8
    pricePrecision: int = 0
    quantityPrecision: int = 0
    timeInForce: list[str] = []


class ExchangeInfo(msgspec.Struct, frozen=True):
    """``GET /api/v3/exchangeInfo`` / ``GET /fapi/v1/exchangeInfo``."""

    symbols: list[SymbolInfo]
    rateLimits: list[RateLimit] = []
    serverTime: int = 0


class ListenKey(msgspec.Struct, frozen=True):
    """``POST /fapi/v1/listenKey`` and ``userDataStream.start``."""

    listenKey: str


class SubscriptionResult(msgspec.Struct, frozen=True):
    """``userDataStream.subscribe.signature`` result."""

    subscriptionId: int


def convert(obj: object, kind: type[T]) -> T:
    """``msgspec.convert`` of a decoded body into a wire struct (raises ``msgspec.ValidationError``)."""
    return msgspec.convert(obj, kind)
