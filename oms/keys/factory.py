"""Open the key store of one component from the configuration and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from oms.keys.cache import EncryptedKeyCache, load_cache_secret
from oms.keys.settings import AccountCatalog, VaultSettings
from oms.keys.store import VaultKeyStore


def keys_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "keys"


def default_vault_address(cfg) -> str:
    return f"http://127.0.0.1:{cfg.stream.services.openbao.port}"


def open_store(
    cfg,
    component: str,
    env: Mapping[str, str] | None = None,
    cache: bool = True,
    ttl_s: float = 60.0,
) -> VaultKeyStore:
    """The key store of ``component`` (daemon, rotation, balances, admin) for the configuration ``cfg``.

    Its AppRole comes from ``data/keys/approle/{component}.json`` unless the environment says otherwise
    (``oms.keys.settings``); with ``cache`` its keys are also kept in ``data/keys/cache/{component}.cache``.
    """
    env = os.environ if env is None else env
    data_dir = cfg.data_dir()
    settings = VaultSettings.from_env(component, data_dir, default_vault_address(cfg), env)
    sealed = None
    if cache:
        secret = load_cache_secret(keys_dir(data_dir) / "cache.secret", dict(env))
        sealed = EncryptedKeyCache(keys_dir(data_dir) / "cache" / f"{component}.cache", secret, component)
    return VaultKeyStore(settings, AccountCatalog.from_config(cfg), sealed, ttl_s=ttl_s)
