"""API keys: the key-provider interface the connectors use, and the stores behind it."""

from oms.keys.local import DemoKeysFile, EnvKeys
from oms.keys.provider import Credentials, KeyNotFound, KeyProvider, KeyStoreError, fingerprint, vault_path

__all__ = [
    "Credentials",
    "DemoKeysFile",
    "EnvKeys",
    "KeyNotFound",
    "KeyProvider",
    "KeyStoreError",
    "fingerprint",
    "vault_path",
]
