"""configs/*.yaml: the example loads, and each class of mistake gets a message naming file, key and reason."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from oms.config import DEFAULT_CONFIG_DIR, ConfigError, load_config

OMS = str(Path(sys.executable).parent / "oms")


@pytest.fixture()
def cfg_dir(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def problems(cfg_dir: Path, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir, env=env or {})
    return [str(p) for p in info.value.problems]


def test_example_configuration_loads():
    cfg = load_config(env={})
    assert set(cfg.accounts) == {"binance", "bybit"}
    trend = cfg.account("binance", "sub_futures_trend")
    assert trend.futures_enabled and trend.max_leverage == 10 and trend.parent == "main"
    assert cfg.account_for_strategy("trend_following") == "sub_futures_trend"
    assert cfg.account_for_strategy("unknown_strategy") == "main"
    assert cfg.routing.balance_rules.min_main_balance == Decimal("100000")
    assert cfg.routing.rebalance.hour_minute() == (0, 0)
    assert cfg.exchanges.exchanges["bybit"].library == "ccxt"
    assert cfg.exchanges.exchanges["binance"].budget("sub_market_making").orders_per_10s == 50
    assert cfg.exchanges.exchanges["binance"].budget("main").spot_weight_per_minute == 1200
    assert cfg.vault_path("binance", "sub_market_making", "spot") == "exchanges/binance_spot_sub_mm"


def test_risk_overrides_apply_on_top_of_defaults():
    risk = load_config(env={}).risk
    mm = risk.limits_for("binance", "sub_market_making")
    assert mm.max_open_orders == 400 and mm.order_burst == 200
    assert mm.max_order_notional_usdt == risk.defaults.max_order_notional_usdt
    assert risk.limits_for("bybit", "main") == risk.defaults
    assert risk.global_limits.trading_state == "active"


def test_malformed_yaml_names_file_and_line(cfg_dir):
    (cfg_dir / "strategies.yaml").write_text("strategies:\n  arbitrage: {exchange: binance\n")
    [msg] = problems(cfg_dir)
    assert msg.startswith("strategies.yaml: line 3 column 1: malformed YAML")


def test_duplicate_yaml_key_is_an_error(cfg_dir):
    edit(cfg_dir / "stream.yaml", "  health_port: 8780\n", "  health_port: 8780\n  health_port: 8790\n")
    [msg] = problems(cfg_dir)
    assert msg == (
        "stream.yaml: daemon.health_port (line 6 column 3): duplicate key 'health_port' (first at line 5 column 3)"
    )


def test_unknown_and_renamed_keys(cfg_dir):
    edit(cfg_dir / "accounts.yaml", "max_balance_usdt: 10000}", "max_balance_usdt: 10000, colour: red}")
    edit(cfg_dir / "accounts.yaml", "api_key_vault_path: binance_main,", "api_key_path: binance_main,")
    msgs = problems(cfg_dir)
    assert "accounts.yaml: accounts.binance.sub_spot_arb.colour: unknown key" in msgs
    assert "accounts.yaml: accounts.binance.main.api_key_path: unknown key (renamed to `api_key_vault_path`)" in msgs
    assert "accounts.yaml: accounts.binance.main.api_key_vault_path: required key is missing" in msgs


def test_wrong_types_and_negative_limits(cfg_dir):
    edit(cfg_dir / "risk.yaml", "max_open_orders: 200", "max_open_orders: lots")
    edit(cfg_dir / "risk.yaml", "max_daily_loss_usdt: 10000\n", "max_daily_loss_usdt: -1\n")
    edit(cfg_dir / "stream.yaml", "health_port: 8780", "health_port: 70000")
    msgs = problems(cfg_dir)
    assert any(m.startswith("risk.yaml: defaults.max_open_orders: Input should be a valid integer") for m in msgs)
    assert any(
        m.startswith("risk.yaml: defaults.max_daily_loss_usdt: Input should be greater than 0") and "(got -1)" in m
        for m in msgs
    )
    assert any(
        m.startswith("stream.yaml: daemon.health_port: Input should be less than or equal to 65535") for m in msgs
    )


def test_dangling_references(cfg_dir):
    edit(
        cfg_dir / "accounts.yaml",
        "parent: main, api_key_vault_path: binance_sub_spot_arb",
        "parent: mian, api_key_vault_path: binance_sub_spot_arb",
    )
    edit(cfg_dir / "accounts.yaml", "market_making: sub_market_making,", "market_making: sub_gone,")
    edit(cfg_dir / "risk.yaml", "    sub_market_making: {max_open_orders", "    sub_unknown: {max_open_orders")
    msgs = problems(cfg_dir)
    assert any(
        m.startswith("accounts.yaml: accounts.binance.sub_spot_arb.parent: 'mian' is not an account of binance")
        for m in msgs
    )
    assert any(
        m.startswith("accounts.yaml: account_routing.strategies.market_making: 'sub_gone' is not a configured account")
        for m in msgs
    )
    assert any(
        m.startswith("risk.yaml: accounts.binance.sub_unknown: 'sub_unknown' is not an account of binance")
        for m in msgs
    )


def test_routed_strategy_must_exist_and_trade_an_enabled_market(cfg_dir):
    edit(
        cfg_dir / "strategies.yaml",
        "  trend_following:\n    exchange: binance\n    market: usdm",
        "  trend_following:\n    exchange: binance\n    market: spot",
    )
    edit(
        cfg_dir / "strategies.yaml",
        "symbols: [BTC/USDT:USDT]\n    params: {fast",
        "symbols: [BTC/USDT]\n    params: {fast",
    )
    edit(cfg_dir / "accounts.yaml", "basis: sub_futures_basis}", "basis: sub_futures_basis, scalping: main}")
    msgs = problems(cfg_dir)
    assert (
        "strategies.yaml: strategies.trend_following.market: spot is not enabled on its account 'sub_futures_trend'"
    ) in msgs
    assert any(
        m.startswith("accounts.yaml: account_routing.strategies.scalping: 'scalping' is not defined in strategies.yaml")
        for m in msgs
    )


def test_futures_settings_only_on_futures_accounts_and_withdraw_only_on_main(cfg_dir):
    edit(
        cfg_dir / "accounts.yaml",
        "strategy: arbitrage, max_balance_usdt: 10000}",
        "strategy: arbitrage, max_balance_usdt: 10000, max_leverage: 3, withdraw_enabled: true}",
    )
    msgs = problems(cfg_dir)
    assert (
        "accounts.yaml: accounts.binance.sub_spot_arb.max_leverage: futures setting on an account with "
        "futures_enabled: false"
    ) in msgs
    assert (
        "accounts.yaml: accounts.binance.sub_spot_arb.withdraw_enabled: withdrawal permission only on the main account"
    ) in msgs


def test_symbols_must_match_the_market(cfg_dir):
    edit(cfg_dir / "strategies.yaml", "symbols: [BTC/USDT]", "symbols: [BTCUSDT, ETH/USDT]")
    [msg] = problems(cfg_dir)
    assert msg.startswith("strategies.yaml: strategies.market_making: 'BTCUSDT' is not a spot symbol like BTC/USDT")


def test_legs_name_their_problems(cfg_dir):
    edit(cfg_dir / "strategies.yaml", "- {market: usdm, symbol: BTC/USDT:USDT}", "- {market: usdm, symbol: BTC/USDT}")
    msgs = problems(cfg_dir)
    assert any(m.startswith("strategies.yaml: strategies.basis.legs.1: ") and "not a usdm symbol" in m for m in msgs), (
        msgs
    )


def test_legs_accounts_and_markets_are_checked(cfg_dir):
    edit(cfg_dir / "strategies.yaml", "{exchange: bybit, account: main,", "{exchange: bybit, account: nobody,")
    edit(
        cfg_dir / "accounts.yaml",
        "api_key_vault_path: binance_sub_futures_basis, spot_enabled: true",
        "api_key_vault_path: binance_sub_futures_basis, spot_enabled: false",
    )
    msgs = problems(cfg_dir)
    assert (
        "strategies.yaml: strategies.arbitrage.legs[1]: bound to account 'nobody', which is not an account of bybit"
        in msgs
    )
    assert (
        "strategies.yaml: strategies.basis.legs[0].market: spot is not enabled on its account 'sub_futures_basis'"
        in msgs
    )


def test_symbols_or_legs_not_both(cfg_dir):
    edit(
        cfg_dir / "strategies.yaml",
        "    params: {entry_basis_bps: 30",
        "    symbols: [BTC/USDT:USDT]\n    params: {entry_basis_bps: 30",
    )
    [msg] = problems(cfg_dir)
    assert msg.startswith("strategies.yaml: strategies.basis: ") and "either `symbols`" in msg


def test_cores_must_exist_and_ports_must_differ(cfg_dir):
    edit(cfg_dir / "stream.yaml", "cpu_cores: [1]", "cpu_cores: [4096]")
    edit(cfg_dir / "stream.yaml", "prefect: {port: 4200}", "prefect: {port: 4222}")
    msgs = problems(cfg_dir)
    assert any(m.startswith("stream.yaml: daemon.cpu_cores: core(s) [4096] do not exist: this machine") for m in msgs)
    assert "stream.yaml: services.prefect.port: port 4222 is also used by services.nats.port" in msgs


def test_missing_file_and_folder(cfg_dir, tmp_path):
    (cfg_dir / "risk.yaml").unlink()
    assert problems(cfg_dir) == [f"risk.yaml: (top level): file not found: {cfg_dir / 'risk.yaml'}"]
    assert problems(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: (top level): configuration folder does not exist"
    ]


def test_environment_overrides_endpoints_and_secret_paths(cfg_dir):
    env = {
        "OMS_BINANCE_VENUE": "live",
        "OMS_BINANCE_SPOT_REST_URL": "https://api1.binance.com",
        "OMS_BINANCE_SUB_MARKET_MAKING_VAULT_PATH": "binance_mm_v2",
        "OMS_NATS_PORT": "4300",
        "OMS_DATA_DIR": "/srv/oms",
    }
    cfg = load_config(cfg_dir, env=env)
    binance = cfg.exchanges.exchanges["binance"]
    assert binance.venue == "live" and binance.markets["spot"].live.rest_url == "https://api1.binance.com"
    assert cfg.vault_path("binance", "sub_market_making", "spot") == "exchanges/binance_spot_mm_v2"
    assert cfg.stream.services.nats.port == 4300 and str(cfg.data_dir()) == "/srv/oms"
    msgs = problems(cfg_dir, env={"OMS_BINANCE_VENUE": "moon"})
    assert msgs == [
        "exchanges.yaml: exchanges.binance.venue: Input should be 'local' or 'live' (got 'moon') "
        "(set by environment variable OMS_BINANCE_VENUE)"
    ]


def run_oms(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OMS, *args], capture_output=True, text=True, timeout=60)


def test_cli_config_check_ok_prints_one_line_per_account():
    res = run_oms("config", "check")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("ok: ")
    assert len(lines) == 1 + 6
    assert any(
        line.strip().startswith(
            "binance/sub_futures_trend: sub, markets usdm, keys secret/exchanges/binance_usdm_sub_futures_trend"
        )
        for line in lines
    )


def test_cli_config_check_lists_every_problem_without_traceback(cfg_dir):
    edit(cfg_dir / "risk.yaml", "max_open_orders: 200", "max_open_orders: -3")
    edit(
        cfg_dir / "accounts.yaml",
        "parent: main, api_key_vault_path: binance_sub_mm",
        "parent: nobody, api_key_vault_path: binance_sub_mm",
    )
    res = run_oms("config", "check", str(cfg_dir))
    assert res.returncode == 1
    assert "Traceback" not in res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1] == "2 problem(s) found"
    assert lines[0].startswith("accounts.yaml: accounts.binance.sub_market_making.parent: 'nobody'")
    assert lines[1].startswith("risk.yaml: defaults.max_open_orders: Input should be greater than or equal to 0")


def test_a_working_level_above_its_cap_is_a_problem(cfg_dir):
    edit(cfg_dir / "accounts.yaml", "max_balance_usdt: 10000}", "max_balance_usdt: 10000, working_balance_usdt: 20000}")
    edit(cfg_dir / "accounts.yaml", "sub_working_balance: 5000", "sub_working_balance: 60000")
    found = problems(cfg_dir)
    assert (
        "accounts.yaml: accounts.binance.sub_spot_arb.working_balance_usdt: working level 20000 of "
        "binance/sub_spot_arb is above its cap 10000 (rebalance would sweep it)"
    ) in found
    assert any(p.startswith("accounts.yaml: account_routing.balance_rules.sub_working_balance: working level 60000 of")
               for p in found)  # fmt: skip


def test_cash_assets_default_to_usdt_and_a_coin_stands_alone(cfg_dir):
    cfg = load_config(env={})
    assert cfg.account("binance", "main").cash_assets == ("USDT",)
    assert cfg.account("binance", "main").cash_money_decimals() == 8
    accounts = cfg_dir / "accounts.yaml"
    edit(accounts, "strategy: arbitrage,", "strategy: arbitrage, cash_assets: [BTC],")
    btc = load_config(cfg_dir, env={}).account("binance", "sub_spot_arb")
    assert btc.cash_assets == ("BTC",) and btc.cash_money_decimals() == 12
    edit(accounts, "arbitrage, cash_assets: [BTC]", "arbitrage, cash_assets: [BTC, USDT]")
    edit(accounts, "strategy: market_making}", "strategy: market_making, cash_assets: [usdt]}")
    edit(accounts, "withdraw_enabled: true}", "withdraw_enabled: true, cash_assets: []}")
    got = problems(cfg_dir)
    assert (
        "accounts.yaml: accounts.binance.sub_spot_arb.cash_assets: BTC must be the account's only cash asset: a coin "
        "cash is the coin held valued at its USDT rate (stream.coin_cash), it is not added to USDT at par"
    ) in got
    assert any(p.startswith("accounts.yaml: accounts.binance.sub_market_making.cash_assets.0: String should match")
               for p in got), got  # fmt: skip
    assert "accounts.yaml: accounts.binance.main.cash_assets: name at least one asset (the default is [USDT])" in got
