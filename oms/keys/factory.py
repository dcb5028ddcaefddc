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


DEMO_KEYS = Path("localex") / "localex-demo-keys.json"  # under the data folder (the local exchange writes it)


def key_provider(cfg, source: str = "auto", identity: str = "daemon"):
    """Where a process's venue clients take their keys (``oms stream run --keys``, the snapshot flow):
    ``vault`` (the key store as ``identity``), ``demo`` (the local exchange's demo-keys file), ``env``
    (``OMS_KEY_*`` variables), or ``auto``: ``vault`` once `oms keys init` wrote the AppRole (as `oms up` does),
    else ``demo`` when every exchange is on the local venue and the file exists, else ``env`` when any
    ``OMS_KEY_*`` variable is set, else ``vault``."""
    from oms.keys.local import DemoKeysFile, EnvKeys
    from oms.keys.settings import approle_file

    demo = cfg.data_dir() / DEMO_KEYS
    if source == "auto":
        local = all(ex.venue == "local" for ex in cfg.exchanges.exchanges.values())
        if approle_file(cfg.data_dir(), identity).is_file():
            source = "vault"
        elif local and demo.exists():
            source = "demo"
        else:
            source = "env" if any(k.startswith("OMS_KEY_") for k in os.environ) else "vault"
    if source == "demo":
        return DemoKeysFile(demo)
    if source == "env":
        return EnvKeys()
    return open_store(cfg, identity)
