"""Integer codes shared by the kernels and their callers: sides, order types, states, reasons.

Kernels see only these ints (module-level ints are compile-time constants in Numba). Python code
turns a reason code into a sentence with ``reason_message`` and into a stable name with
``reason_name``; the messages are the shared rejection table's (``oms.model.rejections``, which live
trading and the backtest both report from: a refusal reads ``risk:{name}``). The ``*_CODES`` dicts at
the end map each ``oms.model`` enum member to its code (and the ``*_MEMBERS`` dicts back): the one
place where the model's names become kernel ints.
"""

from __future__ import annotations

from oms.model.enums import (
    InstrumentKind,
    MarginType,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    TimeInForce,
    TradingState,
)
from oms.model.rejections import RISK_REASONS

# Sides are signed so that a signed quantity is ``side * qty``.
BUY = 1
SELL = -1

# Position side of an order or fill: BOTH in netting (one-way) mode, LONG/SHORT in hedge mode.
POS_BOTH = 0
POS_LONG = 1
POS_SHORT = 2

# Account position mode.
NETTING = 0
HEDGE = 1

# Order types (Binance's names). The *_LIMIT types and LIMIT_MAKER carry a limit price, checked
# against the price band; the *_MARKET types carry a trigger price only.
LIMIT = 1
MARKET = 2
STOP_LIMIT = 3
STOP_MARKET = 4
TAKE_PROFIT_LIMIT = 5
TAKE_PROFIT_MARKET = 6
LIMIT_MAKER = 7
MAX_ORDER_TYPE = 7  # the highest type the risk kernel gates; trailing stops are not gated yet (BAD_ORDER_TYPE)
TRAILING_STOP_MARKET = 8
ORDER_TYPES = {
    "LIMIT": LIMIT,
    "MARKET": MARKET,
    "STOP_LIMIT": STOP_LIMIT,
    "STOP_MARKET": STOP_MARKET,
    "TAKE_PROFIT_LIMIT": TAKE_PROFIT_LIMIT,
    "TAKE_PROFIT_MARKET": TAKE_PROFIT_MARKET,
    "LIMIT_MAKER": LIMIT_MAKER,
    "TRAILING_STOP_MARKET": TRAILING_STOP_MARKET,
}

# Time in force.
GTC = 1
IOC = 2
FOK = 3
GTX = 4  # post-only
GTD = 5

# Margin type of a futures position.
CROSS = 0
ISOLATED = 1

# Order status (oms.model.status holds the transitions).
ST_PENDING_NEW = 0
ST_NEW = 1
ST_PARTIALLY_FILLED = 2
ST_FILLED = 3
ST_PENDING_CANCEL = 4
ST_CANCELED = 5
ST_REJECTED = 6
ST_EXPIRED = 7
ST_UNKNOWN = 8

# Trading state, per account and global (the kill switch).
ACTIVE = 0
REDUCE_ONLY = 1
HALTED = 2
TRADING_STATES = {"active": ACTIVE, "reduce_only": REDUCE_ONLY, "halted": HALTED}

# Instrument kinds: spot pays the notional in cash; a linear perpetual settles PnL only.
SPOT = 0
PERP = 1

# Instrument status.
INSTRUMENT_HALTED = 0
INSTRUMENT_TRADING = 1

# Pre-trade risk reasons. 0 accepts; everything else names the first check that failed.
# Fill kernels return the same codes (0 = applied).
OK = 0
UNKNOWN_ACCOUNT = 1
UNKNOWN_INSTRUMENT = 2
BAD_SIDE = 3
BAD_ORDER_TYPE = 4
BAD_POSITION_SIDE = 5
GLOBAL_HALTED = 6
ACCOUNT_HALTED = 7
INSTRUMENT_NOT_TRADING = 8
QTY_NOT_POSITIVE = 9
QTY_STEP = 10
QTY_BELOW_MIN = 11
QTY_ABOVE_MAX = 12
PRICE_NOT_POSITIVE = 13
PRICE_TICK = 14
PRICE_OUT_OF_RANGE = 15
NO_MARK_PRICE = 16
PRICE_BAND = 17
NOTIONAL_BELOW_MIN = 18
NOTIONAL_ABOVE_MAX = 19
REDUCE_ONLY_REJECTED = 20
GLOBAL_REDUCE_ONLY = 21
ACCOUNT_REDUCE_ONLY = 22
MAX_ORDER_NOTIONAL = 23
MAX_POSITION = 24
MAX_ACCOUNT_EXPOSURE = 25
MAX_GLOBAL_EXPOSURE = 26
MAX_LEVERAGE = 27
DAILY_LOSS = 28
GLOBAL_DAILY_LOSS = 29
MAX_DRAWDOWN = 30
MAX_OPEN_ORDERS = 31
RATE_LIMIT = 32
# fill status (positions.apply_fill); the index and side codes above apply to fills too
HEDGE_OVERCLOSE = 33
# risk limits in USDT and an instrument quoted in another asset (kernels.quote_rates)
NO_QUOTE_RATE = 34
UNPRICED_EXPOSURE = 35
GLOBAL_UNPRICED_EXPOSURE = 36

REASONS: dict[int, tuple[str, str]] = {  # code: (name, readable message from oms.model.rejections)
    OK: ("OK", RISK_REASONS["OK"]),
    UNKNOWN_ACCOUNT: ("UNKNOWN_ACCOUNT", RISK_REASONS["UNKNOWN_ACCOUNT"]),
    UNKNOWN_INSTRUMENT: ("UNKNOWN_INSTRUMENT", RISK_REASONS["UNKNOWN_INSTRUMENT"]),
    BAD_SIDE: ("BAD_SIDE", RISK_REASONS["BAD_SIDE"]),
    BAD_ORDER_TYPE: ("BAD_ORDER_TYPE", RISK_REASONS["BAD_ORDER_TYPE"]),
    BAD_POSITION_SIDE: ("BAD_POSITION_SIDE", RISK_REASONS["BAD_POSITION_SIDE"]),
    GLOBAL_HALTED: ("GLOBAL_HALTED", RISK_REASONS["GLOBAL_HALTED"]),
    ACCOUNT_HALTED: ("ACCOUNT_HALTED", RISK_REASONS["ACCOUNT_HALTED"]),
    INSTRUMENT_NOT_TRADING: ("INSTRUMENT_NOT_TRADING", RISK_REASONS["INSTRUMENT_NOT_TRADING"]),
    QTY_NOT_POSITIVE: ("QTY_NOT_POSITIVE", RISK_REASONS["QTY_NOT_POSITIVE"]),
    QTY_STEP: ("QTY_STEP", RISK_REASONS["QTY_STEP"]),
    QTY_BELOW_MIN: ("QTY_BELOW_MIN", RISK_REASONS["QTY_BELOW_MIN"]),
    QTY_ABOVE_MAX: ("QTY_ABOVE_MAX", RISK_REASONS["QTY_ABOVE_MAX"]),
    PRICE_NOT_POSITIVE: ("PRICE_NOT_POSITIVE", RISK_REASONS["PRICE_NOT_POSITIVE"]),
    PRICE_TICK: ("PRICE_TICK", RISK_REASONS["PRICE_TICK"]),
    PRICE_OUT_OF_RANGE: ("PRICE_OUT_OF_RANGE", RISK_REASONS["PRICE_OUT_OF_RANGE"]),
    NO_MARK_PRICE: ("NO_MARK_PRICE", RISK_REASONS["NO_MARK_PRICE"]),
    PRICE_BAND: ("PRICE_BAND", RISK_REASONS["PRICE_BAND"]),
    NOTIONAL_BELOW_MIN: ("NOTIONAL_BELOW_MIN", RISK_REASONS["NOTIONAL_BELOW_MIN"]),
    NOTIONAL_ABOVE_MAX: ("NOTIONAL_ABOVE_MAX", RISK_REASONS["NOTIONAL_ABOVE_MAX"]),
    REDUCE_ONLY_REJECTED: ("REDUCE_ONLY_REJECTED", RISK_REASONS["REDUCE_ONLY_REJECTED"]),
    GLOBAL_REDUCE_ONLY: ("GLOBAL_REDUCE_ONLY", RISK_REASONS["GLOBAL_REDUCE_ONLY"]),
    ACCOUNT_REDUCE_ONLY: ("ACCOUNT_REDUCE_ONLY", RISK_REASONS["ACCOUNT_REDUCE_ONLY"]),
    MAX_ORDER_NOTIONAL: ("MAX_ORDER_NOTIONAL", RISK_REASONS["MAX_ORDER_NOTIONAL"]),
    MAX_POSITION: ("MAX_POSITION", RISK_REASONS["MAX_POSITION"]),
    MAX_ACCOUNT_EXPOSURE: ("MAX_ACCOUNT_EXPOSURE", RISK_REASONS["MAX_ACCOUNT_EXPOSURE"]),
    MAX_GLOBAL_EXPOSURE: ("MAX_GLOBAL_EXPOSURE", RISK_REASONS["MAX_GLOBAL_EXPOSURE"]),
    MAX_LEVERAGE: ("MAX_LEVERAGE", RISK_REASONS["MAX_LEVERAGE"]),
    DAILY_LOSS: ("DAILY_LOSS", RISK_REASONS["DAILY_LOSS"]),
    GLOBAL_DAILY_LOSS: ("GLOBAL_DAILY_LOSS", RISK_REASONS["GLOBAL_DAILY_LOSS"]),
    MAX_DRAWDOWN: ("MAX_DRAWDOWN", RISK_REASONS["MAX_DRAWDOWN"]),
    MAX_OPEN_ORDERS: ("MAX_OPEN_ORDERS", RISK_REASONS["MAX_OPEN_ORDERS"]),
    RATE_LIMIT: ("RATE_LIMIT", RISK_REASONS["RATE_LIMIT"]),
    HEDGE_OVERCLOSE: ("HEDGE_OVERCLOSE", RISK_REASONS["HEDGE_OVERCLOSE"]),
    NO_QUOTE_RATE: ("NO_QUOTE_RATE", RISK_REASONS["NO_QUOTE_RATE"]),
    UNPRICED_EXPOSURE: ("UNPRICED_EXPOSURE", RISK_REASONS["UNPRICED_EXPOSURE"]),
    GLOBAL_UNPRICED_EXPOSURE: ("GLOBAL_UNPRICED_EXPOSURE", RISK_REASONS["GLOBAL_UNPRICED_EXPOSURE"]),
}
REASON_MESSAGES = {code: message for code, (_, message) in REASONS.items()}
REASON_NAMES = {code: name for code, (name, _) in REASONS.items()}


def reason_message(code: int) -> str:
    """The readable message for a risk reason code."""
    try:
        return REASON_MESSAGES[int(code)]
    except KeyError:
        return f"unknown risk reason code {code}"


def reason_name(code: int) -> str:
    """The constant's name for a risk reason code, e.g. 'MAX_LEVERAGE'."""
    return REASON_NAMES.get(int(code), f"UNKNOWN_{code}")


# --- the model's enums <-> these codes -----------------------------------------------------------------
SIDE_CODES = {Side.BUY: BUY, Side.SELL: SELL}
POSITION_SIDE_CODES = {PositionSide.BOTH: POS_BOTH, PositionSide.LONG: POS_LONG, PositionSide.SHORT: POS_SHORT}
POSITION_MODE_CODES = {PositionMode.ONE_WAY: NETTING, PositionMode.HEDGE: HEDGE}
ORDER_TYPE_CODES = {OrderType(name.lower()): code for name, code in ORDER_TYPES.items()}
TIME_IN_FORCE_CODES = {TimeInForce.GTC: GTC, TimeInForce.IOC: IOC, TimeInForce.FOK: FOK, TimeInForce.GTX: GTX,
                       TimeInForce.GTD: GTD}  # fmt: skip
MARGIN_TYPE_CODES = {MarginType.CROSS: CROSS, MarginType.ISOLATED: ISOLATED}
TRADING_STATE_CODES = {TradingState(name): code for name, code in TRADING_STATES.items()}
INSTRUMENT_KIND_CODES = {InstrumentKind.SPOT: SPOT, InstrumentKind.PERP: PERP}
ORDER_STATUS_CODES = {
    OrderStatus.PENDING_NEW: ST_PENDING_NEW,
    OrderStatus.NEW: ST_NEW,
    OrderStatus.PARTIALLY_FILLED: ST_PARTIALLY_FILLED,
    OrderStatus.FILLED: ST_FILLED,
    OrderStatus.PENDING_CANCEL: ST_PENDING_CANCEL,
    OrderStatus.CANCELED: ST_CANCELED,
    OrderStatus.REJECTED: ST_REJECTED,
    OrderStatus.EXPIRED: ST_EXPIRED,
    OrderStatus.UNKNOWN: ST_UNKNOWN,
}
ENUM_CODES = {
    Side: SIDE_CODES,
    PositionSide: POSITION_SIDE_CODES,
    PositionMode: POSITION_MODE_CODES,
    OrderType: ORDER_TYPE_CODES,
    TimeInForce: TIME_IN_FORCE_CODES,
    MarginType: MARGIN_TYPE_CODES,
    TradingState: TRADING_STATE_CODES,
    InstrumentKind: INSTRUMENT_KIND_CODES,
    OrderStatus: ORDER_STATUS_CODES,
}
# code -> member, per enum (e.g. ENUM_MEMBERS[Side][-1] is Side.SELL)
ENUM_MEMBERS = {enum: {code: member for member, code in codes.items()} for enum, codes in ENUM_CODES.items()}


def code_of(member) -> int:
    """The kernel code of a model enum member (KeyError naming it if it has none)."""
    try:
        return ENUM_CODES[type(member)][member]
    except KeyError:
        raise KeyError(f"no kernel code for {type(member).__name__}.{getattr(member, 'name', member)}") from None


def member_of(enum, code: int):
    """The model enum member of a kernel code (KeyError naming the enum and code if none)."""
    try:
        return ENUM_MEMBERS[enum][int(code)]
    except KeyError:
        raise KeyError(f"no {enum.__name__} member for kernel code {code}") from None
