"""The onboard-exchange flow end to end: a ccxt exchange onboarded against the local exchange (markets through
the ccxt connector, Vault paths in a real OpenBao, accounts opened and keys stored on the local venue, the
smoke test's order placed and cancelled there), the file merged into a config copy that `load_config` accepts;
and exchanges refused with every missing capability named."""

from __future__ import annotations

import shutil

import hvac
import pytest
import yaml

from oms.config import load_config
from tests.flows.conftest import ADMIN_TOKEN, PROJECT


@pytest.fixture
def onboard_env(venue, openbao, prefect_server, clean_runs, tmp_path, monkeypatch):
    env = {
        "OMS_LOCAL_EXCHANGE_PORT": venue.url.rsplit(":", 1)[1],
        "OMS_LOCALEX_ADMIN_TOKEN": ADMIN_TOKEN,
        "OMS_DATA_DIR": str(tmp_path / "data"),
        "OMS_VAULT_ADDR": openbao.address,
        "OMS_VAULT_AUTH": "token",
        "OMS_VAULT_TOKEN": openbao.root_token,
    }
    (tmp_path / "data").mkdir()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config_dir = tmp_path / "configs"
    shutil.copytree(PROJECT / "configs", config_dir)
    return config_dir


async def test_a_ccxt_exchange_is_onboarded_against_the_local_exchange(onboard_env, openbao, venue, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.onboard_exchange import onboard_exchange

    out = tmp_path / "onboarding"
    res = await onboard_exchange(ccxt_id="binanceus", markets=["spot"], accounts=["main", "sub_arb"],
                                 config_dir=str(onboard_env), out_dir=str(out))  # fmt: skip
    assert res["ready"] is True
    smoke = res["smoke_test"][0]
    assert smoke["ok"] and smoke["symbol"] == "BTC/USDT" and any(s.startswith("canceled") for s in smoke["steps"])
    assert res["symbols"]["spot"] >= 2
    assert res["vault_paths"] == ["secret/exchanges/binanceus_spot_main", "secret/exchanges/binanceus_spot_sub_arb"]

    doc = yaml.safe_load((out / "binanceus.yaml").read_text())
    assert doc["symbols"]["spot"]["BTC/USDT"] == "BTCUSDT"
    stanza = doc["exchanges"]["binanceus"]
    assert stanza["library"] == "ccxt" and stanza["ccxt_id"] == "binanceus"
    assert stanza["markets"]["spot"]["live"]["rest_url"] == "https://api.binance.us"
    assert stanza["rate_limits"]["default"]["spot_weight_per_minute"] == 1200  # ccxt: 50 ms per cost unit
    assert doc["accounts"]["binanceus"]["sub_arb"]["parent"] == "main"

    # the reviewable file merges into the configuration as it says, and the result passes every check
    merged = tmp_path / "merged"
    shutil.copytree(onboard_env, merged)
    for name, key in (("exchanges.yaml", "exchanges"), ("accounts.yaml", "accounts")):
        cfg_doc = yaml.safe_load((merged / name).read_text())
        cfg_doc[key].update(doc[key])
        (merged / name).write_text(yaml.safe_dump(cfg_doc))
    cfg = load_config(merged)
    assert cfg.exchanges.exchanges["binanceus"].ccxt_id == "binanceus"
    assert cfg.vault_path("binanceus", "main", "spot") == "exchanges/binanceus_spot_main"

    client = hvac.Client(url=openbao.address, token=openbao.root_token)
    listed = client.secrets.kv.v2.list_secrets(path="exchanges", mount_point="secret")["data"]["keys"]
    assert {"binanceus_spot_main", "binanceus_spot_sub_arb"} <= set(listed)
    key = client.secrets.kv.v2.read_secret_version(path="exchanges/binanceus_spot_main", mount_point="secret",
                                                   raise_on_deleted_version=True)  # fmt: skip
    venue_account = key["data"]["data"]["venue_account"]
    accounts = {a["accountId"]: a for a in venue.admin("GET", "/admin/v1/accounts")}
    assert venue_account in accounts and not accounts[venue_account]["isSub"]

    again = await onboard_exchange(ccxt_id="binanceus", markets=["spot"], accounts=["main", "sub_arb"],
                                   config_dir=str(onboard_env), out_dir=str(out))  # fmt: skip
    assert again["ready"] and len(venue.admin("GET", "/admin/v1/accounts")) == len(accounts)  # keys reused

    async with get_client() as c:
        keys = {a.key for a in await c.read_latest_artifacts()}
    assert "onboard-binanceus" in keys


@pytest.mark.parametrize(
    ("ccxt_id", "markets", "named"),
    [
        ("upbit", ["spot"], ["all: lacks", "fetchMyTrades (no)", "fetchTime (no)"]),
        ("binanceus", ["spot", "usdm"], ["usdm: lacks swap (no), fetchPositions (no), setLeverage (no)"]),
        ("nosuchexchange", ["spot"], ["has no exchange 'nosuchexchange'"]),
    ],
)
async def test_an_exchange_that_cannot_serve_the_platform_is_refused(onboard_env, tmp_path, ccxt_id, markets, named):
    from flows.onboard_exchange import OnboardRefused, onboard_exchange

    with pytest.raises(OnboardRefused) as err:
        await onboard_exchange(ccxt_id=ccxt_id, markets=markets, config_dir=str(onboard_env),
                               out_dir=str(tmp_path / "out"))  # fmt: skip
    for text in named:
        assert text in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written for a refused exchange
