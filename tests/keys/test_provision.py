"""`provision_local`: every configured account on the local exchange, funded, with a working key in Vault."""

from __future__ import annotations

import pytest

from localex.server.state import ServerConfig
from oms.keys.provision import provision_local, venue_account_id, venue_email
from oms.keys.venue import api_restrictions, revoke_key, signed_read
from oms.services import free_port
from tests.localex.conftest import start_server


@pytest.fixture(scope="module")
def exchange():
    yield from start_server(ServerConfig(port=free_port(), replay=False))


def _expected(cfg) -> set[str]:
    return {f"{ex}/{name}/{m}" for ex, accts in cfg.accounts.items() for name, a in accts.items() for m in a.markets()}


def test_every_account_gets_a_funded_account_and_a_working_key(vault, exchange):
    cfg = vault.config()
    store = vault.store("admin", cache=False)
    first = provision_local(cfg, exchange.url, exchange.admin_token, store)
    expected = _expected(cfg)
    assert set(first.keys_created) == expected and not first.keys_kept
    assert len(first.accounts_created) == sum(len(a) for a in cfg.accounts.values())
    for where in expected:
        ex, name, market = where.split("/")
        creds = store.get(ex, market, name)
        signed_read(exchange.url, creds)  # the key works on the venue
        assert creds.venue_account == venue_email(ex, name)
        assert ("withdraw" in creds.permissions) == (cfg.accounts[ex][name].type == "main")
    sub = store.get("binance", "spot", "sub_spot_arb")
    assert api_restrictions(exchange.url, sub)["enableWithdrawals"] is False
    balances = exchange.admin("GET", f"/admin/v1/accounts/{venue_account_id('binance', 'sub_spot_arb')}/balances")
    assert {"asset": "USDT", "free": "100000", "locked": "0"} in [
        {**b, "free": b["free"].rstrip("0").rstrip("."), "locked": b["locked"].rstrip("0").rstrip(".") or "0"}
        for b in balances
    ]

    again = provision_local(cfg, exchange.url, exchange.admin_token, store)
    assert set(again.keys_kept) == expected and not again.keys_created and not again.accounts_created

    old = store.get("binance", "usdm", "sub_futures_trend")
    revoke_key(exchange.url, old.api_key, exchange.admin_token)  # e.g. the exchange lost or revoked it
    third = provision_local(cfg, exchange.url, exchange.admin_token, store)
    assert third.keys_created == ["binance/sub_futures_trend/usdm"]
    new = store.refresh("binance", "usdm", "sub_futures_trend")
    assert new.version == old.version + 1 and new.api_key != old.api_key
    signed_read(exchange.url, new)
