"""Risk limits from configs/risk.yaml into the kernel arrays; CPU affinity reports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernels import book, routing, stats
from kernels import codes as C
from kernels import state as S
from kernels.affinity import AffinityError, pin_from_config, pin_process, pin_thread
from kernels.risk_limits import load_risk_limits, risk_limits
from kernels.warmup import warm_up
from oms.config import load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
USDT = 10**8


def test_limits_from_the_project_config():
    cfg = load_config(CONFIG_DIR)
    accounts = [
        ("binance", "main"),
        ("binance", "sub_futures_trend"),
        ("binance", "sub_market_making"),
        ("bybit", "main"),
    ]
    limits = load_risk_limits(CONFIG_DIR, accounts)
    main, trend, mm, bybit = range(4)
    lim = limits.lim
    assert lim[S.L_MAX_ORDER_NOTIONAL, main] == 100_000 * USDT  # override
    assert lim[S.L_MAX_ORDER_NOTIONAL, bybit] == 50_000 * USDT  # default
    assert lim[S.L_MAX_LEVERAGE_PPM, trend] == 10_000_000
    assert lim[S.L_ORDER_RATE_MILLI, mm] == 100_000 and lim[S.L_ORDER_BURST, mm] == 200
    assert lim[S.L_MAX_DRAWDOWN_PPM, main] == 200_000 and lim[S.L_PRICE_BAND_PPM, main] == 50_000
    assert (lim[S.L_TRADING_STATE] == C.ACTIVE).all()
    assert limits.max_gross_exposure == int(cfg.risk.global_limits.max_gross_exposure_usdt) * USDT
    ks = S.KernelState(8, 1)
    limits.apply(ks)
    assert ks.lim[S.L_MAX_OPEN_ORDERS, mm] == 400 and ks.lim[S.L_MAX_OPEN_ORDERS, 5] == S.UNLIMITED
    assert ks.acc[S.A_TOKENS, mm] == 200 * S.TOKEN
    assert ks.glob[S.G_MAX_DAILY_LOSS] == 100_000 * USDT
    every = load_risk_limits(CONFIG_DIR)
    assert every.accounts[0] == ("binance", "main") and len(every.accounts) == 6


def fake_risk(**account_fields):
    """A pydantic-free object of RiskConfig's shape."""
    defaults = dict(
        max_order_notional_usdt=Decimal("50000"),
        max_position_notional_usdt=Decimal("100000"),
        max_gross_exposure_usdt=Decimal("250000"),
        max_leverage=Decimal("2.5"),
        max_open_orders=200,
        orders_per_second=Decimal("0.5"),
        order_burst=3,
        max_daily_loss_usdt=Decimal("10000.12345678"),
        max_drawdown_pct=Decimal("12.5"),
        price_band_pct=Decimal("0.25"),
        trading_state="reduce_only",
    )
    defaults.update(account_fields)
    return SimpleNamespace(
        global_limits=SimpleNamespace(
            max_gross_exposure_usdt=Decimal("2e6"), max_daily_loss_usdt=Decimal(1), trading_state="halted"
        ),
        limits_for=lambda exchange, account: SimpleNamespace(**defaults),
    )


def test_exact_conversion_of_fractional_values():
    limits = risk_limits(fake_risk(), [("x", "a")])
    lim = limits.lim[:, 0]
    assert lim[S.L_MAX_LEVERAGE_PPM] == 2_500_000 and lim[S.L_ORDER_RATE_MILLI] == 500
    assert lim[S.L_MAX_DAILY_LOSS] == 1_000_012_345_678 and lim[S.L_MAX_DRAWDOWN_PPM] == 125_000
    assert lim[S.L_PRICE_BAND_PPM] == 2_500 and lim[S.L_TRADING_STATE] == C.REDUCE_ONLY
    assert limits.trading_state == C.HALTED and limits.max_gross_exposure == 2 * 10**6 * USDT


def test_inexact_or_unknown_values_are_refused_with_the_account_named():
    with pytest.raises(ValueError, match="x/a max_daily_loss_usdt: 0.000000001 is not a multiple of 0.00000001"):
        risk_limits(fake_risk(max_daily_loss_usdt=Decimal("0.000000001")), [("x", "a")])
    with pytest.raises(ValueError, match="x/a trading_state: trading_state must be one of"):
        risk_limits(fake_risk(trading_state="paused"), [("x", "a")])


# --- affinity ------------------------------------------------------------------------------------


def test_pin_thread_and_restore():
    allowed = sorted(os.sched_getaffinity(0))
    report = pin_thread([allowed[-1]])
    try:
        assert report.ok and report.after == (allowed[-1],) and "pinned thread" in report.message
        assert os.sched_getaffinity(threading.get_native_id()) == {allowed[-1]}
    finally:
        os.sched_setaffinity(threading.get_native_id(), allowed)


def test_missing_core_is_reported_or_raised():
    report = pin_thread([9999])
    assert not report.ok and "core(s) [9999] do not exist" in report.message and "running unpinned" in report.message
    assert report.after == report.before
    with pytest.raises(AffinityError, match="do not exist"):
        pin_thread([9999], strict=True)
    with pytest.raises(ValueError, match="role must be"):
        pin_from_config(SimpleNamespace(stream=None), role="gpu")


def test_pin_process_from_config_in_a_child_process():
    """Pins a fresh interpreter (all its threads) as configs/stream.yaml says, and reads it back."""
    code = (
        "import os, threading\n"
        "from oms.config import load_config\n"
        "from kernels.affinity import pin_from_config\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
        f"cfg = load_config({str(CONFIG_DIR)!r})\n"
        "r = pin_from_config(cfg, 'daemon')\n"
        "print(r.ok, sorted(os.sched_getaffinity(0)), cfg.stream.daemon.cpu_cores, '|', r.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ok, rest = out.split(" ", 1)
    cores = load_config(CONFIG_DIR).stream.daemon.cpu_cores
    if all(c < (os.cpu_count() or 1) for c in cores) and set(cores) <= os.sched_getaffinity(0):
        assert ok == "True" and rest.startswith(f"{sorted(cores)} {cores}")
    else:  # the configured cores do not exist here: a clear message, no crash
        assert ok == "False" and "running unpinned" in rest
    assert pin_process(sorted(os.sched_getaffinity(0))).ok  # pinning to what we have is a no-op


def test_warm_up_compiles_every_lazy_kernel():
    spent = warm_up()
    assert set(spent) == {"book", "routing", "execution", "positions", "stats"}
    for kernel in (book.best, book.fill_cost, routing.route_order, stats.drawdown):
        assert kernel.signatures, f"{kernel.__name__} was not compiled"
