"""Portfolio guards: new entries refused when correlated with the account's open positions, and entry sizes
scaled by a volatility index.

On the daemon's timer (``portfolio_guards.interval_s`` in ``configs/risk.yaml``) ``tick()`` samples every
instrument's mark from the kernel state into a ring of ``lookback`` samples and, through ``kernels.stats``,
computes log returns, each instrument's annualised volatility and the pairwise correlation, then, for every
account, which new buys and sells would add exposure correlated above ``max_correlation`` with one of its
open positions (buying ETH while long BTC at +0.9 is refused; buying ETH while short BTC is a hedge and
passes), and each instrument's size scale ``target_volatility / volatility`` (at most 1, at least
``min_size_scale``). Nothing is computed per order: ``check()``, the gateway's hook, reads two tables.

``check(a, i, side, pos_side, qty)`` leaves orders that only reduce a position alone; for an entry it returns
the quantity scaled down to whole lots, or a refusal ``(code, reason)``: ``guard:correlation`` naming the
correlated position, ``guard:volatility`` when the scaled size falls below the instrument's minimum.
Until ``min_observations`` returns exist for an instrument, nothing about it is refused or scaled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernels import codes as C
from kernels.fixed import PPM
from kernels.state import I_LOT, I_MARK, I_MIN_QTY, P_QTY, KernelState
from kernels.stats import correlated_entries, correlations, log_returns, volatilities, volatility_scales

log = logging.getLogger("stream.risk.guards")

YEAR_S = 365 * 86400


@dataclass(frozen=True)
class GuardSettings:
    interval_s: float = 60.0
    lookback: int = 240
    min_observations: int = 30
    max_correlation: float = 0.85
    target_volatility: float = 0.8
    min_size_scale: float = 0.1

    @classmethod
    def from_config(cls, cfg) -> GuardSettings:  # oms.config.models.PortfolioGuardsConfig
        return cls(
            float(cfg.interval_s),
            cfg.lookback,
            cfg.min_observations,
            float(cfg.max_correlation),
            float(cfg.target_volatility),
            float(cfg.min_size_scale),
        )


class PortfolioGuards:
    """The guard tables over one ``KernelState``; ``names(i)`` turns instrument numbers into symbols."""

    def __init__(
        self,
        state: KernelState,
        settings: GuardSettings,
        names: Callable[[int], str] = str,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.state = state
        self.settings = settings
        self.names = names
        self.clock = clock
        n_acc, n_ins = state.n_accounts, state.n_instruments
        self.marks = np.zeros((n_ins, settings.lookback), dtype=np.float64)  # ring, oldest at self._next
        self.samples = 0
        self._next = 0
        self.corr = np.full((n_ins, n_ins), np.nan)
        self.vols = np.full(n_ins, np.nan)
        self.blocked = np.zeros((n_acc, n_ins, 2), dtype=np.int8)
        self.scale_ppm = np.full(n_ins, PPM, dtype=np.int64)
        self.refused = {"guard:correlation": 0, "guard:volatility": 0}
        self.scaled = 0
        self.computed_ns = 0

    # ------------------------------------------------------------------ on the timer
    def sample(self) -> None:
        """Record every instrument's current mark (0 = none yet) as the newest sample."""
        self.marks[:, self._next] = self.state.ins[I_MARK]
        self._next = (self._next + 1) % self.settings.lookback
        self.samples += 1

    def recompute(self) -> int:
        """Volatility, correlation and both tables from the samples; returns the entries blocked.

        The kernels release the GIL: the daemon calls this in a worker thread. The new tables are built
        aside and swapped in at the end, so ``check`` always reads a consistent set."""
        s = self.settings
        ordered = np.ascontiguousarray(np.roll(self.marks, -self._next, axis=1))
        if self.samples < s.lookback:
            ordered = np.ascontiguousarray(ordered[:, s.lookback - self.samples :])
        returns = log_returns(ordered)
        vols = volatilities(returns, YEAR_S / s.interval_s, s.min_observations)
        corr = correlations(returns, s.min_observations)
        pos = self.state.pos[P_QTY]
        net = np.ascontiguousarray(pos[:, :, 0] + pos[:, :, 1])  # netting: slot 0; hedge: long + short
        blocked = np.zeros_like(self.blocked)
        n = correlated_entries(corr, net, s.max_correlation, blocked)
        scale = volatility_scales(vols, s.target_volatility, int(s.min_size_scale * PPM), np.empty_like(self.scale_ppm))
        self.vols, self.corr, self.blocked, self.scale_ppm = vols, corr, blocked, scale
        self.computed_ns = self.clock()
        return int(n)

    def tick(self) -> int:
        self.sample()
        return self.recompute()

    # ------------------------------------------------------------------ per order (the gateway's hook)
    def check(self, a: int, i: int, side: int, pos_side: int, qty: int) -> tuple[int, tuple[str, str] | None]:
        """(quantity to send, None) or (qty, (code, reason)) for an order of ``qty`` units; see the docstring."""
        pos = self.state.pos
        if pos_side == C.POS_BOTH:
            q = int(pos[P_QTY, a, i, 0])
            if q != 0 and (q > 0) == (side == C.SELL) and qty <= abs(q):
                return qty, None  # only reduces the position
        elif (pos_side == C.POS_LONG) == (side == C.SELL):
            return qty, None  # closes a hedge-mode slot
        k = 0 if side == C.BUY else 1
        if self.blocked[a, i, k]:
            self.refused["guard:correlation"] += 1
            return qty, ("guard:correlation", self._why_correlated(a, i, side))
        scale = int(self.scale_ppm[i])
        if scale >= PPM:
            return qty, None
        lot = int(self.state.ins[I_LOT, i]) or 1
        scaled = qty * scale // PPM
        scaled -= scaled % lot
        if scaled <= 0 or scaled < int(self.state.ins[I_MIN_QTY, i]):
            self.refused["guard:volatility"] += 1
            return qty, (
                "guard:volatility",
                f"{self.names(i)} volatility {self.vols[i]:.0%} scales the order to {scale / PPM:.2f} of its size, "
                "below the instrument's minimum quantity",
            )
        if scaled != qty:
            self.scaled += 1
        return scaled, None

    def _why_correlated(self, a: int, i: int, side: int) -> str:
        net = self.state.pos[P_QTY, a, :, 0] + self.state.pos[P_QTY, a, :, 1]
        sign = 1.0 if side == C.BUY else -1.0
        best_j, best = -1, -np.inf
        for j in np.flatnonzero(net):
            if j == i or not np.isfinite(self.corr[i, j]):
                continue
            c = self.corr[i, j] * sign * (1.0 if net[j] > 0 else -1.0)
            if c > best:
                best_j, best = int(j), c
        what = "buying" if side == C.BUY else "selling"
        if best_j < 0:
            return f"{what} {self.names(i)} is correlated with an open position"
        held = "long" if net[best_j] > 0 else "short"
        return (
            f"{what} {self.names(i)} adds to the {held} {self.names(best_j)} position: return correlation "
            f"{self.corr[i, best_j]:+.2f} exceeds the limit {self.settings.max_correlation:.2f}"
        )
