"""The webhook's shared secret in Vault/OpenBao: ``secret/webhooks/tradingview``, field ``secret``.

``oms webhook secret`` (the admin role) generates and writes it; the daemon's role reads only this path
(``deploy/vault/policies/oms-daemon.hcl``). ``WebhookSecret`` holds it in memory for ``ttl_s`` and keeps the
last value it read while Vault cannot be reached (logged, counted), so an outage does not lock the
webhook; a rotated secret is picked up within ``ttl_s``. The value is registered with the log redaction.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import hvac.exceptions
import requests

from oms.keys.provider import KeyStoreError
from oms.keys.redact import register_secret
from oms.keys.store import VaultKeyStore

WEBHOOK_SECRET_PATH = "webhooks/tradingview"
MIN_SECRET_LENGTH = 24

log = logging.getLogger("oms.keys.webhook")


class WebhookSecret:
    """The current webhook secret (bytes), from Vault, cached ``ttl_s`` seconds."""

    def __init__(self, store: VaultKeyStore, path: str = WEBHOOK_SECRET_PATH, ttl_s: float = 60.0):
        self.store = store
        self.path = path
        self.ttl_s = ttl_s
        self.stale_reads = 0  # answers served from memory because Vault failed
        self._value: bytes | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> bytes:
        """The secret; raises ``KeyStoreError`` only when it was never read and Vault cannot give it."""
        now = time.monotonic()
        if self._value is not None and now - self._read_at < self.ttl_s:
            return self._value
        with self._lock:
            try:
                data = self.store.read_data(self.path)
            except (KeyStoreError, hvac.exceptions.VaultError, requests.RequestException) as exc:
                if self._value is None:
                    raise KeyStoreError(
                        f"the webhook secret at {self.store.full_path(self.path)} cannot be read: {exc} "
                        "(create it with `oms webhook secret`)"
                    ) from None
                self.stale_reads += 1
                self._read_at = now - self.ttl_s + min(5.0, self.ttl_s)  # try Vault again in a few seconds
                log.warning("webhook secret: Vault read failed (%s); using the value read before", exc)
                return self._value
            value = data.get("secret")
            if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
                raise KeyStoreError(
                    f"the webhook secret at {self.store.full_path(self.path)} is missing or shorter than "
                    f"{MIN_SECRET_LENGTH} characters (field 'secret'); write a new one with `oms webhook secret`"
                )
            register_secret(value)
            self._value, self._read_at = value.encode(), now
            return self._value


def new_webhook_secret(store: VaultKeyStore, path: str = WEBHOOK_SECRET_PATH) -> tuple[str, int]:
    """Generate a fresh secret (256 bits, URL-safe), write it as a new version; (secret, version)."""
    value = secrets.token_urlsafe(32)
    register_secret(value)
    version = store.write_data(path, {"secret": value, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return value, version
