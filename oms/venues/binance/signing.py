"""WebSocket-API request signing: Binance's rule, with the HMAC key prepared once per API key.

The signature is hex HMAC-SHA256 of the request's params sorted by name, joined as ``key=value`` with ``&``
(values as sent; this connector's are ASCII: symbols, enums, decimal strings, client order ids of Binance's
alphabet). python-binance signs each request itself with ``urlencode`` and a fresh ``hmac.new``; params that
already carry a ``signature`` it passes on untouched, so the connector signs them here, with the shared
clock's server time, several times faster (``tests/bench/test_binance_venue_bench.py``).
"""

from __future__ import annotations

import hashlib
from typing import Any


class WsSigner:
    """Signs WebSocket-API params for one API key."""

    __slots__ = ("api_key", "_inner", "_outer")

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        # HMAC (RFC 2104) with its two padded-key hashes made once: a signature is then C calls only
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` under this signer's secret (``hmac.new(secret, message, sha256)``)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def payload(self, params: dict[str, Any]) -> str:
        """The string Binance verifies: params but ``signature``, sorted by name, ``k=v`` joined by ``&``
        (booleans written ``true``/``false``). The sorted order is remembered per set of names: requests of
        one kind always carry the same ones."""
        names = tuple(params)
        order = _ORDERS.get(names)
        if order is None:
            if len(_ORDERS) >= 1024:
                _ORDERS.clear()
            order = _ORDERS[names] = tuple(k for k in sorted(names) if k != "signature")
        return "&".join([
            f"{k}={v}" if type(v := params[k]) is not bool else f"{k}={'true' if v else 'false'}" for k in order
        ])  # fmt: skip

    def sign(self, params: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
        """``params`` with ``apiKey``, ``timestamp`` and ``signature`` set (the dict itself, changed)."""
        params["apiKey"] = self.api_key
        params["timestamp"] = timestamp_ms
        params["signature"] = self.hexdigest(self.payload(params).encode())
        return params


_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}  # param names as given -> sorted, without signature
_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
