"""API keys: the key-provider interface the connectors use, and the stores behind it."""

from oms.keys.provider import Credentials, KeyNotFound, KeyProvider, KeyStoreError, fingerprint, vault_path

__all__ = ["Credentials", "KeyNotFound", "KeyProvider", "KeyStoreError", "fingerprint", "vault_path"]
