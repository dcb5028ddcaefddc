"""The domain model: identifiers, enums, the order status machine, instruments and the messages.

Everything the platform says about orders, fills, positions, balances, transfers and market data is one of
the frozen ``msgspec`` structs here (decimals as strings, time as int64 ns UTC), encoded by the one codec in
``oms.model.codec`` on NATS and in files; ``docs/schema/`` holds their JSON Schema. Nothing here imports
venues, kernels or the daemon; the kernels map these enums to their integer codes (``kernels.codes``).
"""

from oms.model.account import (
    AccountSettings,
    Balance,
    BalanceEvent,
    Position,
    PositionEvent,
    Transfer,
    TransferEvent,
)
from oms.model.codec import MESSAGE_TYPES, DecodeError, Message, decode, decode_lines, encode, encode_lines, validate
from oms.model.enums import (
    InstrumentKind,
    LiquiditySide,
    MarginType,
    Market,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    TimeInForce,
    TradingState,
    TransferKind,
    TransferStatus,
)
from oms.model.ids import AccountId, ClientOrderId, ExchangeId, InstrumentId
from oms.model.instrument import Instrument, InstrumentSpec
from oms.model.market import BookSnapshot, DepthDiff, Kline, Level, MarkPrice, Quote, Trade
from oms.model.orders import AmendOrder, CancelAll, CancelOrder, Fill, Order, OrderEvent, PlaceOrder
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode
from oms.model.status import IllegalTransition, OrderEventKind, next_status

__all__ = [
    "MESSAGE_TYPES",
    "AccountId",
    "AccountSettings",
    "AmendOrder",
    "Balance",
    "BalanceEvent",
    "BookSnapshot",
    "CancelAll",
    "CancelOrder",
    "ClientOrderId",
    "DecodeError",
    "DepthDiff",
    "ExchangeId",
    "Fill",
    "IllegalTransition",
    "Instrument",
    "InstrumentId",
    "InstrumentKind",
    "InstrumentSpec",
    "Kline",
    "Level",
    "LiquiditySide",
    "MarginType",
    "MarkPrice",
    "Market",
    "Message",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderStatus",
    "OrderType",
    "PlaceOrder",
    "Position",
    "PositionEvent",
    "PositionMode",
    "PositionSide",
    "Quote",
    "SetLeverage",
    "SetMarginType",
    "SetPositionMode",
    "Side",
    "TimeInForce",
    "Trade",
    "TradingState",
    "Transfer",
    "TransferEvent",
    "TransferKind",
    "TransferStatus",
    "decode",
    "decode_lines",
    "encode",
    "encode_lines",
    "next_status",
    "validate",
]
