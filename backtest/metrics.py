"""Performance metrics of a backtest result: returns, risk ratios, drawdown, trades, turnover, fees, exposure.

Money is exact (int64 1e-8 USDT) up to here; ratios are float64 analytics. Returns for Sharpe and
Sortino are daily (equity at each UTC day's last event), annualised over 365 days (crypto trades
every day). A round trip runs from flat to flat on one account and instrument; its PnL is its fills'
proceeds minus their fees, so win rate and profit factor count fees.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from backtest.run import Result
from strategies.api import F_ACCOUNT, F_EVENT, F_FEE, F_INST, F_PRICE, F_QTY, F_SIDE

DAY_NS = 86_400_000_000_000
YEAR_DAYS = 365
SCALE = 1e8


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak at every point, as a negative fraction (0 at a new high)."""
    eq = equity.astype(np.float64)
    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, eq / peak - 1.0, 0.0)


def daily(ts: np.ndarray, equity: np.ndarray) -> np.ndarray:
    day = ts // DAY_NS
    last = np.flatnonzero(np.diff(day, append=day[-1] + 1) != 0)
    return equity[last]


def _flows(result: Result, fills: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fill: its (account, instrument) key, signed quantity and money flow (proceeds minus fee), int64."""
    mult = np.array([ins.mult for ins in result.instruments], dtype=np.int64)[fills[:, F_INST]]
    key = fills[:, F_ACCOUNT] * max(len(result.instruments), 1) + fills[:, F_INST]
    signed = fills[:, F_SIDE] * fills[:, F_QTY]
    # each product is below the engine's money bound (backtest.codes.MONEY_LIMIT), so int64 holds it exactly
    flow = -fills[:, F_SIDE] * fills[:, F_PRICE] * fills[:, F_QTY] * mult - fills[:, F_FEE]
    return key, signed, flow


def round_trips(result: Result, account: int | None = None) -> list[float]:
    """PnL (USDT, fees included) of every flat-to-flat round trip, in the order they close."""
    fills = result.trades
    if account is not None:
        fills = fills[fills[:, F_ACCOUNT] == account]
    if len(fills) == 0:
        return []
    key, signed, flow = _flows(result, fills)
    closes: list[tuple[int, int]] = []  # (index of the closing fill, exact PnL in money units)
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        flat = np.flatnonzero(np.cumsum(signed[idx]) == 0)
        if len(flat) == 0:
            continue
        # exact sums in Python ints (a sum of many flows may pass int64; each flow does not)
        total = list(itertools.accumulate(flow[idx].tolist()))
        prev = 0
        for j in flat.tolist():
            closes.append((int(idx[j]), total[j] - prev))
            prev = total[j]
    closes.sort()
    return [pnl / SCALE for _, pnl in closes]


def _curve(result: Result, account: int | None) -> tuple[np.ndarray, float]:
    eq = result.equity[:, account] if account is not None else result.equity.sum(axis=1)
    start = float(result.initial[account] if account is not None else result.initial.sum())
    if len(eq) == 0:
        raise ValueError("the run recorded no equity (record_equity=False)")
    return eq, start


CURVE_METRICS = ("start_usdt", "final_usdt", "total_return", "annual_return", "sharpe", "sortino", "max_drawdown",
                 "calmar")  # fmt: skip


def curve_metrics(result: Result, account: int | None = None) -> dict[str, float]:
    """The metrics of the equity curve alone (``CURVE_METRICS``), without the trade list's: what a sweep scores.

    The same values as ``metrics`` gives for these keys (it starts from this).
    """
    eq, start = _curve(result, account)
    years = max((int(result.ts[-1]) - int(result.ts[0])) / DAY_NS / YEAR_DAYS, 1e-9)
    final = float(eq[-1])
    total = final / start - 1
    annual = (final / start) ** (1 / years) - 1 if final > 0 else -1.0
    d = daily(result.ts, eq).astype(np.float64)
    r = np.diff(np.concatenate([[start], d])) / np.concatenate([[start], d[:-1]])
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    down = r[r < 0]
    dsd = math.sqrt((down**2).mean()) if len(down) else 0.0
    dd = drawdown(eq)
    max_dd = float(dd.min()) if len(dd) else 0.0
    return {
        "start_usdt": start / SCALE,
        "final_usdt": final / SCALE,
        "total_return": total,
        "annual_return": annual,
        "sharpe": float(r.mean() / sd * math.sqrt(YEAR_DAYS)) if sd > 0 else 0.0,
        "sortino": float(r.mean() / dsd * math.sqrt(YEAR_DAYS)) if dsd > 0 else 0.0,
        "max_drawdown": max_dd,
        "calmar": annual / abs(max_dd) if max_dd < 0 else 0.0,
    }


def metrics(result: Result, account: int | None = None) -> dict[str, float]:
    """The standard set for one account (or all together when ``account`` is None)."""
    out = curve_metrics(result, account)
    eq, _ = _curve(result, account)
    trips = round_trips(result, account)
    wins = [p for p in trips if p > 0]
    losses = [p for p in trips if p < 0]
    fills = result.trades if account is None else result.trades[result.trades[:, F_ACCOUNT] == account]
    mults = np.array([ins.mult for ins in result.instruments], dtype=np.int64)
    notional = sum((fills[:, F_PRICE] * fills[:, F_QTY] * mults[fills[:, F_INST]]).tolist()) / SCALE
    exposure = _exposure(result, fills, len(eq))
    return {
        **out,
        "trades": len(trips),
        "win_rate": len(wins) / len(trips) if trips else 0.0,
        "profit_factor": sum(wins) / -sum(losses) if losses else (math.inf if wins else 0.0),
        "turnover": notional / (float(eq.mean()) / SCALE) if eq.mean() > 0 else 0.0,
        "fees_usdt": float(fills[:, F_FEE].sum()) / SCALE if len(fills) else 0.0,
        "exposure": exposure,
        "fills": len(fills),
    }


def _exposure(result: Result, fills: np.ndarray, n: int) -> float:
    """Share of events with any open position."""
    if n == 0:
        return 0.0
    held = np.zeros(n + 1, dtype=np.int64)
    if len(fills):
        key, signed, _ = _flows(result, fills)
        change = np.zeros(len(fills), dtype=np.int64)
        for k in np.unique(key):
            idx = np.flatnonzero(key == k)
            after = np.cumsum(signed[idx])
            before = after - signed[idx]
            change[idx] = (after != 0).astype(np.int64) - (before != 0)
        np.add.at(held, fills[:, F_EVENT], change)
    return float((np.cumsum(held)[:n] > 0).mean())
