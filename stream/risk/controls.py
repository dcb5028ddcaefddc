"""The risk controls on the daemon's timers: the breaker's tick and the guards' sampling and recomputation.

``RiskControls.from_config(cfg.risk, state, accounts, names, on_trip)`` builds what ``risk.yaml`` enables;
``attach(gateway)`` installs the guards' per-order hook and the USDT limits of cross-quoted instruments;
``start()`` runs the timers as tasks on the running loop (the quote rates into the kernel state every
``rates_interval_s`` and before each breaker tick, so exposure and losses are counted in USDT, and right after
them the cash of accounts whose cash is a coin revalued at its rate: ``coins``, ``stream.coin_cash``; the guards'
statistics in a worker thread, their kernels release the GIL); ``on_trip(trip)`` is awaited
for every switch the breaker makes (the daemon publishes a risk event and updates its view); ``resume(a)``
is what a manual resume calls; ``stop()`` cancels the timers. A failing tick is logged and counted, and the
timer carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from kernels.state import AccountIndex, KernelState
from stream.coin_cash import CoinCash
from stream.risk.breaker import CircuitBreaker, Trip
from stream.risk.guards import GuardSettings, PortfolioGuards
from stream.risk.quotes import QuoteLimits

log = logging.getLogger("stream.risk")

OnTrip = Callable[[Trip], Awaitable[None]]


class RiskControls:
    def __init__(
        self,
        breaker: CircuitBreaker | None,
        guards: PortfolioGuards | None,
        on_trip: OnTrip,
        breaker_interval_s: float = 1.0,
        quote_rates: dict[str, str] | None = None,
        rates_interval_s: float = 1.0,
    ):
        self.breaker = breaker
        self.guards = guards
        self.on_trip = on_trip
        self.breaker_interval_s = breaker_interval_s
        self.quote_rates = dict(quote_rates or {})
        self.rates_interval_s = rates_interval_s
        self.quotes: QuoteLimits | None = None  # set by attach
        self.coins: CoinCash | None = None  # set by attach: coin cash valued at the same rates
        self.errors = 0
        self.ticks = 0
        self._tasks: list[asyncio.Task] = []

    @classmethod
    def from_config(
        cls,
        risk,  # oms.config.models.RiskConfig
        state: KernelState,
        accounts: AccountIndex,
        names: Callable[[int], str],
        on_trip: OnTrip,
        clock: Callable[[], int] = time.time_ns,
    ) -> RiskControls:
        cb, pg = risk.circuit_breaker, risk.portfolio_guards
        breaker = CircuitBreaker.from_config(cb, state, accounts, clock) if cb is not None and cb.enabled else None
        guards = None
        if pg is not None and pg.enabled:
            guards = PortfolioGuards(state, GuardSettings.from_config(pg), names, clock)
        interval = float(cb.interval_s) if cb is not None else 1.0
        return cls(breaker, guards, on_trip, interval, dict(getattr(risk, "quote_rates", None) or {}))

    def attach(self, gateway) -> None:
        """Install the guards' hook in the order gateway (``stream.gateway.OrderGateway.guard``) and, when the
        breaker measures the platform's trades, its fill hook (``OrderGateway.on_fill``); and, always, the USDT
        limits of instruments quoted in another asset (``OrderGateway.quote_check``, ``stream.risk.quotes``)."""
        gateway.guard = self.guards.check if self.guards is not None else None
        self.quotes = QuoteLimits(gateway.state, gateway.instruments, self.quote_rates)
        self.coins = CoinCash(gateway.state, gateway.instruments, self.quotes.pair_of, self.quotes.push_rates)
        self.push_rates()
        gateway.quote_check = self.quotes.check
        trades = self.breaker.trades if self.breaker is not None else None
        gateway.on_fill = trades.on_fill if trades is not None else None

    def start(self) -> list[asyncio.Task]:
        loop = asyncio.get_running_loop()
        if self.quotes is not None:
            self._tasks.append(loop.create_task(self._rates_loop(), name="risk-quote-rates"))
        if self.breaker is not None:
            self._tasks.append(loop.create_task(self._breaker_loop(), name="risk-breaker"))
        if self.guards is not None:
            self._tasks.append(loop.create_task(self._guards_loop(), name="risk-guards"))
        return list(self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def resume(self, account: int | None) -> None:
        """A manual resume of one account (its kernel number) or, with None, of every account."""
        if self.breaker is None:
            return
        if account is None:
            self.breaker.resume_all()
        else:
            self.breaker.resume(account)

    async def tick_breaker(self) -> list[Trip]:
        """One breaker tick (the timer's body): its trips handed to ``on_trip``."""
        assert self.breaker is not None
        self.push_rates()  # losses of cross-quoted positions (and coin cash) at the quote's USDT mark now
        trips = self.breaker.tick()
        self.ticks += 1
        for trip in trips:
            await self.on_trip(trip)
        return trips

    def push_rates(self) -> int:
        """The quotes' USDT rates into the kernel state, then every coin cash revalued at them; how many of
        both changed."""
        changed = 0
        if self.quotes is not None:
            changed += self.quotes.push_rates()
        if self.coins is not None:
            changed += self.coins.revalue()
        return changed

    async def tick_guards(self) -> int:
        assert self.guards is not None
        self.guards.sample()  # on the loop: a copy of the marks at one instant
        return await asyncio.to_thread(self.guards.recompute)

    async def _breaker_loop(self) -> None:
        while True:
            await asyncio.sleep(self.breaker_interval_s)
            try:
                await self.tick_breaker()
            except Exception:
                self.errors += 1
                log.exception("circuit breaker tick failed (%d so far); it carries on", self.errors)

    async def _rates_loop(self) -> None:
        assert self.quotes is not None
        while True:
            await asyncio.sleep(self.rates_interval_s)
            try:
                self.push_rates()
            except Exception:
                self.errors += 1
                log.exception("quote rates update failed (%d so far); the last rates stay", self.errors)

    async def _guards_loop(self) -> None:
        assert self.guards is not None
        while True:
            await asyncio.sleep(self.guards.settings.interval_s)
            try:
                await self.tick_guards()
            except Exception:
                self.errors += 1
                log.exception("portfolio guards update failed (%d so far); the last tables stay", self.errors)
