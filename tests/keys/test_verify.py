"""Key verification (the rotation's signed read, the live preflight's load-time check) through the configured
library, against the local exchange: ccxt's fetch_balance on the ccxt connector's session, Binance's signed REST
read for python-binance; a refused key names the account, market and fingerprint, never the secret."""

from __future__ import annotations

import pytest

from oms.config import load_config
from oms.keys.provider import Credentials
from oms.keys.venue import VenueError
from oms.keys.verify import verify_key
from tests.venues.ccxt.conftest import ccxt_config, server  # noqa: F401  (fixtures)


def _creds(market: str, key: str, secret: str) -> Credentials:
    return Credentials("binance", market, "sub_spot_arb", key, secret, ("spot", "futures"))  # type: ignore[arg-type]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_working_key_verifies_through_ccxt(server, ccxt_config, market):  # noqa: F811
    _, key, secret = server.new_account(spot={"USDT": "100"}, futures={"USDT": "100"})
    what = verify_key(ccxt_config, _creds(market, key, secret), local_url=server.url)
    assert "ccxt binance fetch_balance" in what and f"sub_spot_arb/{market}" in what


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_revoked_or_wrong_key_is_refused_through_ccxt(server, ccxt_config, market):  # noqa: F811
    _, key, secret = server.new_account(spot={"USDT": "100"}, futures={"USDT": "100"})
    server.admin("DELETE", f"/admin/v1/keys/{key}")
    revoked = _creds(market, key, secret)
    with pytest.raises(VenueError, match=f"binance/sub_spot_arb/{market} with key {revoked.fingerprint} refused") as e:
        verify_key(ccxt_config, revoked, local_url=server.url)
    assert secret not in str(e.value) and "AuthenticationError" in str(e.value)
    _, key2, _ = server.new_account(spot={"USDT": "100"})
    with pytest.raises(VenueError, match="refused"):
        verify_key(ccxt_config, _creds(market, key2, "not-the-secret-0123456789"), local_url=server.url)


def test_python_binance_accounts_verify_with_a_signed_rest_read(server):  # noqa: F811
    cfg = load_config(env={})
    _, key, secret = server.new_account(spot={"USDT": "100"})
    assert "python-binance REST" in verify_key(cfg, _creds("spot", key, secret), local_url=server.url)
    server.admin("DELETE", f"/admin/v1/keys/{key}")
    with pytest.raises(VenueError, match="refused: HTTP 401"):
        verify_key(cfg, _creds("spot", key, secret), local_url=server.url)


def test_an_unknown_exchange_is_a_clear_error(ccxt_config):  # noqa: F811
    creds = Credentials("kraken", "spot", "main", "K", "S")
    with pytest.raises(VenueError, match="cannot verify the key of kraken/main/spot"):
        verify_key(ccxt_config, creds)


def test_the_live_preflight_proves_each_ccxt_key_with_a_signed_read(server, ccxt_config, openbao, tmp_path):  # noqa: F811
    """Load time: `oms up --live` reads every key from Vault and, for a ccxt exchange, signs a read with it. The
    verification runs against the local exchange (a live ccxt venue keeps ccxt's production URLs)."""
    from oms.keys.factory import open_store
    from oms.services.live import key_problems

    env = {"OMS_VAULT_ADDR": openbao.address, "OMS_VAULT_TOKEN": openbao.root_token, "OMS_VAULT_AUTH": "token",
           "OMS_DATA_DIR": str(tmp_path)}  # fmt: skip
    store = open_store(ccxt_config, "admin", env=env, cache=False)
    _, good_key, good_secret = server.new_account(spot={"USDT": "100"})
    _, bad_key, bad_secret = server.new_account(spot={"USDT": "100"})
    server.admin("DELETE", f"/admin/v1/keys/{bad_key}")
    store.put("binance", "spot", "sub_spot_arb", good_key, good_secret, ["spot"])
    store.put("binance", "spot", "sub_market_making", bad_key, bad_secret, ["spot"])
    checked: list[str] = []

    def on_the_local_exchange(cfg, creds) -> str:
        checked.append(f"{creds.account}/{creds.market}")
        return verify_key(ccxt_config, creds, local_url=server.url)

    result = key_problems(ccxt_config, env, verify=on_the_local_exchange)
    assert {"sub_spot_arb/spot", "sub_market_making/spot"} <= set(checked)
    refused = [p for p in result.problems if p.startswith("binance/sub_market_making/spot")]
    assert len(refused) == 1 and "the exchange refuses the key" in refused[0] and "AuthenticationError" in refused[0]
    assert not [p for p in result.problems if p.startswith("binance/sub_spot_arb/spot")]
    assert any(n.startswith("binance/sub_spot_arb/spot") and "the key works" in n for n in result.notes)
    assert bad_secret not in " ".join(result.problems)
