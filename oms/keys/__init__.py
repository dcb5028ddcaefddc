"""API keys: the key-provider interface the connectors use, and the stores behind it.

The Vault/OpenBao key store is ``oms.keys.store.VaultKeyStore`` (open one with ``oms.keys.factory.open_store``);
the local exchange's demo-keys file and environment variables are ``oms.keys.local``; live rotation over NATS
is ``oms.keys.rotation``; log redaction is ``oms.keys.redact``; the Prometheus series of the store and the listener
are ``oms.keys.metrics``; proving a key with a signed read through the exchange's library is ``oms.keys.verify``.
"""

from oms.keys.local import DemoKeysFile, EnvKeys
from oms.keys.provider import (
    Credentials,
    KeyNotFound,
    KeyProvider,
    KeyRevoked,
    KeyStoreError,
    WithdrawalPermissionRefused,
    fingerprint,
    vault_path,
)

__all__ = [
    "Credentials",
    "DemoKeysFile",
    "EnvKeys",
    "KeyNotFound",
    "KeyProvider",
    "KeyRevoked",
    "KeyStoreError",
    "WithdrawalPermissionRefused",
    "fingerprint",
    "vault_path",
]
