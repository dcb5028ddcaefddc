"""The USD-M settings targets from configs/ (no servers), and the settings commands read off the wire."""

from __future__ import annotations

import shutil

import pytest
import yaml

from oms.config import load_config
from oms.config.loader import DEFAULT_CONFIG_DIR
from oms.model import MarginType, PositionMode
from oms.model.commands import CommandError, parse_request
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode
from stream.futures_settings import FuturesTarget, targets_from_config
from stream.wiring import plan_from_config

PERP = "BTC/USDT:USDT"


def test_targets_of_the_shipped_configs():
    cfg = load_config(env={})
    targets = targets_from_config(cfg, plan_from_config(cfg))
    assert targets["binance/sub_futures_trend"] == FuturesTarget(PositionMode.ONE_WAY, MarginType.ISOLATED, 10, (PERP,))
    assert targets["binance/sub_futures_basis"] == FuturesTarget(PositionMode.HEDGE, MarginType.CROSS, 3, (PERP,))
    # spot-only accounts, and bybit/main (max_leverage but no USD-M symbol traded, no position mode): nothing to do
    assert set(targets) == {"binance/sub_futures_trend", "binance/sub_futures_basis"}
    assert targets_from_config(cfg, plan_from_config(cfg, ["binance/sub_market_making"])) == {}


def test_leverage_is_capped_by_risk_yaml_and_rounded_down(tmp_path):
    cfg_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg_dir)
    risk = yaml.safe_load((cfg_dir / "risk.yaml").read_text())
    risk["accounts"]["binance"]["sub_futures_trend"]["max_leverage"] = 2.5
    (cfg_dir / "risk.yaml").write_text(yaml.safe_dump(risk))
    accounts = yaml.safe_load((cfg_dir / "accounts.yaml").read_text())
    del accounts["accounts"]["binance"]["sub_futures_basis"]["margin_type"]
    del accounts["accounts"]["binance"]["sub_futures_basis"]["max_leverage"]
    (cfg_dir / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    cfg = load_config(cfg_dir, env={})
    targets = targets_from_config(cfg, plan_from_config(cfg))
    assert targets["binance/sub_futures_trend"].leverage == 2
    basis = targets["binance/sub_futures_basis"]  # only the position mode left to enforce
    assert (basis.position_mode, basis.margin_type, basis.leverage) == (PositionMode.HEDGE, None, None)


def test_settings_commands_parse_and_bad_ones_are_refused_with_a_reason():
    acct = "binance/sub_futures_trend"
    data = (
        b'{"request_id": "s1", "commands": ['
        b'{"type": "set_leverage", "account": "binance/sub_futures_trend", "symbol": "BTC/USDT:USDT", "leverage": 5},'
        b'{"type": "set_margin_type", "account": "binance/sub_futures_trend", "symbol": "BTC/USDT:USDT",'
        b' "margin_type": "cross"},'
        b'{"type": "set_position_mode", "account": "binance/sub_futures_trend", "position_mode": "hedge"}]}'
    )
    req = parse_request(data, acct)
    assert req.commands == (
        SetLeverage(account=acct, symbol=PERP, leverage=5),
        SetMarginType(account=acct, symbol=PERP, margin_type=MarginType.CROSS),
        SetPositionMode(account=acct, position_mode=PositionMode.HEDGE),
    )
    bad = b'{"commands": [{"type": "set_leverage", "account": "binance/sub_futures_trend", "symbol": "BTC/USDT:USDT", '
    for tail, where in ((b'"leverage": 126}]}', "leverage"), (b'"leverage": 5, "extra": 1}]}', "extra")):
        with pytest.raises(CommandError) as e:
            parse_request(bad + tail, acct)
        assert e.value.code == "malformed" and where in str(e.value)
    with pytest.raises(CommandError) as e:
        parse_request(bad + b'"leverage": 5}]}', "binance/other")
    assert e.value.code == "account"
