"""The tiered circuit breaker: losses within rolling windows switch an account, or every account, to
reduce-only and then to halted.

Every ``interval_s`` (``circuit_breaker`` in ``configs/risk.yaml``) ``tick()`` reads each account's PnL and,
per tier, its highest PnL within the tier's window. Which PnL is ``circuit_breaker.pnl``: ``trades`` (the
default) is the platform's own trades, realised - fees + unrealised of the positions its fills opened
(``stream.risk.tradebook``: the inventory an account already held, and its mark-to-market, is not a loss of
the desk's); ``account`` is the whole account in the positions kernel, inventory marked to market included.
Transfers in or out are never losses. A loss (that high minus the PnL now) of at
least the tier's ``max_loss_usdt`` switches the account to the tier's action in the kernel state the risk
check reads (``lim[L_TRADING_STATE]``); the global tiers do the same with the sum over all accounts and
``glob[G_TRADING_STATE]``. The breaker only tightens (active -> reduce-only -> halted; never over a stricter
state set by hand); each switch is returned as a ``Trip`` for the daemon to publish and log. ``resume(scope)``
(the daemon calls it on ``cmd.resume``) forgets the scope's history, so the loss that tripped it does not
trip it again at once.

Cost per tick: one ``account_summary`` kernel call and, per account and window, an amortised O(1) update of a
monotonic queue (the window's high), so a 24-hour window at 1 s costs no more than a 1-minute one.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernels import codes as C
from kernels.positions import S_FEES, S_FIELDS, S_FUNDING, S_REALISED, S_UNREALISED, account_summary
from kernels.state import G_TRADING_STATE, L_TRADING_STATE, AccountIndex, KernelState
from oms.model.units import MONEY_UNIT, from_units, money_to_units
from stream.risk.tradebook import TradeBook

log = logging.getLogger("stream.risk.breaker")

ACTIONS = {"reduce_only": C.REDUCE_ONLY, "halt": C.HALTED}
STATE_NAMES = {v: k for k, v in C.TRADING_STATES.items()}
GLOBAL = -1  # the scope of the global tiers


@dataclass(frozen=True)
class Tier:
    window_ns: int
    max_loss: int  # money units (1e-8 USDT)
    state: int  # kernels.codes.REDUCE_ONLY | HALTED
    label: str  # the window as configured, e.g. "15m"


@dataclass(frozen=True)
class Trip:
    """One switch made by the breaker: ``account`` is ``exchange/name``, or ``*`` for every account."""

    account: str
    trading_state: str  # reduce_only | halted
    window: str
    loss: str  # USDT, exact
    limit: str
    event_ns: int

    @property
    def reason(self) -> str:
        who = "all accounts" if self.account == "*" else self.account
        return (
            f"circuit breaker: {who} lost {self.loss} USDT within {self.window} (limit {self.limit}): "
            f"{self.trading_state}"
        )


class _High:
    """The highest value within the last ``window_ns``: a monotonic queue of (time, value)."""

    __slots__ = ("window_ns", "q")

    def __init__(self, window_ns: int):
        self.window_ns = window_ns
        self.q: deque[tuple[int, int]] = deque()

    def push(self, t: int, v: int) -> int:
        q = self.q
        while q and q[-1][1] <= v:
            q.pop()
        q.append((t, v))
        start = t - self.window_ns
        while q[0][0] < start:
            q.popleft()
        return q[0][1]


def tiers_from_config(tiers) -> list[Tier]:
    """``oms.config.models.BreakerTier`` list -> ``Tier`` list in money units."""
    return [
        Tier(t.window_s * 1_000_000_000, money_to_units(str(t.max_loss_usdt)), ACTIONS[t.action], t.window)
        for t in tiers
    ]


class CircuitBreaker:
    """Per-account and global loss tiers over one ``KernelState`` (see the module docstring)."""

    def __init__(
        self,
        state: KernelState,
        accounts: AccountIndex,
        account_tiers: dict[int, list[Tier]],
        global_tiers: list[Tier],
        clock: Callable[[], int] = time.time_ns,
        trades: TradeBook | None = None,
    ):
        """``trades``: measure the PnL of the platform's trades (fed by ``OrderGateway.on_fill``); None: the
        whole account's PnL in the positions kernel."""
        self.state = state
        self.trades = trades
        self.accounts = accounts
        self.tiers: dict[int, list[Tier]] = {a: list(t) for a, t in account_tiers.items() if t}
        if global_tiers:
            self.tiers[GLOBAL] = list(global_tiers)
        self.clock = clock
        self.trips: list[Trip] = []  # every trip so far (metrics and status read it)
        self._highs: dict[int, dict[int, _High]] = {}
        self._summary = np.zeros((S_FIELDS, state.n_accounts), dtype=np.int64)
        for scope in self.tiers:
            self.resume(None if scope == GLOBAL else scope)

    @classmethod
    def from_config(cls, cfg, state: KernelState, accounts: AccountIndex, clock=time.time_ns) -> CircuitBreaker:
        """From ``RiskConfig.circuit_breaker`` (``oms.config.models.CircuitBreakerConfig``)."""
        per = {a: tiers_from_config(cfg.tiers_for(ex, name)) for (ex, name), a in accounts.number.items()}
        trades = TradeBook(state) if cfg.pnl == "trades" else None
        return cls(state, accounts, per, tiers_from_config(cfg.global_tiers or []), clock, trades)

    def pnl(self) -> tuple[np.ndarray, int]:
        """PnL of each account and of all together (money units): realised - fees + funding + unrealised, of
        the platform's trades (``trades``) or of the whole account."""
        if self.trades is not None:
            per = self.trades.pnl()
            return per, int(per[: len(self.accounts)].sum())
        s = self._summary
        account_summary(*self.state.blocks, s)
        per = s[S_REALISED] - s[S_FEES] + s[S_FUNDING] + s[S_UNREALISED]
        return per, int(per[: len(self.accounts)].sum())

    def tick(self) -> list[Trip]:
        """Sample the PnL, apply the tiers; returns the switches made now."""
        now = self.clock()
        per, total = self.pnl()
        out: list[Trip] = []
        for scope, tiers in self.tiers.items():
            value = total if scope == GLOBAL else int(per[scope])
            highs = self._highs[scope]
            peaks = {w: h.push(now, value) for w, h in highs.items()}
            worst = None
            for tier in tiers:
                loss = peaks[tier.window_ns] - value
                if loss >= tier.max_loss and (worst is None or tier.state > worst[0].state):
                    worst = (tier, loss)
            if worst is not None:
                trip = self._switch(scope, worst[0], worst[1], now)
                if trip is not None:
                    out.append(trip)
        self.trips.extend(out)
        return out

    def _switch(self, scope: int, tier: Tier, loss: int, now: int) -> Trip | None:
        if scope == GLOBAL:
            current = int(self.state.glob[G_TRADING_STATE])
        else:
            current = int(self.state.lim[L_TRADING_STATE, scope])
        if current >= tier.state:  # already as strict (by an earlier tier, or by hand)
            return None
        if scope == GLOBAL:
            self.state.glob[G_TRADING_STATE] = tier.state
            who = "*"
        else:
            self.state.lim[L_TRADING_STATE, scope] = tier.state
            ex, name = self.accounts.pairs[scope]
            who = f"{ex}/{name}"
        trip = Trip(
            who,
            STATE_NAMES[tier.state],
            tier.label,
            from_units(loss, MONEY_UNIT),
            from_units(tier.max_loss, MONEY_UNIT),
            now,
        )
        log.warning("%s", trip.reason)
        return trip

    def resume(self, account: int | None) -> None:
        """Forget the history of one account (its number) or, with None, of the global tiers: the next tick
        starts the windows afresh. Call it when trading is resumed by hand."""
        scope = GLOBAL if account is None else account
        tiers = self.tiers.get(scope, [])
        self._highs[scope] = {t.window_ns: _High(t.window_ns) for t in tiers}

    def resume_all(self) -> None:
        for scope in self.tiers:
            self.resume(None if scope == GLOBAL else scope)
