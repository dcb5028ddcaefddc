"""Integer layouts of the engine's arrays and its reason codes (module ints are Numba constants)."""

from __future__ import annotations

from oms.model.rejections import rejection

# ------------------------------------------------------------------ instruments: (n, I_FIELDS) int64
I_KIND = 0  # kernels.codes SPOT or PERP
I_MULT = 1  # money units per price unit x quantity unit
I_TICK = 2  # price units per tick
I_LOT = 3  # quantity units per lot step
I_LEVERAGE = 4  # perps: leverage (initial margin = notional / leverage)
I_MAINT_PPM = 5  # perps: maintenance margin rate
I_LIQ_FEE_PPM = 6  # perps: liquidation fee on the liquidated notional
I_FIELDS = 7

# ------------------------------------------------------------------ run settings: (C_FIELDS,) int64
C_LATENCY_NS = 0  # decision -> order at the venue
C_SLIP_FIXED_PPM = 1  # taker fills: this much worse than the next price
C_SLIP_IMPACT_PPM = 2  # plus this much per 100% of the event's volume taken (linear impact)
C_PARTICIPATION_PPM = 3  # at most this share of an event's volume fills per order (0: no limit)
C_QUEUE = 4  # QUEUE_CONSERVATIVE or QUEUE_OPTIMISTIC
C_TIMER_NS = 5  # on_timer period in market time (0: never)
C_RECORD = 6  # 1: record every account's equity after every event
C_FIELDS = 7

QUEUE_CONSERVATIVE = 0  # a resting limit fills only when the price trades through it
QUEUE_OPTIMISTIC = 1  # a resting limit fills when the price touches it

# fee tiers: (n, T_FIELDS) int64, ascending thresholds, the first 0
T_VOLUME = 0  # 30-day traded notional (money units) from which the tier applies
T_MAKER_PPM = 1
T_TAKER_PPM = 2
T_FIELDS = 3

# ------------------------------------------------------------------ the order table: (cap, O_FIELDS)
O_ACTIVE = 0
O_ACCOUNT = 1
O_INST = 2
O_SIDE = 3
O_TYPE = 4
O_PRICE = 5
O_QTY = 6  # remaining quantity units (money budget while QUOTE_QTY is unsized)
O_FLAGS = 7
O_TAG = 8
O_ARRIVE = 9  # ns: eligible against events whose open time is at or after this
O_RESTING = 10  # a limit seen not marketable on arrival rests (fills as maker)
O_FIELDS = 11

# ------------------------------------------------------------------ counters: (K_FIELDS,) int64
K_EVENTS = 0
K_INTENTS = 1
K_ORDERS = 2
K_FILLS = 3
K_REJECTS = 4
K_CANCELS = 5
K_LIQUIDATIONS = 6
K_FUNDING_EVENTS = 7
K_FIELDS = 8

# ------------------------------------------------------------------ errors: (E_FIELDS,) int64
ERR_CODE = 0
ERR_EVENT = 1
ERR_ROW = 2  # intent row within the call
ERR_WHAT = 3  # OVERFLOW: which quantity (OV_*)
ERR_ACCOUNT = 4  # OVERFLOW: whose
ERR_FIELDS = 5

# Invalid intents (the strategy's bug: the run stops and reports it).
BAD_ACCOUNT = 1
BAD_INSTRUMENT = 2
BAD_SIDE = 3
BAD_TYPE = 4
BAD_QTY = 5
BAD_PRICE = 6
BAD_FLAGS = 7
BAD_TAG = 8
TOO_MANY_INTENTS = 9
FILLS_FULL = 10  # not the strategy's fault: the fills buffer is full (the runner grows it and reruns)
OVERFLOW = 11  # money would pass MONEY_LIMIT: int64 arithmetic would wrap, so the run stops (ERR_WHAT says what)
INVALID_INTENT = {
    BAD_ACCOUNT: "account index out of range",
    BAD_INSTRUMENT: "instrument index out of range",
    BAD_SIDE: "side is not BUY (1) or SELL (-1)",
    BAD_TYPE: "type is not LIMIT, MARKET, CANCEL or CANCEL_ALL",
    BAD_QTY: "quantity is not a positive whole number of lots",
    BAD_PRICE: "limit price is not a positive whole number of ticks",
    BAD_FLAGS: "unknown flag bits, or QUOTE_QTY with CLOSE or on a limit",
    BAD_TAG: "tag is negative",
    TOO_MANY_INTENTS: "more intents than rows of `out`",
    FILLS_FULL: "fills buffer full",
}

# Money guard: every money amount the engine holds (cash, equity, a position's value, a fill's notional) stays
# below 2**62 units in magnitude (46,116,860,184 USDT at 1e-8), so a sum of two never wraps int64; an amount
# that would pass it stops the run with OVERFLOW instead of giving a silently wrong result. Checked in floats
# (53 bits: exact enough for a bound with a 2x margin to 2**63) on the paths that create money: fills, the
# mark to market of open positions, funding.
MONEY_LIMIT = 2**62
MONEY_LIMIT_F = float(MONEY_LIMIT)
OV_POSITION = 1  # a position's value at the event's price
OV_NOTIONAL = 2  # a fill's notional (price x quantity), or the sizing of a money budget at that price
OV_CASH = 3  # cash after a fill or a funding payment
OV_EQUITY = 4  # equity after the mark to market
OVERFLOW_WHAT = {
    OV_POSITION: "position value",
    OV_NOTIONAL: "fill notional",
    OV_CASH: "cash",
    OV_EQUITY: "equity",
}

# Venue rejections (reported as REJECTED fills, F_FEE = reason; the run goes on).
R_CASH = 1  # spot buy without the cash for notional + fee
R_POSITION = 2  # spot sell of more than is held
R_MARGIN = 3  # perp order whose initial margin exceeds the equity
R_POST_ONLY = 4  # post-only limit that would take liquidity
R_REDUCE_ONLY = 5  # reduce-only (or CLOSE) order with nothing to reduce
R_ORDERS_FULL = 6  # the order table is full
R_QTY_ZERO = 7  # a QUOTE_QTY budget below one lot at the fill price
R_LIQUIDATED = 8  # the account was liquidated: its open orders are cancelled
R_OVERFLOW = 99  # internal: apply_fill refused an amount past MONEY_LIMIT (the run stops with OVERFLOW)
# each reason's entry in the rejection table live trading shares (oms.model.rejections): the same refused order
# reads the same code and reason in a backtest's trades and in the daemon's replies
REJECTION = {
    R_CASH: rejection("venue:INSUFFICIENT_BALANCE"),
    R_POSITION: rejection("venue:INSUFFICIENT_BALANCE"),  # Binance Spot: the same -2010 as a buy without the cash
    R_MARGIN: rejection("venue:INSUFFICIENT_MARGIN"),
    R_POST_ONLY: rejection("venue:POST_ONLY_WOULD_TAKE"),
    R_REDUCE_ONLY: rejection("risk:REDUCE_ONLY_REJECTED"),  # the daemon's risk check refuses it before the venue
    R_ORDERS_FULL: rejection("backtest:ORDER_TABLE_FULL"),
    R_QTY_ZERO: rejection("backtest:BUDGET_BELOW_LOT"),
    R_LIQUIDATED: rejection("venue:CANCELED_BY_LIQUIDATION"),
}
REJECT_CODE = {r: x.code for r, x in REJECTION.items()}
REJECT_REASON = {r: x.reason for r, x in REJECTION.items()}
