"""Capital allocation across accounts: the frontier of weight mixes, the best Sharpe, the best return under a cap.

Given each account's daily returns (``Portfolio.daily_returns``), a mix with weights ``w`` (>= 0, sum 1,
rebalanced daily) returns ``r @ w``. The search evaluates every point of a simplex grid (``step``) plus
deterministic Dirichlet samples (``samples``, ``seed``): annualised return and volatility, Sharpe, max
drawdown. The frontier is the mixes no other mix beats on both return and volatility.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

YEAR_DAYS = 365


@dataclass(frozen=True)
class Mix:
    weights: tuple[float, ...]
    annual_return: float
    volatility: float
    sharpe: float
    max_drawdown: float


@dataclass(frozen=True)
class Allocation:
    accounts: tuple[str, ...]
    mixes: tuple[Mix, ...]
    frontier: tuple[Mix, ...]
    max_sharpe: Mix
    max_return_under_cap: Mix | None
    drawdown_cap: float


def _evaluate(returns: np.ndarray, w: np.ndarray) -> Mix:
    r = returns @ w
    growth = np.cumprod(1 + r)
    years = len(r) / YEAR_DAYS
    annual = float(growth[-1] ** (1 / years) - 1) if growth[-1] > 0 else -1.0
    vol = float(r.std(ddof=1) * math.sqrt(YEAR_DAYS)) if len(r) > 1 else 0.0
    peak = np.maximum.accumulate(np.concatenate([[1.0], growth]))
    dd = float((np.concatenate([[1.0], growth]) / peak - 1).min())
    sharpe = float(r.mean() / r.std(ddof=1) * math.sqrt(YEAR_DAYS)) if vol > 0 else 0.0
    return Mix(tuple(round(float(x), 10) for x in w), annual, vol, sharpe, dd)


def _grid(n: int, step: float) -> list[np.ndarray]:
    k = round(1 / step)
    return [np.array(c, dtype=np.float64) / k for c in itertools.product(range(k + 1), repeat=n) if sum(c) == k]


def search(
    returns: np.ndarray,
    accounts: list[str],
    drawdown_cap: float = 0.25,
    step: float = 0.1,
    samples: int = 2000,
    seed: int = 7,
) -> Allocation:
    """All mixes, the frontier, the max-Sharpe mix and the best return with max drawdown within the cap."""
    returns = np.nan_to_num(np.asarray(returns, dtype=np.float64))
    n = returns.shape[1]
    if n != len(accounts) or n == 0:
        raise ValueError(f"{n} return columns for {len(accounts)} accounts")
    weights = _grid(n, step) if n <= 6 else []
    weights += list(np.random.default_rng(seed).dirichlet(np.ones(n), size=samples))
    mixes = [_evaluate(returns, w) for w in weights]
    ordered = sorted(mixes, key=lambda m: (m.volatility, -m.annual_return))
    frontier, best = [], -math.inf
    for m in ordered:
        if m.annual_return > best:
            frontier.append(m)
            best = m.annual_return
    capped = [m for m in mixes if m.max_drawdown >= -drawdown_cap]
    return Allocation(
        accounts=tuple(accounts),
        mixes=tuple(mixes),
        frontier=tuple(frontier),
        max_sharpe=max(mixes, key=lambda m: m.sharpe),
        max_return_under_cap=max(capped, key=lambda m: m.annual_return) if capped else None,
        drawdown_cap=drawdown_cap,
    )
