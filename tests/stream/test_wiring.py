"""Wiring from configs/ (no servers): owned accounts and --accounts, strategies bound by account_routing, symbols,
risk limits in the kernel state; and the per-account log files (routing, rotation, redaction)."""

from __future__ import annotations

import json
import logging

import pytest

from kernels.state import L_MAX_OPEN_ORDERS, L_TRADING_STATE
from oms.config import load_config
from oms.keys.redact import register_secret
from oms.model import Market
from stream.logfiles import install, uninstall
from stream.wiring import KernelWiring, WiringError, plan_from_config


@pytest.fixture(scope="module")
def cfg():
    return load_config(env={})


def test_every_account_by_default_with_strategies_bound_by_account_routing(cfg):
    plan = plan_from_config(cfg)
    assert {str(a) for a in plan.accounts} == {f"{ex}/{n}" for ex, ns in cfg.accounts.items() for n in ns}
    bound = {s.name: str(s.account) for s in plan.strategies}
    assert bound["market_making"] == "binance/sub_market_making"  # accounts.yaml account_routing
    assert bound["trend_following"] == "binance/sub_futures_trend"
    assert plan.symbols[("binance", Market.SPOT)][:1] == ("BTC/USDT",)
    assert "BTC/USDT:USDT" in plan.symbols[("binance", Market.USDM)]


def test_accounts_option_selects_and_strategies_of_other_accounts_stay_out(cfg):
    plan = plan_from_config(cfg, ["binance/sub_market_making"])
    assert [str(a) for a in plan.accounts] == ["binance/sub_market_making"]
    assert [s.name for s in plan.strategies] == ["market_making"]
    assert set(plan.symbols) == {("binance", Market.SPOT)}
    whole = plan_from_config(cfg, ["bybit"])
    assert [str(a) for a in whole.accounts] == ["bybit/main"] and not whole.strategies
    # the arbitrage legs trade bybit/main and binance/sub_spot_arb: not hosted by a bybit-only daemon, and it says why
    assert any("strategies.arbitrage is not hosted" in why and "binance/sub_spot_arb" in why for why in whole.unhosted)


def test_legs_bind_several_accounts_markets_and_venues_in_their_order(cfg):
    plan = plan_from_config(cfg)
    by_name = {s.name: s for s in plan.strategies}
    arb = by_name["arbitrage"]
    assert [(str(a), m, s) for a, m, s in arb.legs] == [
        ("binance/sub_spot_arb", Market.SPOT, "BTC/USDT"),
        ("bybit/main", Market.SPOT, "BTC/USDT"),
    ]
    basis = by_name["basis"]
    assert [(str(a), m, s) for a, m, s in basis.legs] == [
        ("binance/sub_futures_basis", Market.SPOT, "BTC/USDT"),
        ("binance/sub_futures_basis", Market.USDM, "BTC/USDT:USDT"),
    ]
    assert plan.symbols[("bybit", Market.SPOT)] == ("BTC/USDT",)
    assert not plan.unhosted


@pytest.mark.parametrize(
    "wanted, message",
    [(["binance/nobody"], "binance has no account 'nobody'"), (["kraken"], "exchange 'kraken' is not in accounts")],
)
def test_unknown_accounts_are_named(cfg, wanted, message):
    with pytest.raises(WiringError, match=message):
        plan_from_config(cfg, wanted)


def test_risk_limits_land_in_the_kernel_state_in_account_order(cfg):
    plan = plan_from_config(cfg, ["binance/main", "binance/sub_market_making"])
    w = KernelWiring(cfg, plan)
    assert w.accounts["binance", "sub_market_making"] == 1
    assert int(w.state.lim[L_MAX_OPEN_ORDERS, 1]) == 400  # risk.yaml override
    assert int(w.state.lim[L_MAX_OPEN_ORDERS, 0]) == 200  # the default
    assert int(w.state.lim[L_TRADING_STATE, 0]) == 0


def test_account_logs_are_routed_rotated_and_free_of_secrets(tmp_path):
    secret = "s3cr3t-value-of-a-key-123"
    register_secret(secret)
    router = install(tmp_path, ["binance/sub_mm", "binance/main"], max_bytes=2000, backups=2)
    try:
        log = logging.getLogger("stream.test")
        log.warning("lease lost", extra={"account": "binance/main"})
        for k in range(200):
            log.info("filler line %d for binance/sub_mm", k)
        log.info("order placed for binance/sub_mm with key %s", secret)
    finally:
        uninstall(router)
    sub = tmp_path / "binance" / "sub_mm.jsonl"
    rotated = sorted(tmp_path.glob("binance/sub_mm.jsonl*"))
    assert sub.exists() and len(rotated) == 3  # the file and two backups, older ones dropped
    main = [json.loads(line) for line in (tmp_path / "binance" / "main.jsonl").read_text().splitlines()]
    assert main[0]["account"] == "binance/main" and main[0]["level"] == "warning"
    everything = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl*"))
    assert secret not in everything and "[REDACTED]" in sub.read_text()
