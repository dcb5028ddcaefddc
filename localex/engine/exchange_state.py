"""The exchange's state and what every layer of it builds on: markets, accounts ledger, matcher, listeners.

``Exchange`` (``exchange.py``) is a stack of layers, one idea each: ``ExchangeState`` (here) -> ``Funding``
(``funding.py``) -> ``OperationFrame`` (``operation.py``) -> ``Wallets`` (``wallets.py``) -> ``FuturesSettings``
(``futures_settings.py``) -> ``Exchange`` (orders, market data, replay, conservation checks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from .accounts import Ledger
from .events import MD_KINDS, Emitter, Listener
from .marketdata import INTERVALS
from .markets import SymbolSpec, default_specs
from .matching import FeeSchedule, Matcher
from .types import (
    INCOME_COMMISSION,
    INCOME_FUNDING_FEE,
    INCOME_REALIZED_PNL,
    INCOME_TRANSFER,
    Income,
    Transfer,
)

FUNDING_INTERVAL_MS: Final = 8 * 3_600_000  # funding at 00:00, 08:00 and 16:00 UTC
FUNDING_INTERVAL_NS: Final = FUNDING_INTERVAL_MS * 1_000_000
FUNDING_RATE: Final = "0.00010000"
FUNDING_RATE_E8: Final = 10_000  # FUNDING_RATE in 1e-8 units (0.0001 * 1e8)
RATE_SCALE: Final = 100_000_000
# tran ids of REALIZED_PNL / COMMISSION income rows: (symbol ordinal + 1) * TRADE_TRAN_BASE + trade id, * 2 + maker
TRADE_TRAN_BASE: Final = 10**12
INCOME_ORDER: Final = {INCOME_TRANSFER: 0, INCOME_REALIZED_PNL: 1, INCOME_COMMISSION: 2, INCOME_FUNDING_FEE: 3}


@dataclass(slots=True)
class DepthSnapshot:
    """A REST depth snapshot: ``last_update_id`` matches the diff stream's ids."""

    last_update_id: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    time_ns: int


class ExchangeState:
    """The state of the exchange; see the module docstring."""

    LIQUIDITY_ACCOUNT = "__liquidity__"
    FEE_ACCOUNT = "__fees__"

    def __init__(
        self,
        clock: Callable[[], int] | None = None,
        *,
        specs: Iterable[SymbolSpec] | None = None,
        fees: FeeSchedule | None = None,
        seed: int = 0,
        random_keys: bool = False,
    ) -> None:
        self.clock: Callable[[], int] = clock or time.time_ns
        self.seed = seed
        spec_list = list(specs) if specs is not None else default_specs()
        self._specs: dict[tuple[str, str], SymbolSpec] = {s.key: s for s in spec_list}
        self.ledger = Ledger(seed, random_keys)
        self.em = Emitter()
        now = self.clock()
        self.fee_account = self.ledger.create(
            now, email="fees@localex.invalid", account_id=self.FEE_ACCOUNT, internal=True
        )
        self.liquidity_account = self.ledger.create(
            now, email="liquidity@localex.invalid", account_id=self.LIQUIDITY_ACCOUNT, internal=True, unlimited=True
        )
        self.matcher = Matcher(self.ledger, self._specs, self.clock, self.em, fees or FeeSchedule(), self.fee_account)
        self._transfers: list[Transfer] = []
        self._next_tran_id = 1
        self._depth_prev: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._depth = 0
        self.replay: object | None = None
        self.deposits: dict[tuple[str, str], int] = {}  # (wallet, asset) -> total funded (conservation)
        # funding: the next funding time not yet charged, and the charges made (user accounts only)
        self.next_funding_ns: int = now - now % FUNDING_INTERVAL_NS + FUNDING_INTERVAL_NS
        self._funding_rows: list[Income] = []
        self._next_funding_tran = 1

    # ================================================================================ markets
    def spec(self, market: str, symbol: str) -> SymbolSpec:
        """The symbol's spec; ExchangeError(-1121, "Invalid symbol.") if not listed."""
        return self.matcher.spec(market, symbol)

    def specs(self, market: str | None = None) -> list[SymbolSpec]:
        """Listed symbols of ``market`` ("spot" / "usdm"), or all."""
        return [s for s in self._specs.values() if market is None or s.market == market]

    def now_ns(self) -> int:
        """The injected clock's time (ns)."""
        return self.clock()

    # ================================================================================ listeners
    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(event)`` for every event from now on."""
        self.em.add(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``."""
        self.em.remove(fn)

    def set_interest(self, kinds: Iterable[str] | None = None, kline_intervals: Iterable[str] | None = None) -> None:
        """Tell the engine which market-data events anyone wants, so it skips building the others.

        ``kinds``: subset of ``MD_KINDS`` ("trade", "aggTrade", "depth", "bookTicker", "kline"), None = all.
        ``kline_intervals``: intervals whose KlineEvents are wanted, None = all. Order, account, balance,
        transfer and mark-price events always flow. Only events change: the state is the same either way.
        """
        k = None if kinds is None else frozenset(kinds)
        iv = None if kline_intervals is None else frozenset(kline_intervals)
        if k is not None and not k <= MD_KINDS:
            raise ValueError(f"unknown event kinds: {sorted(k - MD_KINDS)}")
        if iv is not None and not iv <= INTERVALS.keys():
            raise ValueError(f"unknown kline intervals: {sorted(i for i in iv if i not in INTERVALS)}")
        self.em.set_interest(k, iv)
