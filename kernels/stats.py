"""Statistics, position sizing and stop levels.

Statistics are analytics over float64 return and equity series (VaR, volatility, drawdown): they
report risk, they do not compare money. Sizing and stops produce exchange quantities and prices, so
they end in whole lots and whole ticks (int64), rounded toward the smaller risk.

* ``historical_var``: loss at the (1 - confidence) quantile of returns, linear interpolation
  between order statistics (NumPy's default), as a positive fraction.
* ``volatility``: sample standard deviation (ddof = 1) of returns, scaled by sqrt(periods per year).
* ``drawdown``: the drawdown series (fraction below the running peak) and the maximum drawdown with
  its peak and trough indices.
* ``size_fixed_fraction``: risk a fixed fraction of equity between entry and stop.
* ``kelly_fraction`` / ``size_kelly``: f* = p - (1 - p) / b, scaled by a fraction, clamped to [0, 1]
  (0 when undefined).
* ``size_vol_target``: notional = equity x target vol / asset vol.
* ``stop_fixed``, ``trailing_stops``, ``time_stop``: stop-loss levels.

These compile on first use (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.codes import BUY
from kernels.fixed import PPM, mul_div_floor


@njit(cache=True)
def simple_returns(prices):
    out = np.empty(prices.shape[0] - 1)
    for k in range(out.shape[0]):
        out[k] = prices[k + 1] / prices[k] - 1.0
    return out


@njit(cache=True)
def historical_var(returns, confidence):
    """Historical VaR: -quantile(returns, 1 - confidence), linear interpolation; NaN if empty."""
    n = returns.shape[0]
    if n == 0:
        return np.nan
    r = np.sort(returns)
    h = (n - 1) * (1.0 - confidence)
    lo = int(np.floor(h))
    hi = min(lo + 1, n - 1)
    q = r[lo] + (h - lo) * (r[hi] - r[lo])
    return -q


@njit(cache=True)
def volatility(returns, periods_per_year):
    """Sample standard deviation of returns times sqrt(periods_per_year); NaN below two returns."""
    n = returns.shape[0]
    if n < 2:
        return np.nan
    mean = 0.0
    for x in returns:
        mean += x
    mean /= n
    ss = 0.0
    for x in returns:
        ss += (x - mean) ** 2
    return np.sqrt(ss / (n - 1)) * np.sqrt(periods_per_year)


@njit(cache=True)
def drawdown(equity):
    """(drawdown series as fractions of the running peak, max drawdown, peak index, trough index)."""
    n = equity.shape[0]
    dd = np.zeros(n)
    peak = -np.inf
    peak_at = 0
    worst = 0.0
    worst_peak = 0
    worst_trough = 0
    for k in range(n):
        if equity[k] > peak:
            peak = equity[k]
            peak_at = k
        if peak > 0:
            dd[k] = (peak - equity[k]) / peak
        if dd[k] > worst:
            worst = dd[k]
            worst_peak = peak_at
            worst_trough = k
    return dd, worst, worst_peak, worst_trough


@njit(cache=True)
def _to_lots(qty, lot):
    if qty <= 0:
        return np.int64(0)
    return qty - qty % lot


@njit(cache=True)
def size_fixed_fraction(equity, risk_ppm, entry, stop, mult, lot):
    """Quantity (units, whole lots) that loses risk_ppm of equity (money units) if the stop is hit."""
    per_unit = abs(entry - stop) * mult
    if per_unit == 0 or equity <= 0:
        return np.int64(0)
    budget = mul_div_floor(equity, risk_ppm, PPM)
    return _to_lots(budget // per_unit, lot)


@njit(cache=True)
def kelly_fraction(win_prob, win_loss_ratio, scale):
    """scale x (p - (1 - p) / b), clamped to [0, 1]; 0 when b <= 0."""
    if not win_loss_ratio > 0:
        return 0.0
    f = (win_prob - (1.0 - win_prob) / win_loss_ratio) * scale
    if not f > 0.0:  # negative edge, or NaN from inf x 0
        return 0.0
    return min(f, 1.0)


MAX_SIZE = 2**62  # sizes are capped here (a huge size from a tiny volatility stays an int64)


@njit(cache=True)
def _notional_to_qty(notional, price, mult, lot):
    """Whole lots worth at most ``notional`` money (float) at ``price``, capped at MAX_SIZE units."""
    unit = price * mult
    if unit <= 0 or not notional > 0:
        return np.int64(0)
    units = notional / unit
    if units >= MAX_SIZE:
        return _to_lots(np.int64(MAX_SIZE), lot)
    return _to_lots(np.int64(np.floor(units)), lot)


@njit(cache=True)
def size_kelly(equity, win_prob, win_loss_ratio, scale, price, mult, lot):
    return _notional_to_qty(equity * kelly_fraction(win_prob, win_loss_ratio, scale), price, mult, lot)


@njit(cache=True)
def size_vol_target(equity, target_vol, asset_vol, price, mult, lot):
    """Quantity whose volatility is target_vol of equity, given the asset's volatility."""
    if asset_vol <= 0:
        return np.int64(0)
    return _notional_to_qty(equity * target_vol / asset_vol, price, mult, lot)


@njit(cache=True)
def stop_fixed(entry, side, distance_ppm, tick):
    """Stop price distance_ppm away from entry on the losing side (side = the position's entry side),
    rounded to a whole tick toward the entry, i.e. less risk: a long's stop rounds up, a short's down."""
    d = mul_div_floor(entry, distance_ppm, PPM)
    if side == BUY:
        p = entry - d
        return p + (-p) % tick
    p = entry + d
    return p - p % tick


@njit(cache=True)
def trailing_stops(prices, side, distance_ppm, tick):
    """Trailing stop level after each price and the index of the first price that hits the stop
    set by the prices before it (-1: never). The level follows the best price, never backs off."""
    n = prices.shape[0]
    levels = np.empty(n, dtype=np.int64)
    hit = -1
    extreme = prices[0] if n else 0
    for k in range(n):
        p = prices[k]
        if k > 0 and hit < 0:
            if (side == BUY and p <= levels[k - 1]) or (side != BUY and p >= levels[k - 1]):
                hit = k
        if (side == BUY and p > extreme) or (side != BUY and p < extreme):
            extreme = p
        levels[k] = stop_fixed(extreme, side, distance_ppm, tick)
    return levels, hit


@njit(cache=True)
def time_stop(entry_ns, now_ns, max_hold_ns):
    """True when a position opened at entry_ns has been held for max_hold_ns or longer."""
    return now_ns - entry_ns >= max_hold_ns


# --------------------------------------------------------------------------- portfolio guards
# Computed on the daemon's timer (stream/risk/guards.py), never per order: a matrix of marks sampled at
# the same instants -> log returns -> volatility per instrument and pairwise correlation -> per account
# and instrument, whether a new buy or sell would add exposure correlated with its open positions.
# Missing samples are 0 (no mark yet) and are skipped pairwise. They release the GIL (nogil), so the
# daemon runs them in a worker thread while its loop keeps serving orders.


@njit(cache=True, nogil=True)
def log_returns(marks):
    """marks[i, k] (>0, or 0 = missing) -> log returns[i, k] = ln(marks[i, k+1] / marks[i, k]); NaN
    where either sample is missing."""
    n, m = marks.shape
    out = np.full((n, max(m - 1, 0)), np.nan)
    for i in range(n):
        for k in range(m - 1):
            a = marks[i, k]
            b = marks[i, k + 1]
            if a > 0 and b > 0:
                out[i, k] = np.log(b / a)
    return out


@njit(cache=True, nogil=True)
def volatilities(returns, periods_per_year, min_obs):
    """Per row: the sample standard deviation of its finite returns x sqrt(periods_per_year); NaN with
    fewer than ``min_obs`` (at least two) finite returns."""
    n, m = returns.shape
    out = np.full(n, np.nan)
    need = max(min_obs, 2)
    for i in range(n):
        cnt = 0
        mean = 0.0
        for k in range(m):
            x = returns[i, k]
            if np.isfinite(x):
                cnt += 1
                mean += x
        if cnt < need:
            continue
        mean /= cnt
        ss = 0.0
        for k in range(m):
            x = returns[i, k]
            if np.isfinite(x):
                ss += (x - mean) ** 2
        out[i] = np.sqrt(ss / (cnt - 1)) * np.sqrt(periods_per_year)
    return out


@njit(cache=True, nogil=True)
def correlations(returns, min_obs):
    """Pearson correlation of every pair of rows over the columns where both are finite; NaN for a pair
    with fewer than ``min_obs`` (at least two) common returns or a constant row. The diagonal is 1."""
    n, m = returns.shape
    out = np.full((n, n), np.nan)
    need = max(min_obs, 2)
    for i in range(n):
        out[i, i] = 1.0
        for j in range(i + 1, n):
            cnt = 0
            si = 0.0
            sj = 0.0
            for k in range(m):
                x = returns[i, k]
                y = returns[j, k]
                if np.isfinite(x) and np.isfinite(y):
                    cnt += 1
                    si += x
                    sj += y
            if cnt < need:
                continue
            mi = si / cnt
            mj = sj / cnt
            sxy = 0.0
            sxx = 0.0
            syy = 0.0
            for k in range(m):
                x = returns[i, k]
                y = returns[j, k]
                if np.isfinite(x) and np.isfinite(y):
                    sxy += (x - mi) * (y - mj)
                    sxx += (x - mi) ** 2
                    syy += (y - mj) ** 2
            if sxx > 0.0 and syy > 0.0:
                c = sxy / np.sqrt(sxx * syy)
                out[i, j] = c
                out[j, i] = c
    return out


@njit(cache=True, nogil=True)
def correlated_entries(corr, net_qty, limit, out):
    """out[a, i, s] = 1 when a new order of side s (0 buy, 1 sell) on instrument i in account a would add
    exposure correlated above ``limit`` with one of the account's open positions j != i (net_qty[a, j]
    signed): buying i is correlated with a long j at corr[i, j] and with a short j at -corr[i, j]; selling,
    the other way round. A NaN correlation (not enough data) blocks nothing. Returns the number of
    (account, instrument, side) entries blocked."""
    n_acc, n_ins = net_qty.shape
    blocked = 0
    for a in range(n_acc):
        for i in range(n_ins):
            out[a, i, 0] = 0
            out[a, i, 1] = 0
        for j in range(n_ins):
            q = net_qty[a, j]
            if q == 0:
                continue
            sign = 1.0 if q > 0 else -1.0
            for i in range(n_ins):
                if i == j:
                    continue
                c = corr[i, j]
                if not np.isfinite(c):
                    continue
                if c * sign > limit:  # buying i goes with the position in j
                    out[a, i, 0] = 1
                if -c * sign > limit:  # selling i goes with it
                    out[a, i, 1] = 1
        for i in range(n_ins):
            blocked += out[a, i, 0] + out[a, i, 1]
    return blocked


@njit(cache=True, nogil=True)
def volatility_scales(vols, target_vol, min_scale_ppm, out):
    """out[i] = size scale in ppm: target_vol / vol_i, clamped to [min_scale_ppm, 1e6]; 1e6 where the
    volatility is unknown (NaN) or zero."""
    for i in range(vols.shape[0]):
        v = vols[i]
        if not np.isfinite(v) or v <= 0.0:
            out[i] = PPM
            continue
        s = target_vol / v
        if s >= 1.0:
            out[i] = PPM
        else:
            ppm = np.int64(np.floor(s * PPM))
            out[i] = ppm if ppm > min_scale_ppm else min_scale_ppm
    return out
