"""API keys: the key-provider interface the connectors use, and the stores behind it.

The Vault/OpenBao key store is ``oms.keys.store.VaultKeyStore`` (open one with ``oms.keys.factory.open_store``);
live rotation over NATS is ``oms.keys.rotation``; log redaction is ``oms.keys.redact``.
"""

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
    "KeyNotFound",
    "KeyProvider",
    "KeyRevoked",
    "KeyStoreError",
    "WithdrawalPermissionRefused",
    "fingerprint",
    "vault_path",
]
