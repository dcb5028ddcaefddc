"""Sweeps (grid, random, Optuna), walk-forward, and the allocation search over accounts."""

from __future__ import annotations

import numpy as np

from backtest.allocation import search
from backtest.portfolio import Sleeve, run_portfolio
from backtest.run import Account
from backtest.sweep import evaluate, grid, optuna_search, random_points, walk_forward
from strategies.sma_cross import STRATEGY as SMA


def test_grid_and_random_points_are_deterministic_and_invalid_sets_are_left_out(btc_hourly):
    pts = grid({"fast_window": [5, 10, 40], "slow_window": [20, 30]})
    assert len(pts) == 6
    scored = evaluate(SMA, pts, btc_hourly)
    assert len(scored) == 4  # 40/20 and 40/30 are refused by the model: slow must exceed fast
    assert all(p.params["slow_window"] > p.params["fast_window"] for p in scored)
    again = evaluate(SMA, pts, btc_hourly)
    assert [p.score for p in scored] == [p.score for p in again]
    r = random_points({"fast_window": (2, 20), "slow_window": (25, 60)}, 5, seed=3)
    assert r == random_points({"fast_window": (2, 20), "slow_window": (25, 60)}, 5, seed=3)


def test_a_light_sweep_scores_exactly_like_a_full_one(btc_hourly):
    from backtest.metrics import CURVE_METRICS

    pts = grid({"fast_window": [5, 10, 40], "slow_window": [20, 30]})
    for objective in ("sharpe", "calmar"):
        full = evaluate(SMA, pts, btc_hourly, objective=objective)
        light = evaluate(SMA, pts, btc_hourly, objective=objective, full=False)
        assert [(p.params, p.score) for p in light] == [(p.params, p.score) for p in full]
        assert all(set(p.metrics) == set(CURVE_METRICS) for p in light)
        assert all(lp.metrics == {k: fp.metrics[k] for k in CURVE_METRICS} for lp, fp in zip(light, full, strict=True))
    # an objective from the trade list keeps the full set
    (win,) = evaluate(SMA, [{"fast_window": 10, "slow_window": 30}], btc_hourly, objective="win_rate", full=False)
    assert "trades" in win.metrics and win.score == win.metrics["win_rate"]


def test_optuna_finds_at_least_the_best_of_its_own_trials(btc_hourly):
    best = optuna_search(SMA, {"fast_window": (3, 20), "slow_window": (25, 80)}, btc_hourly, trials=8, seed=1)
    assert 3 <= best.params["fast_window"] <= 20 and best.score == best.metrics["sharpe"]


def test_walk_forward_trains_before_and_tests_after(btc_hourly):
    pts = grid({"fast_window": [5, 10], "slow_window": [30, 60]})
    folds = walk_forward(SMA, pts, btc_hourly, folds=3)
    assert len(folds) == 3
    for f in folds:
        assert f.train[1] == f.test[0] and f.test[1] > f.test[0]
        assert f.chosen in pts
    assert folds[-1].test[1] == len(btc_hourly)


def test_allocation_search_reports_the_frontier_max_sharpe_and_the_capped_best(btc_hourly):
    pf = run_portfolio([
        Sleeve("fast", SMA, {"fast_window": 5, "slow_window": 20}, (Account("a", "50000"),)),
        Sleeve("slow", SMA, {"fast_window": 24, "slow_window": 96}, (Account("b", "50000"),)),
    ], btc_hourly)  # fmt: skip
    alloc = search(pf.daily_returns(), pf.accounts, drawdown_cap=0.6, step=0.25, samples=50)
    assert len(alloc.mixes) == 5 + 50
    assert all(abs(sum(m.weights) - 1) < 1e-9 for m in alloc.mixes)
    assert alloc.max_sharpe.sharpe == max(m.sharpe for m in alloc.mixes)
    vols = [m.volatility for m in alloc.frontier]
    rets = [m.annual_return for m in alloc.frontier]
    assert vols == sorted(vols) and rets == sorted(rets)
    for m in alloc.mixes:  # nothing beats the frontier on both axes
        assert not any(m.volatility < f.volatility and m.annual_return > f.annual_return for f in alloc.frontier)
    capped = alloc.max_return_under_cap
    assert capped is None or capped.max_drawdown >= -0.6
    single = search(pf.daily_returns()[:, :1], pf.accounts[:1], step=0.5, samples=0)
    assert np.isclose(single.max_sharpe.weights[0], 1.0)
