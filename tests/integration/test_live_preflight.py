"""`oms up --live` refuses to start on a missing risk limit, a missing Vault or a withdrawal-capable sub key.

The local exchange stands in for Binance (the live endpoints pointed at it with OMS_BINANCE_SPOT_REST_URL)
and the session's OpenBao for the real Vault; the keys are real keys created on the local exchange.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from localex.server.state import ServerConfig
from oms.cli.main import main as oms_main
from oms.config import load_config
from oms.keys.factory import open_store
from oms.services import free_port
from oms.services.live import REQUIRED_LIMITS, preflight, risk_problems
from tests.harness.platform import free_ports
from tests.localex.conftest import start_server

ROOT = Path(__file__).resolve().parents[2]
OMS = str(Path(sys.executable).parent / "oms")


def _configs(tmp_path: Path, risk_accounts: str) -> Path:
    d = tmp_path / "configs"
    d.mkdir()
    for name in ("exchanges.yaml", "stream.yaml"):
        (d / name).write_text((ROOT / "configs" / name).read_text())
    (d / "exchanges.yaml").write_text(
        textwrap.dedent(
            """
            exchanges:
              binance:
                library: python-binance
                venue: local
                markets:
                  spot:
                    live: {rest_url: "https://api.binance.com", ws_url: "wss://stream.binance.com:9443"}
            """
        )
    )
    (d / "accounts.yaml").write_text(
        textwrap.dedent(
            """
            accounts:
              binance:
                main:    {type: main, api_key_vault_path: binance_main, withdraw_enabled: true}
                sub_arb: {type: sub, parent: main, api_key_vault_path: binance_sub_arb, strategy: arb}
            account_routing:
              default: main
              strategies: {arb: sub_arb}
              balance_rules: {min_main_balance: 1000, max_sub_balance: 500}
            """
        )
    )
    risk = (ROOT / "configs" / "risk.yaml").read_text().split("accounts:")[0]
    (d / "risk.yaml").write_text(risk + "accounts:\n  binance:\n" + textwrap.indent(risk_accounts, "    "))
    (d / "strategies.yaml").write_text(
        "strategies:\n  arb: {kind: arbitrage, exchange: binance, market: spot, symbols: ['BTC/USDT']}\n"
    )
    return d


EXPLICIT = "\n".join(f"{acct}: {{{', '.join(f'{f}: 1000' for f in REQUIRED_LIMITS)}}}" for acct in ("main", "sub_arb"))


def test_the_shipped_configs_would_be_refused_for_missing_per_account_limits():
    problems = risk_problems(load_config())
    assert any("accounts.bybit.main" in p and "max_daily_loss_usdt" in p for p in problems)
    assert all("risk.yaml" in p for p in problems)


@pytest.fixture(scope="module")
def exchange():
    yield from start_server(ServerConfig(port=free_port(), replay=False))


@pytest.fixture
def live(tmp_path, exchange, openbao, monkeypatch):
    for var in ("OMS_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR", "OMS_VAULT_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    env = {
        **os.environ,
        "OMS_DATA_DIR": str(tmp_path / "data"),
        "OMS_BINANCE_SPOT_REST_URL": exchange.url,
        "VAULT_ADDR": openbao.address,
        "VAULT_TOKEN": openbao.root_token,
        "OMS_VAULT_AUTH": "token",
    }
    return env


def _put_keys(configs: Path, env: dict, exchange, sub_permissions: list[str]) -> None:
    cfg = load_config(configs, env={**env, "OMS_BINANCE_VENUE": "live"})
    store = open_store(cfg, "admin", env=env, cache=False)
    main_id, main_key, main_secret = exchange.new_account(permissions=["SPOT", "TRANSFER", "WITHDRAW"])
    _, sub_key, sub_secret = exchange.new_account(permissions=sub_permissions, parent=main_id)
    store.put("binance", "spot", "main", main_key, main_secret, ["spot", "transfer", "withdraw"])
    # Vault's record says "spot" only: the exchange's own report is what catches a wrong record
    store.put("binance", "spot", "sub_arb", sub_key, sub_secret, ["spot"])


def test_a_withdrawal_capable_sub_key_is_refused_as_the_exchange_reports_it(tmp_path, live, exchange):
    configs = _configs(tmp_path, EXPLICIT)
    _put_keys(configs, live, exchange, ["SPOT", "WITHDRAW"])
    result = preflight(configs, live)
    assert not result.ok and result.checked_keys == 2
    (problem,) = result.problems
    assert "binance/sub_arb/spot" in problem and "enableWithdrawals" in problem and "oms keys rotate" in problem


def test_live_starts_only_when_every_check_passes(tmp_path, live, exchange, monkeypatch, capsys):
    configs = _configs(tmp_path, EXPLICIT)
    _put_keys(configs, live, exchange, ["SPOT"])
    result = preflight(configs, live)
    assert result.ok, result.problems
    for key, value in live.items():
        monkeypatch.setenv(key, value)
    assert oms_main(["up", "--live", "--check", "--config", str(configs)]) == 0
    assert "live preflight passed: 2 keys" in capsys.readouterr().out


def test_missing_limits_and_missing_vault_are_each_named(tmp_path, live, monkeypatch, capsys):
    configs = _configs(tmp_path, "main: {max_order_notional_usdt: 1000}\n")
    for key, value in live.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VAULT_ADDR")
    assert oms_main(["up", "--live", "--check", "--config", str(configs)]) == 1
    err = capsys.readouterr().err
    assert "accounts.binance.main: no explicit max_position_notional_usdt, max_daily_loss_usdt" in err
    assert "accounts.binance.sub_arb: no explicit max_order_notional_usdt" in err
    assert "set VAULT_ADDR" in err
    assert "refusing to start live" in err


def test_live_start_runs_the_daemon_on_the_live_endpoints_with_the_vaults_keys(tmp_path, live, exchange):
    """After a passed preflight `oms up --live` starts nats, Prefect, the daemon and the flow runner (no OpenBao,
    no local exchange of its own); the daemon trades both accounts on the "live" endpoints (the local exchange
    standing in for Binance) with the keys of "your Vault"."""
    configs = _configs(tmp_path, EXPLICIT)
    (configs / "strategies.yaml").write_text(
        "strategies:\n  arb: {kind: market_making, exchange: binance, market: spot, symbols: ['BTC/USDT'],"
        " bar_seconds: 5}\n"
    )
    made = free_ports(configs, tmp_path / "data")
    _put_keys(configs, live, exchange, ["SPOT"])
    ws = "ws://" + exchange.url.split("://", 1)[1]
    env = {
        **live,
        "OMS_BINANCE_SPOT_WS_URL": ws,
        "OMS_BINANCE_SPOT_WS_API_URL": ws + "/ws-api/v3",
        "COLUMNS": "200",
    }
    env.pop("OMS_DATA_DIR", None)
    up = subprocess.run([OMS, "up", "--live", "--config", str(configs)], capture_output=True, text=True, env=env,
                        timeout=900, cwd=ROOT)  # fmt: skip
    try:
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        assert "live preflight passed: 2 keys" in up.stdout and "LIVE:" in up.stdout
        started = {p.stem for p in (made.data_dir / "run").glob("*.json")}
        assert started == {"nats", "prefect", "stream", "flows"}  # your Vault and the real exchange: not ours
        with urllib.request.urlopen(made.url("health", "/health"), timeout=10) as resp:
            doc = json.loads(resp.read())
        assert {a: v["trading"] for a, v in doc["accounts"].items()} == {"binance/main": True, "binance/sub_arb": True}
    finally:
        down = subprocess.run([OMS, "down", "--config", str(configs)], capture_output=True, text=True, env=env,
                              timeout=300, cwd=ROOT)  # fmt: skip
        assert down.returncode == 0, down.stderr


def test_a_main_key_the_exchange_refuses_is_named_at_load_time(tmp_path, live, exchange):
    """The main account's key gets no permission read (withdrawal is allowed there) but one signed read."""
    configs = _configs(tmp_path, EXPLICIT)
    _put_keys(configs, live, exchange, ["SPOT"])
    cfg = load_config(configs, env={**live, "OMS_BINANCE_VENUE": "live"})
    main_key = open_store(cfg, "admin", env=live, cache=False).refresh("binance", "spot", "main")
    exchange.admin("DELETE", f"/admin/v1/keys/{main_key.api_key}")
    result = preflight(configs, live)
    (problem,) = result.problems
    assert problem.startswith("binance/main/spot: the exchange refuses the key") and main_key.fingerprint in problem
    assert "HTTP 401" in problem and main_key.secret not in problem
