"""Binance's spellings <-> the model's enums, as tables (venue metadata is data).

Spot and USD-M name order types differently: Spot ``STOP_LOSS`` is a market stop and ``TAKE_PROFIT`` a market
take-profit, while USD-M ``STOP`` and ``TAKE_PROFIT`` carry a limit price. Statuses Binance adds later map to
the nearest model status (``EXPIRED_IN_MATCH``: self-trade prevention expired it).
"""

from __future__ import annotations

from oms.model import Market, OrderEventKind, OrderStatus, OrderType, PositionSide, Side, TimeInForce

SIDE = {"BUY": Side.BUY, "SELL": Side.SELL}
SIDE_TO_BINANCE = {Side.BUY: "BUY", Side.SELL: "SELL"}

SPOT_TYPE = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP_LOSS": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT_MARKET,
    "TAKE_PROFIT_LIMIT": OrderType.TAKE_PROFIT_LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT_MAKER,
}
FUTURES_TYPE = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP": OrderType.STOP_LIMIT,
    "STOP_MARKET": OrderType.STOP_MARKET,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT_LIMIT,
    "TAKE_PROFIT_MARKET": OrderType.TAKE_PROFIT_MARKET,
    "TRAILING_STOP_MARKET": OrderType.TRAILING_STOP_MARKET,
    "LIQUIDATION": OrderType.MARKET,
}
TYPE_BY_MARKET = {Market.SPOT: SPOT_TYPE, Market.USDM: FUTURES_TYPE}
TYPE_TO_BINANCE = {
    market: {v: k for k, v in table.items() if k != "LIQUIDATION"} for market, table in TYPE_BY_MARKET.items()
}

TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "GTX": TimeInForce.GTX,
    "GTD": TimeInForce.GTD,
}
TIF_TO_BINANCE = {v: k for k, v in TIF.items()}

STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.PENDING_NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "NEW_INSURANCE": OrderStatus.NEW,
    "NEW_ADL": OrderStatus.NEW,
}

# executionReport / ORDER_TRADE_UPDATE execution type -> event kind (TRADE depends on the status)
EXEC_KIND = {
    "NEW": OrderEventKind.ACCEPTED,
    "CANCELED": OrderEventKind.CANCELED,
    "REPLACED": OrderEventKind.AMENDED,
    "AMENDMENT": OrderEventKind.AMENDED,
    "REJECTED": OrderEventKind.REJECTED,
    "EXPIRED": OrderEventKind.EXPIRED,
    "TRADE_PREVENTION": OrderEventKind.EXPIRED,
}
TRADE_EXEC = frozenset({"TRADE", "CALCULATED"})  # CALCULATED: a liquidation fill

# a queried status -> the event that leads to it (used when REST answers stand in for stream events)
STATUS_KIND = {
    OrderStatus.NEW: OrderEventKind.ACCEPTED,
    OrderStatus.PENDING_NEW: OrderEventKind.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderEventKind.PARTIAL_FILL,
    OrderStatus.FILLED: OrderEventKind.FILL,
    OrderStatus.CANCELED: OrderEventKind.CANCELED,
    OrderStatus.PENDING_CANCEL: OrderEventKind.CANCEL_SENT,
    OrderStatus.REJECTED: OrderEventKind.REJECTED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
}

POSITION_SIDE = {"BOTH": PositionSide.BOTH, "LONG": PositionSide.LONG, "SHORT": PositionSide.SHORT}
POSITION_SIDE_TO_BINANCE = {v: k for k, v in POSITION_SIDE.items()}

# USD-M settings changes refused because something is open (the account keeps its current setting): code -> what
SETTINGS_BLOCKED_BY = {
    -4047: "open orders on the symbol",  # margin type
    -4048: "an open position on the symbol",
    -4067: "open orders",  # position mode
    -4068: "an open position",
    -4161: "an open isolated position (leverage cannot be reduced)",
    -2027: "the open position's size (above the maximum allowed at that leverage)",
}
