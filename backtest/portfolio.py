"""Several accounts, each with its own strategy and capital, over one tape: per-account and combined results.

Each sleeve (a strategy instance and the accounts it trades) runs through the engine on the same
events; the fill model never moves the market, so sleeves do not interact and the combined equity is
the sum of the accounts' equity at every event (tested). ``correlation`` compares the accounts' daily
returns; ``backtest.allocation`` searches capital weights over them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from backtest.run import Account, Execution, Result, run
from backtest.tape import Tape
from strategies.base import Params, Strategy

DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class Sleeve:
    """One strategy instance with its accounts (and, optionally, which tape instruments it trades)."""

    name: str
    strategy: Strategy
    params: dict | Params
    accounts: tuple[Account, ...]
    instruments: tuple[int, ...] | None = None


@dataclass
class Portfolio:
    results: list[Result]

    @property
    def accounts(self) -> list[str]:
        return [f"{r.strategy}/{a}" for r in self.results for a in r.accounts]

    @property
    def equity(self) -> np.ndarray:
        """(events, accounts) money units, every account of every sleeve."""
        return np.concatenate([r.equity for r in self.results], axis=1)

    @property
    def total(self) -> np.ndarray:
        return self.equity.sum(axis=1)

    def daily_equity(self) -> tuple[np.ndarray, np.ndarray]:
        """(day starts ns, equity at each day's last event) per account."""
        ts = self.results[0].ts
        day = ts // DAY_NS
        last = np.flatnonzero(np.diff(day, append=day[-1] + 1) != 0)
        return day[last] * DAY_NS, self.equity[last]

    def daily_returns(self) -> np.ndarray:
        _, eq = self.daily_equity()
        eq = eq.astype(np.float64)
        return np.diff(eq, axis=0) / eq[:-1]

    def correlation(self) -> np.ndarray:
        """Correlation of the accounts' daily returns (NaN where an account never moves)."""
        r = self.daily_returns()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.corrcoef(r, rowvar=False)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for r in self.results:
            h.update(r.fingerprint().encode())
        return h.hexdigest()


def run_portfolio(sleeves: list[Sleeve], tape: Tape, execution: Execution | None = None) -> Portfolio:
    """Run every sleeve over ``tape`` (same execution model) and gather them."""
    names = [s.name for s in sleeves]
    if len(set(names)) != len(names):
        raise ValueError(f"sleeve names must be unique: {names}")
    return Portfolio(
        [
            run(
                s.strategy,
                s.params,
                tape,
                list(s.accounts),
                name=s.name,
                execution=execution,
                bind_instruments=s.instruments,
            )  # fmt: skip
            for s in sleeves
        ]
    )
