"""The demo-keys-file and environment key providers, the first against a real local exchange's file."""

from __future__ import annotations

import json

import pytest

from localex.clients import binance_sync
from localex.server.state import ServerConfig
from oms.keys import DemoKeysFile, EnvKeys, KeyNotFound, KeyProvider, KeyStoreError
from tests.localex.conftest import free_port, start_server


def test_demo_keys_file_gives_working_keys(tmp_path_factory):
    data = tmp_path_factory.mktemp("localex")
    for server in start_server(ServerConfig(port=free_port(), data_dir=str(data), replay=False)):
        keys = DemoKeysFile(data / "localex-demo-keys.json", accounts={"main": "demo_main"})
        assert isinstance(keys, KeyProvider)
        main = keys.get("binance", "spot", "main")
        assert (main.account, main.market) == ("main", "spot") and main.can_withdraw
        sub = keys.get("binance", "usdm", "sub_futures")  # found as demo_sub_futures
        assert not sub.can_withdraw and "futures" in sub.permissions and sub.secret not in repr(sub)
        assert keys.email("sub_spot") == "demo-sub-spot@localex.invalid"
        assert keys.email("nobody") is None
        # the key signs real requests
        account = binance_sync(server.url, main.api_key, main.secret).get_account()
        assert any(b["asset"] == "USDT" for b in account["balances"])
        with pytest.raises(KeyNotFound, match=r"no demo key for binance/nobody \(spot\) in .*demo_main"):
            keys.get("binance", "spot", "nobody")


def test_demo_keys_file_errors_and_reload(tmp_path):
    path = tmp_path / "localex-demo-keys.json"
    keys = DemoKeysFile(path)
    with pytest.raises(KeyNotFound, match="does not exist"):
        keys.get("binance", "spot", "main")
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="unreadable"):
        keys.get("binance", "spot", "main")
    path.write_text(json.dumps({"keys": [{"accountId": "main", "apiKey": "k1", "secret": "s1"}]}))
    assert keys.get("binance", "spot", "main").api_key == "k1"
    path.write_text(json.dumps({"keys": [{"accountId": "main", "apiKey": "k2-longer", "secret": "s2"}]}))
    assert keys.get("binance", "spot", "main").api_key == "k2-longer"
    path.write_text(json.dumps({"keys": [{"accountId": "main", "apiKey": "k3"}]}))
    with pytest.raises(KeyStoreError, match="lacks 'secret'"):
        keys.get("binance", "spot", "main")


def test_env_keys():
    env = {
        "OMS_KEY_BINANCE_USDM_SUB_MM_API_KEY": "ku",
        "OMS_KEY_BINANCE_USDM_SUB_MM_SECRET": "su",
        "OMS_KEY_BINANCE_SUB_MM_API_KEY": "k",
        "OMS_KEY_BINANCE_SUB_MM_SECRET": "s",
        "OMS_KEY_BINANCE_HALF_API_KEY": "k",
    }
    keys = EnvKeys(env)
    assert isinstance(keys, KeyProvider)
    assert keys.get("binance", "usdm", "sub_mm").api_key == "ku"
    assert keys.get("binance", "spot", "sub_mm").api_key == "k"
    with pytest.raises(KeyStoreError, match="OMS_KEY_BINANCE_HALF_SECRET is not set"):
        keys.get("binance", "spot", "half")
    with pytest.raises(KeyNotFound, match="set OMS_KEY_BINANCE_SPOT_MAIN_API_KEY and _SECRET"):
        keys.get("binance", "spot", "main")
