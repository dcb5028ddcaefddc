"""WebSocket-API request signing: Binance's rule, with the HMAC key prepared once per API key.

The signature is hex HMAC-SHA256 of the request's params sorted by name, joined as ``key=value`` with ``&``
(values as sent; this connector's are ASCII: symbols, enums, decimal strings, client order ids of Binance's
alphabet). python-binance signs each request itself with ``urlencode`` and a fresh ``hmac.new``; params that
already carry a ``signature`` it passes on untouched, so the connector signs them here, with the shared
clock's server time, several times faster (``tests/bench/test_binance_venue_bench.py``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


class WsSigner:
    """Signs WebSocket-API params for one API key."""

    __slots__ = ("api_key", "_mac")

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def payload(self, params: dict[str, Any]) -> str:
        """The string Binance verifies: params but ``signature``, sorted by name, ``k=v`` joined by ``&``
        (booleans written ``true``/``false``)."""
        return "&".join([
            f"{k}={v}" if type(v) is not bool else f"{k}={'true' if v else 'false'}"
            for k, v in sorted(params.items())
            if k != "signature"
        ])  # fmt: skip

    def sign(self, params: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
        """``params`` with ``apiKey``, ``timestamp`` and ``signature`` set (the dict itself, changed)."""
        params["apiKey"] = self.api_key
        params["timestamp"] = timestamp_ms
        mac = self._mac.copy()
        mac.update(self.payload(params).encode())
        params["signature"] = mac.hexdigest()
        return params
