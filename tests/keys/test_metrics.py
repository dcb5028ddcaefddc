"""The key store's and the rotation listener's Prometheus series (``oms.keys.metrics``), rendered by
prometheus_client from a real store reading the session's OpenBao; never a secret or a fingerprint."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from oms.config import load_config
from oms.keys import EnvKeys
from oms.keys.metrics import KeyStoreCollector
from oms.keys.provider import KeyNotFound
from oms.keys.rotation import KeyRotationListener, RotateRequest
from oms.keys.settings import AccountCatalog, VaultSettings
from oms.keys.store import VaultKeyStore

SECRET = "MetricsTestSecret-0123456789-abcdef"


def _page(collector: KeyStoreCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_store_and_rotation_series(openbao, tmp_path):
    env = {"OMS_VAULT_ADDR": openbao.address, "OMS_VAULT_TOKEN": openbao.root_token}
    settings = VaultSettings.from_env("daemon", tmp_path, "http://unused", env)
    store = VaultKeyStore(settings, AccountCatalog.from_config(load_config(env={})))
    store.put("binance", "spot", "sub_spot_arb", "METRICSKEY0000001", SECRET, ["spot"], expires_ns=4102444800 * 10**9)
    store._held.clear()
    store._by_account.clear()
    store.get("binance", "spot", "sub_spot_arb")  # a miss: read from Vault
    store.get("binance", "spot", "sub_spot_arb")  # a hit: memory
    with pytest.raises(KeyNotFound):
        store.get("binance", "usdm", "sub_futures_trend")
    listener = KeyRotationListener(None, store, "daemon-1")  # type: ignore[arg-type]  (no NATS needed to count)
    req = RotateRequest("r1", "binance", "sub_spot_arb", "spot", 2, "x")
    listener.metrics.count(req, "switched")
    listener.metrics.count(RotateRequest("r2", "binance", "sub_spot_arb", "spot", 3, "y", "rollback"), "failed")
    page = _page(KeyStoreCollector(lambda: store, lambda: listener))
    for line in (
        'oms_keys_cache_hits_total{component="daemon"} 1.0',
        'oms_keys_cache_misses_total{component="daemon"} 2.0',
        'oms_keys_vault_errors_total{component="daemon",reason="not_found"} 1.0',
        'oms_keys_vault_errors_total{component="daemon",reason="unreachable"} 0.0',
        'oms_keys_degraded{component="daemon"} 0.0',
        'oms_keys_rotations_total{account="sub_spot_arb",exchange="binance",outcome="switched",reason="rotate"} 1.0',
        'oms_keys_rotations_total{account="sub_spot_arb",exchange="binance",outcome="failed",reason="rollback"} 1.0',
        'oms_keys_checks_total{holder="daemon-1",outcome="ok"} 0.0',
    ):
        assert line in page, line
    version = store.get("binance", "spot", "sub_spot_arb").version
    assert f'oms_keys_version{{account="sub_spot_arb",exchange="binance",market="spot"}} {float(version)}' in page
    assert 'oms_keys_age_seconds{account="sub_spot_arb",exchange="binance",market="spot"}' in page
    assert 'oms_keys_expires_in_seconds{account="sub_spot_arb",exchange="binance",market="spot"}' in page
    assert "oms_keys_last_rotation_timestamp_seconds{" in page
    creds = store.get("binance", "spot", "sub_spot_arb")
    assert SECRET not in page and creds.fingerprint not in page and creds.api_key not in page


def test_a_provider_without_versions_yields_only_what_it_has():
    assert "oms_keys" not in _page(KeyStoreCollector(lambda: EnvKeys({}), lambda: None))
