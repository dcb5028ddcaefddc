"""Reference statistics, sizing and stops in plain Python (see kernels/stats.py)."""

from __future__ import annotations

import math
import statistics

from kernels.codes import BUY


def historical_var(returns: list[float], confidence: float) -> float:
    if not returns:
        return math.nan
    r = sorted(returns)
    h = (len(r) - 1) * (1 - confidence)
    lo = math.floor(h)
    hi = min(lo + 1, len(r) - 1)
    return -(r[lo] + (h - lo) * (r[hi] - r[lo]))


def volatility(returns: list[float], periods_per_year: float) -> float:
    if len(returns) < 2:
        return math.nan
    return statistics.stdev(returns) * math.sqrt(periods_per_year)


def drawdown(equity: list[float]):
    series, worst, worst_peak, worst_trough = [], 0.0, 0, 0
    peak, peak_at = -math.inf, 0
    for k, e in enumerate(equity):
        if e > peak:
            peak, peak_at = e, k
        dd = (peak - e) / peak if peak > 0 else 0.0
        series.append(dd)
        if dd > worst:
            worst, worst_peak, worst_trough = dd, peak_at, k
    return series, worst, worst_peak, worst_trough


def whole_lots(qty: int, lot: int) -> int:
    return qty - qty % lot if qty > 0 else 0


def size_fixed_fraction(equity, risk_ppm, entry, stop, mult, lot):
    per_unit = abs(entry - stop) * mult
    if per_unit == 0 or equity <= 0:
        return 0
    return whole_lots(equity * risk_ppm // 1_000_000 // per_unit, lot)


MAX_SIZE = 2**62


def kelly_fraction(win_prob, win_loss_ratio, scale):
    if not win_loss_ratio > 0:
        return 0.0
    f = (win_prob - (1 - win_prob) / win_loss_ratio) * scale
    return min(f, 1.0) if f > 0 else 0.0  # NaN (inf x 0) is not > 0


def notional_to_qty(notional, price, mult, lot):
    unit = price * mult
    if unit <= 0 or not notional > 0:
        return 0
    units = notional / unit
    return whole_lots(MAX_SIZE if units >= MAX_SIZE else math.floor(units), lot)


def size_kelly(equity, win_prob, win_loss_ratio, scale, price, mult, lot):
    return notional_to_qty(equity * kelly_fraction(win_prob, win_loss_ratio, scale), price, mult, lot)


def size_vol_target(equity, target_vol, asset_vol, price, mult, lot):
    return 0 if asset_vol <= 0 else notional_to_qty(equity * target_vol / asset_vol, price, mult, lot)


def stop_fixed(entry, side, distance_ppm, tick):
    d = entry * distance_ppm // 1_000_000
    if side == BUY:
        return -((-(entry - d)) // tick) * tick  # round up to a tick
    return (entry + d) // tick * tick  # round down to a tick


def trailing_stops(prices, side, distance_ppm, tick):
    levels, hit = [], -1
    extreme = prices[0] if prices else 0
    for k, p in enumerate(prices):
        if k and hit < 0 and ((p <= levels[-1]) if side == BUY else (p >= levels[-1])):
            hit = k
        extreme = max(extreme, p) if side == BUY else min(extreme, p)
        levels.append(stop_fixed(extreme, side, distance_ppm, tick))
    return levels, hit
