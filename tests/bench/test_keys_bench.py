"""Benchmark: the key store's lookup, the connectors' hot question "which key does this account use now?".

Measures, against a real OpenBao (raft) started for the run, ``VaultKeyStore.get`` served from memory (the
cached lookup) and from the encrypted disk cache (a reader restarting while Vault is down), against the
baseline of a read from Vault itself (``refresh``: one KV v2 read over HTTP) in the same run.
"""

from __future__ import annotations

import time

import pytest

from oms.config import load_config
from oms.keys.cache import EncryptedKeyCache, load_cache_secret
from oms.keys.settings import AccountCatalog, VaultSettings
from oms.keys.store import VaultKeyStore

pytestmark = pytest.mark.bench
N_MEMORY = 200_000
N_VAULT = 300
N_CACHE = 300


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def test_key_lookup_speed(openbao, tmp_path):
    env = {"OMS_VAULT_ADDR": openbao.address, "OMS_VAULT_TOKEN": openbao.root_token}
    catalog = AccountCatalog.from_config(load_config(env={}))
    secret = load_cache_secret(tmp_path / "cache.secret", {})

    def store(ttl_s: float = 3600.0) -> VaultKeyStore:
        cache = EncryptedKeyCache(tmp_path / "daemon.cache", secret, "daemon")
        return VaultKeyStore(VaultSettings.from_env("daemon", tmp_path, "", env), catalog, cache, ttl_s=ttl_s)

    s = store()
    s.put("binance", "spot", "main", "BENCHKEY000000001", "BenchSecret-0123456789-abcdefgh", ["spot"])

    vault = []
    for _ in range(N_VAULT):
        t0 = time.perf_counter()
        s.refresh("binance", "spot", "main")
        vault.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(N_MEMORY):
        s.get("binance", "spot", "main")
    memory_s = (time.perf_counter() - t0) / N_MEMORY

    # a restarting reader while Vault is unreachable: first lookup decrypts the cache file
    dead = {"OMS_VAULT_ADDR": "http://127.0.0.1:9", "OMS_VAULT_TOKEN": "x"}
    cold = []
    for _ in range(N_CACHE):
        r = VaultKeyStore(
            VaultSettings.from_env("daemon", tmp_path, "", dead),
            catalog,
            EncryptedKeyCache(tmp_path / "daemon.cache", secret, "daemon"),
            warn_every_s=1e9,
        )
        t0 = time.perf_counter()
        r.get("binance", "spot", "main")
        cold.append(time.perf_counter() - t0)

    vault_p50 = _pct(vault, 0.5)
    print(
        f"\nkey lookup: memory {memory_s * 1e9:.0f} ns/get ({1 / memory_s:,.0f}/s); "
        f"restart from encrypted cache with Vault down p50 {_pct(cold, 0.5) * 1e6:.0f} us; "
        f"baseline Vault read p50 {vault_p50 * 1e6:.0f} us p99 {_pct(vault, 0.99) * 1e6:.0f} us; "
        f"memory is {vault_p50 / memory_s:,.0f}x faster than a Vault read"
    )
    assert memory_s < vault_p50
