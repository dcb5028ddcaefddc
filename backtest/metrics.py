"""Performance metrics of a backtest result: returns, risk ratios, drawdown, trades, turnover, fees, exposure.

Money is exact (int64 1e-8 USDT) up to here; ratios are float64 analytics. Returns for Sharpe and
Sortino are daily (equity at each UTC day's last event), annualised over 365 days (crypto trades
every day). A round trip runs from flat to flat on one account and instrument; its PnL is its fills'
proceeds minus their fees, so win rate and profit factor count fees.
"""

from __future__ import annotations

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


def round_trips(result: Result, account: int | None = None) -> list[float]:
    """PnL (USDT, fees included) of every flat-to-flat round trip."""
    out: list[float] = []
    held: dict[tuple[int, int], int] = {}
    pnl: dict[tuple[int, int], int] = {}
    for f in result.trades:
        a, i = int(f[F_ACCOUNT]), int(f[F_INST])
        if account is not None and a != account:
            continue
        key = (a, i)
        mult = result.instruments[i].mult
        side, q = int(f[F_SIDE]), int(f[F_QTY])
        pnl[key] = pnl.get(key, 0) - side * int(f[F_PRICE]) * q * mult - int(f[F_FEE])
        held[key] = held.get(key, 0) + side * q
        if held[key] == 0:
            out.append(pnl.pop(key) / SCALE)
    return out


def metrics(result: Result, account: int | None = None) -> dict[str, float]:
    """The standard set for one account (or all together when ``account`` is None)."""
    eq = result.equity[:, account] if account is not None else result.equity.sum(axis=1)
    start = float(result.initial[account] if account is not None else result.initial.sum())
    if len(eq) == 0:
        raise ValueError("the run recorded no equity (record_equity=False)")
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
    trips = round_trips(result, account)
    wins = [p for p in trips if p > 0]
    losses = [p for p in trips if p < 0]
    fills = result.trades if account is None else result.trades[result.trades[:, F_ACCOUNT] == account]
    notional = sum(int(f[F_PRICE]) * int(f[F_QTY]) * result.instruments[int(f[F_INST])].mult for f in fills) / SCALE
    exposure = _exposure(result, fills, len(eq))
    return {
        "start_usdt": start / SCALE,
        "final_usdt": final / SCALE,
        "total_return": total,
        "annual_return": annual,
        "sharpe": float(r.mean() / sd * math.sqrt(YEAR_DAYS)) if sd > 0 else 0.0,
        "sortino": float(r.mean() / dsd * math.sqrt(YEAR_DAYS)) if dsd > 0 else 0.0,
        "max_drawdown": max_dd,
        "calmar": annual / abs(max_dd) if max_dd < 0 else 0.0,
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
    held = np.zeros(n + 1, dtype=np.int64)
    pos: dict[tuple[int, int], int] = {}
    open_count = 0
    for f in fills:
        key = (int(f[F_ACCOUNT]), int(f[F_INST]))
        before = pos.get(key, 0)
        after = before + int(f[F_SIDE]) * int(f[F_QTY])
        pos[key] = after
        change = (after != 0) - (before != 0)
        if change:
            open_count += change
            held[int(f[F_EVENT])] += change
    return float((np.cumsum(held)[:n] > 0).mean()) if n else 0.0
