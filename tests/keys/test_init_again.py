"""`oms keys init` run again after the first run revoked the root token: a clear error naming what it needs, a
privileged token given on standard input or in an environment variable, or a root token generated for the run
from the unseal key with the oms-admin AppRole (OpenBao's authenticated sys/generate-root-token), revoked again."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from oms.keys.bootstrap import generate_root
from oms.keys.provider import KeyStoreError
from tests.keys.conftest import DAEMON_ACCOUNTS, Vault, start_vault


@pytest.fixture(scope="module")
def vault_and_breakglass(tmp_path_factory) -> Iterator[tuple[Vault, str]]:
    """A Vault after `oms keys init`, and an orphan root-policy token the operator kept before it (break glass)."""
    tmp = tmp_path_factory.mktemp("keys-init-again")
    holder: dict[str, str] = {}
    gen = start_vault(tmp, before_init=lambda client: holder.update(
        token=client.auth.token.create_orphan(policies=["root"], ttl="1h")["auth"]["client_token"]))  # fmt: skip
    vault = next(gen)
    try:
        yield vault, holder["token"]
    finally:
        gen.close()


def _init(vault: Vault, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    for k, v in vault.env.items():
        monkeypatch.setenv(k, v)
    code = vault.oms("keys", "init", *args)
    out, err = capsys.readouterr()
    return code, out, err


def _root_present(vault: Vault) -> bool:
    return "root_token" in json.loads(vault.service.init_file.read_text())


def test_init_again_without_a_token_says_what_it_needs(vault_and_breakglass, monkeypatch, capsys):
    vault, _ = vault_and_breakglass
    assert not _root_present(vault)
    code, _, err = _init(vault, monkeypatch, capsys)
    assert code != 0
    for needed in ("revoked the embedded OpenBao's root token", "--token-stdin", "--token-env", "VAULT_TOKEN",
                   "--generate-root", "bao operator generate-root", str(vault.service.init_file)):  # fmt: skip
        assert needed in err, (needed, err)


def test_init_again_with_a_token_that_is_not_privileged(vault_and_breakglass, monkeypatch, capsys):
    vault, _ = vault_and_breakglass
    store = vault.store("rotation", cache=False)
    store._login()  # the rotation AppRole's token: it may write keys, not policies
    monkeypatch.setenv("OMS_ROTATION_TOKEN", store._client.token)
    code, _, err = _init(vault, monkeypatch, capsys, "--token-env", "OMS_ROTATION_TOKEN")
    assert code != 0
    assert "not privileged enough" in err and "sys/policies/acl" in err and "token from OMS_ROTATION_TOKEN" in err
    assert store._client.token not in err


def test_init_again_with_a_privileged_token_on_stdin(vault_and_breakglass, monkeypatch, capsys):
    vault, breakglass = vault_and_breakglass
    before = json.loads(vault.service.init_file.read_text())
    monkeypatch.setattr("sys.stdin", io.StringIO(breakglass + "\n"))
    code, out, err = _init(vault, monkeypatch, capsys, "--token-stdin", "--keep-root")
    assert code == 0, err
    assert "role oms-daemon" in out and breakglass not in out + err
    admin = vault.store("admin", cache=False)  # the AppRole files written by this run work
    admin.put("binance", "spot", "main", "MAINKEYAGAIN00001", "MainSecretAgain-0123456789abcdef", ["spot"])
    assert admin.describe("binance", "spot", "main").version >= 1
    assert json.loads(vault.service.init_file.read_text()) == before


def test_init_again_generates_a_root_token_for_the_run_and_revokes_it(vault_and_breakglass, monkeypatch, capsys):
    vault, breakglass = vault_and_breakglass
    daemon_accounts = [a for acct in DAEMON_ACCOUNTS for a in ("--daemon-account", acct)]
    code, out, err = _init(vault, monkeypatch, capsys, "--generate-root", *daemon_accounts)
    assert code == 0, err
    assert "generated from the unseal key" in out and "root token: revoked" in out
    assert not _root_present(vault)
    # the daemon role still reads only its accounts after the re-run (policies rewritten, not widened)
    daemon = vault.store("daemon", cache=False)
    admin = vault.store("admin", cache=False)
    admin.put("binance", "spot", "sub_market_making", "MMKEYAGAIN0000001", "MMSecretAgain-0123456789abcdef", ["spot"])
    with pytest.raises(KeyStoreError, match="permission denied"):
        daemon.refresh("binance", "spot", "sub_market_making")
    # the generated root token was revoked: a fresh one (the same way) works, and revoking it leaves none behind
    admin._login()
    unseal = vault.service.credentials()["unseal_key"]
    root = generate_root(vault.service.address, admin._client.token, unseal)
    client = hvac.Client(url=vault.service.address, token=root)
    assert "root" in client.auth.token.lookup_self()["data"]["policies"]
    client.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.service.address, token=root).auth.token.lookup_self()
    hvac.Client(url=vault.service.address, token=breakglass).auth.token.revoke_self()


def test_generate_root_refuses_a_wrong_unseal_key_and_a_role_without_the_right(vault_and_breakglass):
    vault, _ = vault_and_breakglass
    admin = vault.store("admin", cache=False)
    admin._login()
    with pytest.raises(KeyStoreError, match="root token generation at .* (refused|failed)"):
        generate_root(vault.service.address, admin._client.token, "AAAA" + "x" * 40)
    # the failed attempt was cancelled: the next one (with the right key) is not blocked by it
    root = generate_root(vault.service.address, admin._client.token, vault.service.credentials()["unseal_key"])
    hvac.Client(url=vault.service.address, token=root).auth.token.revoke_self()
    daemon = vault.store("daemon", cache=False)
    daemon._login()
    with pytest.raises(KeyStoreError, match="may not use sys/generate-root-token"):
        generate_root(vault.service.address, daemon._client.token, vault.service.credentials()["unseal_key"])
