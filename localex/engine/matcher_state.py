"""The matcher's state: books, orders, fills, stop orders, marks and market-data series of every symbol.

``MatcherState`` is the base of the matcher's layers (``validation`` -> ``reservations`` -> ``settlement`` ->
``matching.Matcher``): each layer is one idea and adds its methods; the state is declared once, here, with the
order-type sets the layers share.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final

from .accounts import Account, Ledger
from .book import Book
from .event_types import OrderEvent
from .events import Emitter
from .fees import FeeSchedule
from .marketdata import MarketData
from .markets import SymbolSpec
from .types import (
    LIMIT,
    MARKET,
    STOP,
    STOP_LOSS,
    STOP_LOSS_LIMIT,
    STOP_MARKET,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    Fill,
    Order,
)

# what a triggered stop becomes
TRIGGERED_TYPE: Final = {
    STOP_LOSS: MARKET,
    TAKE_PROFIT: MARKET,
    STOP_LOSS_LIMIT: LIMIT,
    TAKE_PROFIT_LIMIT: LIMIT,
    STOP: LIMIT,
    STOP_MARKET: MARKET,
    TAKE_PROFIT_MARKET: MARKET,
    TRAILING_STOP_MARKET: MARKET,
}
STOP_LIKE: Final = frozenset((STOP_LOSS, STOP_LOSS_LIMIT, STOP, STOP_MARKET))  # buy above / sell below
TP_LIKE: Final = frozenset((TAKE_PROFIT, TAKE_PROFIT_LIMIT, TAKE_PROFIT_MARKET))  # buy below / sell above
STP_MODES: Final = frozenset((STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH))
MAX_TRIGGER_ROUNDS: Final = 1000
MARKET_LIKE: Final = frozenset((MARKET, STOP_LOSS, TAKE_PROFIT, STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET))
MIN_CALLBACK: Final = Decimal("0.1")
MAX_CALLBACK: Final = Decimal("10")


class MatcherState:
    """What the matcher holds; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        specs: dict[tuple[str, str], SymbolSpec],
        clock: Callable[[], int],
        emitter: Emitter,
        fees: FeeSchedule,
        fee_account: Account,
    ) -> None:
        self.ledger = ledger
        self.specs = specs
        self.clock = clock
        self.em = emitter
        self.fees = fees
        self.fee_account = fee_account
        self.books: dict[tuple[str, str], Book] = {k: Book() for k in specs}
        self.md: dict[tuple[str, str], MarketData] = {
            k: MarketData(k[0], k[1], s.notional_unit, s.quote_scale) for k, s in specs.items()
        }
        self.orders: dict[tuple[str, str], dict[int, Order]] = {k: {} for k in specs}
        self.next_order_id: dict[tuple[str, str], int] = dict.fromkeys(specs, 1)
        self.stops: dict[tuple[str, str], list[Order]] = {k: [] for k in specs}
        self.fills: dict[tuple[str, str, str], list[Fill]] = {}
        self.mark: dict[str, int] = {}
        self.dirty: set[tuple[str, str]] = set()
        self._cid_counter = 0
        # a quote-quantity taker's latest TRADE event, held until the next trade or the end of its matching:
        # only then is it known whether that trade filled it (Binance's last TRADE says FILLED; no extra event)
        self._held: OrderEvent | None = None
