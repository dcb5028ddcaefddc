"""Token auth against the session's OpenBao, and a reader that keeps its keys while OpenBao is sealed."""

from __future__ import annotations

import time

import pytest

from oms.config import load_config
from oms.keys.cache import EncryptedKeyCache, load_cache_secret
from oms.keys.settings import AccountCatalog, VaultSettings
from oms.keys.store import VaultKeyStore, VaultUnavailable

SECRET = "SealedTestSecret-0123456789-abcd"


def _store(openbao, tmp_path, token: str) -> VaultKeyStore:
    env = {"OMS_VAULT_ADDR": openbao.address, "OMS_VAULT_TOKEN": token}
    settings = VaultSettings.from_env("daemon", tmp_path, "http://unused", env)
    assert settings.auth == "token" and token not in repr(settings)
    cache = EncryptedKeyCache(tmp_path / "daemon.cache", load_cache_secret(tmp_path / "cache.secret", {}), "daemon")
    return VaultKeyStore(settings, AccountCatalog.from_config(load_config(env={})), cache)


def _wait_active(service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not service.health()[0]:  # unsealed, raft leader elected, KV mounted
        assert time.monotonic() < deadline, "openbao did not become active after unsealing"
        time.sleep(0.1)


def test_reader_serves_cached_keys_while_sealed_and_recovers(openbao, tmp_path):
    root = openbao.client()
    writer = _store(openbao, tmp_path / "w", openbao.root_token)
    writer.put("binance", "usdm", "sub_futures_trend", "TRENDKEY000000001", SECRET, ["futures"])
    reader = _store(openbao, tmp_path / "r", openbao.root_token)
    assert reader.get("binance", "usdm", "sub_futures_trend").secret == SECRET
    root.sys.seal()
    try:
        restarted = _store(openbao, tmp_path / "r", openbao.root_token)  # same cache file, empty memory
        creds = restarted.get("binance", "usdm", "sub_futures_trend")
        assert creds.secret == SECRET and restarted.metrics.degraded == 1
        with pytest.raises(VaultUnavailable, match="binance/sub_futures_basis/spot"):
            restarted.get("binance", "spot", "sub_futures_basis")
    finally:
        root.sys.submit_unseal_key(openbao.service.credentials()["unseal_key"])
        _wait_active(openbao.service)
    assert restarted.refresh("binance", "usdm", "sub_futures_trend").version >= 1
    assert restarted.metrics.degraded == 0
