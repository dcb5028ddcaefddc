"""The key store against a real OpenBao set up by `oms keys init`: least privilege, audit, CLI, guards, cache."""

from __future__ import annotations

import json
import logging
import os
import stat

import hvac
import hvac.exceptions
import pytest

from oms.keys.provider import KeyRevoked, KeyStoreError, WithdrawalPermissionRefused
from oms.keys.scan import scan_tree
from oms.keys.store import VaultUnavailable

MAIN_SECRET = "MainSecret-0123456789-abcdefghij"
ARB_SECRET = "ArbSecret-0123456789-klmnopqrst"
MM_SECRET = "MmSecret-0123456789-uvwxyzABCD"


@pytest.fixture(scope="module")
def keys(vault):
    admin = vault.store("admin", cache=False)
    admin.put("binance", "spot", "main", "MAINKEY0000000001", MAIN_SECRET, ["spot", "withdraw"], venue_account="m1")
    admin.put("binance", "spot", "sub_spot_arb", "ARBKEY00000000001", ARB_SECRET, ["spot"])
    admin.put("binance", "spot", "sub_market_making", "MMKEY000000000001", MM_SECRET, ["spot"])
    return admin


def test_init_revokes_the_root_token_and_writes_role_files(vault):
    doc = json.loads(vault.service.init_file.read_text())
    assert "root_token" not in doc and doc["root_revoked"] is True and "unseal_key" in doc
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.service.address, token=vault.root_token).auth.token.lookup_self()
    for component in ("daemon", "rotation", "balances", "admin"):
        path = vault.data_dir / "keys" / "approle" / f"{component}.json"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert {"role_id", "secret_id"} <= json.loads(path.read_text()).keys()
    assert vault.service.health() == (True, "unsealed, active")  # the service's health no longer needs root


def test_init_again_without_root_says_how(vault, capsys):
    assert vault.oms("keys", "init") == 1
    assert "revoked" in capsys.readouterr().err


def test_daemon_reads_only_its_accounts_and_cannot_write(vault, keys):
    daemon = vault.store("daemon", cache=False)
    assert daemon.get("binance", "spot", "main").secret == MAIN_SECRET
    assert daemon.get("binance", "spot", "sub_spot_arb").version == 1
    with pytest.raises(KeyStoreError, match=r"permission denied: read secret/exchanges/binance_spot_sub_mm"):
        daemon.get("binance", "spot", "sub_market_making")
    with pytest.raises(KeyStoreError, match="permission denied: write secret/exchanges/binance_spot_main"):
        daemon.put("binance", "spot", "main", "NEWKEY00000000001", "x" * 20, ["spot"])
    assert keys.describe("binance", "spot", "main").version == 1  # nothing was written


def test_balances_role_sees_descriptions_but_no_secret(vault, keys):
    balances = vault.store("balances", cache=False)
    info = balances.describe("binance", "spot", "main")
    assert info.version == 1 and info.permissions == ("spot", "withdraw") and info.venue_account == "m1"
    with pytest.raises(KeyStoreError, match="permission denied: read secret/exchanges/binance_spot_main"):
        balances.refresh("binance", "spot", "main")


def test_wrong_approle_is_a_clear_error(vault, keys):
    env = {**os.environ, **vault.env, "OMS_VAULT_ROLE_ID": "not-a-role", "OMS_VAULT_SECRET_ID": "not-a-secret-id"}
    from oms.keys.factory import open_store

    store = open_store(vault.config(), "daemon", env=env, cache=False)
    with pytest.raises(KeyStoreError, match="AppRole login to .* refused"):
        store.get("binance", "spot", "main")


def test_cli_put_show_list_never_print_the_secret(vault, keys, capsys, monkeypatch):
    from oms.cli.common import console

    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setenv("NEW_MM_SECRET", "CliSecret-0123456789-abcdefghij")
    code = vault.oms(
        "keys", "put", "binance", "sub_market_making", "--api-key", "MMKEY000000000002",
        "--secret-env", "NEW_MM_SECRET", "--permissions", "spot,transfer",
    )  # fmt: skip
    assert code == 0
    assert vault.oms("keys", "show", "binance", "sub_market_making") == 0
    assert vault.oms("keys", "list") == 0
    out = capsys.readouterr()
    text = out.out + out.err
    for secret in ("CliSecret-0123456789-abcdefghij", MAIN_SECRET, ARB_SECRET, MM_SECRET):
        assert secret not in text
    info = keys.describe("binance", "spot", "sub_market_making")
    assert info.version == 2 and info.fingerprint in text and "spot,transfer" in text
    assert "binance main account main (spot) withdrawal permission: yes" in text
    assert vault.oms("keys", "put", "binance", "main", "--api-key", "K" * 16) == 1  # no secret given
    assert "never on the command line" in capsys.readouterr().err


def test_withdrawal_permission_refused_on_sub_accounts(vault, keys, capsys, monkeypatch):
    monkeypatch.setenv("S", "SubWithdraw-0123456789-abcdefgh")
    code = vault.oms(
        "keys", "put", "binance", "sub_spot_arb", "--api-key", "ARBKEY00000000002", "--secret-env", "S",
        "--permissions", "spot,withdraw",
    )  # fmt: skip
    assert code == 1 and "withdrawal permission" in capsys.readouterr().err
    # written behind the tool's back (as an admin could with `bao kv put`): refused when loaded
    keys._client.secrets.kv.v2.create_or_update_secret(
        "exchanges/binance_spot_sub_spot_arb",
        secret={"api_key": "ARBKEY00000000003", "api_secret": "SubWithdraw-0123456789-abcdefgh",
                "permissions": ["spot", "withdraw"]},
    )  # fmt: skip
    daemon = vault.store("daemon", cache=False)
    with pytest.raises(WithdrawalPermissionRefused, match="sub account binance/sub_spot_arb at secret/exchanges/"):
        daemon.refresh("binance", "spot", "sub_spot_arb")
    assert daemon.metrics.withdraw_refused == 1
    assert daemon.get("binance", "spot", "main").secret == MAIN_SECRET  # other accounts keep working
    keys.put("binance", "spot", "sub_spot_arb", "ARBKEY00000000001", ARB_SECRET, ["spot"])


def test_malformed_secret_names_account_and_path_and_others_keep_running(vault, keys):
    keys._client.secrets.kv.v2.create_or_update_secret(
        "exchanges/binance_spot_sub_mm", secret={"api_key": "MMKEY000000000009"}
    )
    daemon = vault.store("daemon", cache=False)
    failures = daemon.warm([("binance", "main"), ("binance", "sub_spot_arb")])
    assert failures == {}
    admin_view = vault.store("admin", cache=False)
    with pytest.raises(KeyStoreError, match=r"malformed key of binance/sub_market_making/spot at .* missing field"):
        admin_view.refresh("binance", "spot", "sub_market_making")
    assert admin_view.metrics.bad_secrets == 1
    keys.put("binance", "spot", "sub_market_making", "MMKEY000000000001", MM_SECRET, ["spot"])


def test_revoked_key_is_reported(vault, keys, capsys):
    keys.put("binance", "spot", "sub_spot_arb", "ARBKEY00000000004", "RevokeMe-0123456789-abcdefghij", ["spot"])
    assert vault.oms("keys", "revoke", "binance", "sub_spot_arb", "--vault-only") == 0
    daemon = vault.store("daemon", cache=False)
    with pytest.raises(KeyRevoked, match="binance/sub_spot_arb/spot at secret/exchanges/binance_spot_sub_spot_arb"):
        daemon.refresh("binance", "spot", "sub_spot_arb")
    assert "revoked" in capsys.readouterr().out
    keys.put("binance", "spot", "sub_spot_arb", "ARBKEY00000000001", ARB_SECRET, ["spot"])
    assert daemon.refresh("binance", "spot", "sub_spot_arb").secret == ARB_SECRET


def test_audit_log_is_on_and_never_holds_a_secret_in_clear(vault, keys):
    vault.store("daemon", cache=False).refresh("binance", "spot", "main")
    audit = vault.service.audit_file
    lines = audit.read_text().splitlines()
    assert stat.S_IMODE(os.stat(audit).st_mode) == 0o600
    assert any("secret/data/exchanges/binance_spot_main" in ln for ln in lines)
    reads = [json.loads(ln) for ln in lines if "binance_spot_main" in ln and '"response"' in ln]
    assert any(
        str(r["response"].get("data", {}).get("data", {}).get("api_secret", "")).startswith("hmac-") for r in reads
    )
    secrets = [MAIN_SECRET, ARB_SECRET, MM_SECRET, "CliSecret-0123456789-abcdefghij", "RevokeMe-0123456789-abcdefghij"]
    approle = [
        json.loads((vault.data_dir / "keys" / "approle" / f"{c}.json").read_text())["secret_id"]
        for c in ("daemon", "admin")
    ]
    assert scan_tree([audit], secrets + approle) == []


def test_restarting_reader_serves_from_the_encrypted_cache_while_vault_is_down(vault, keys, caplog):
    first = vault.store("daemon")
    assert first.get("binance", "spot", "main").secret == MAIN_SECRET
    cache_file = vault.data_dir / "keys" / "cache" / "daemon.cache"
    assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    assert scan_tree([vault.data_dir / "keys"], [MAIN_SECRET, ARB_SECRET]) == []
    vault.service.down()
    try:
        restarted = vault.store("daemon")  # a new process: nothing in memory, only the cache file
        with caplog.at_level(logging.WARNING, logger="oms.keys.store"):
            creds = restarted.get("binance", "spot", "main")
        assert creds.secret == MAIN_SECRET and creds.version == 1
        assert restarted.metrics.served_from_cache == 1 and restarted.metrics.degraded == 1
        assert restarted.get("binance", "spot", "main").secret == MAIN_SECRET
        assert restarted.metrics.vault_unreachable == 1  # no new attempt within retry_s
        assert 'oms_keys_degraded{component="daemon"} 1' in restarted.metrics.prometheus_text("daemon")
        assert any("unreachable or sealed" in r.getMessage() and "binance_spot_main" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
        with pytest.raises(VaultUnavailable, match="no cached key of binance/sub_market_making/spot"):
            restarted.get("binance", "spot", "sub_market_making")
    finally:
        vault.service.up()
    creds = restarted.refresh("binance", "spot", "main")
    assert creds.secret == MAIN_SECRET and restarted.metrics.degraded == 0
