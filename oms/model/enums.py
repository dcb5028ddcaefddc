"""The model's enumerations: venue-neutral names whose values are the strings on the wire.

Every enum is a ``StrEnum`` whose value is what the NATS events, the files and the JSON Schema carry
(lower-case words). Binance's own spellings (``BUY``, ``GTC``, ``PARTIALLY_FILLED``, ...) are converted at
the venue boundary (``oms.venues``); the kernels see the integer codes of ``kernels/codes.py``, mapped in
``kernels.codes`` from these members.
"""

from __future__ import annotations

from enum import StrEnum


class Market(StrEnum):
    """Which of an exchange's markets: Spot or USD-margined futures (the key store's ``market``)."""

    SPOT = "spot"
    USDM = "usdm"


class InstrumentKind(StrEnum):
    """Spot pays the notional in cash; a linear perpetual (USD-M) settles PnL only."""

    SPOT = "spot"
    PERP = "perp"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell (a signed quantity is ``side.sign * qty``)."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order types, named after Binance's futures names (Spot's STOP_LOSS* map to STOP_*).

    The ``*_limit`` types and ``limit_maker`` carry a limit price; the ``stop_*`` and ``take_profit_*``
    types a trigger price; ``trailing_stop_market`` an activation price and a callback rate.
    """

    LIMIT = "limit"
    MARKET = "market"
    STOP_LIMIT = "stop_limit"
    STOP_MARKET = "stop_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    LIMIT_MAKER = "limit_maker"
    TRAILING_STOP_MARKET = "trailing_stop_market"

    @property
    def has_limit_price(self) -> bool:
        return self in _LIMIT_PRICED

    @property
    def has_trigger(self) -> bool:
        return self in _TRIGGERED


_LIMIT_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT, OrderType.LIMIT_MAKER})
_TRIGGERED = frozenset(
    {
        OrderType.STOP_LIMIT,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }
)


class TimeInForce(StrEnum):
    """GTC rests until cancelled; IOC fills what it can now; FOK all or nothing; GTX is post-only
    (futures' name; Spot expresses it as LIMIT_MAKER); GTD rests until a given time (futures)."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTX = "gtx"
    GTD = "gtd"


class PositionSide(StrEnum):
    """BOTH in one-way (netting) mode; LONG or SHORT in hedge mode."""

    BOTH = "both"
    LONG = "long"
    SHORT = "short"


class PositionMode(StrEnum):
    """One-way (one net position per symbol) or hedge (a long and a short side per symbol)."""

    ONE_WAY = "one_way"
    HEDGE = "hedge"


class MarginType(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class TradingState(StrEnum):
    """Per account and global (the kill switch): active, reduce-only, or halted."""

    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"


class OrderStatus(StrEnum):
    """An order's status as the platform knows it (see ``oms.model.status`` for the transitions).

    ``pending_new`` and ``pending_cancel`` are ours (sent, not yet answered); ``unknown`` is a request that
    was sent but whose answer never came: it is resolved by querying the client order id, never re-sent.
    """

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        """Possibly resting on the venue (everything but the terminal statuses)."""
        return self not in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class LiquiditySide(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class TransferStatus(StrEnum):
    """A transfer we asked for: pending (sent), done, failed (refused), unknown (sent, no answer)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


class TransferKind(StrEnum):
    """Between two accounts of one exchange (main <-> sub, sub <-> sub) or between markets of one account."""

    SUB_ACCOUNT = "sub_account"
    UNIVERSAL = "universal"
    MARKET = "market"
