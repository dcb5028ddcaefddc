"""WebSocket-API request signing: Binance's rule, with the HMAC key prepared once per API key.

The signature is hex HMAC-SHA256 of the request's params sorted by name, joined as ``key=value`` with ``&``
(values as sent; this connector's are ASCII: symbols, enums, decimal strings, client order ids of Binance's
alphabet). python-binance signs each request itself with ``urlencode`` and a fresh ``hmac.new``; params that
already carry a ``signature`` it passes on untouched, so the connector signs them here, with the shared
clock's server time, several times faster (``tests/bench/test_binance_venue_bench.py``).

A signature is a template filled in: requests of one kind carry the same param names, so their sorted order,
an ``itemgetter`` of the values in that order and the ``k=%s&...`` format are made once per set of names; the
leading ``apiKey=<key>&`` (the first name of most requests) is already inside the signer's inner hash state.
A payload that formatted a boolean (Python writes ``True``, Binance wants ``true``) is made again the slow way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any


class _Template:
    """The signing template of one set of param names (as given, signature included or not)."""

    __slots__ = ("order", "head", "names", "values", "tail", "fill")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.order = tuple(k for k in sorted(names) if k != "signature")
        # with apiKey first, the template covers what follows it: "apiKey=<key>&" is in the signer's inner state
        self.head = len(self.order) > 1 and self.order[0] == "apiKey"
        self.names = self.order[1:] if self.head else self.order
        self.values = _getter(self.names)
        self.tail = "&".join(f"{k.replace('%', '%%')}=%s" for k in self.names)
        self.fill = _filler(self.names, self.tail, self.values)


def _filler(names: tuple[str, ...], tail: str, values: Callable[[dict[str, Any]], tuple[Any, ...]]):
    """params -> the payload after the head: an f-string made for these names (half the cost of ``tail %
    values(params)``, which it equals), or that formatting where a name is not a plain word."""
    if names and all(_WORD.fullmatch(k) for k in names):
        body = "&".join(f"{k}={{p[{k!r}]}}" for k in names)
        return eval(f'lambda p: f"{body}"', {})  # names are [A-Za-z0-9_]+: nothing but them reaches the code
    return lambda params: tail % values(params)


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) > 1:
        return itemgetter(*names)
    return lambda params: tuple(params[k] for k in names)


class WsSigner:
    """Signs WebSocket-API params for one API key."""

    __slots__ = ("api_key", "_inner", "_outer", "_inner_key")

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        # HMAC (RFC 2104) with its two padded-key hashes made once: a signature is then C calls only
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))
        self._inner_key = self._inner.copy()  # and the payload's constant start, for params led by apiKey
        self._inner_key.update(f"apiKey={api_key}&".encode())

    def hexdigest(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` under this signer's secret (``hmac.new(secret, message, sha256)``)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def payload(self, params: dict[str, Any]) -> str:
        """The string Binance verifies: params but ``signature``, sorted by name, ``k=v`` joined by ``&``
        (booleans written ``true``/``false``)."""
        t = _template(params)
        if t.head:
            return f"apiKey={params['apiKey']}&{self._tail(t, params)}"
        return self._tail(t, params)

    def sign(self, params: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
        """``params`` with ``apiKey``, ``timestamp`` and ``signature`` set (the dict itself, changed)."""
        params["apiKey"] = self.api_key
        params["timestamp"] = timestamp_ms
        t = _TEMPLATES.get(tuple(params)) or _template(params)
        text = t.fill(params)
        if "True" in text or "False" in text:  # perhaps a boolean: write the payload value by value
            text = _slow_tail(t, params)
        # with apiKey first, params["apiKey"] is this signer's key: its part of the payload is hashed already
        inner = (self._inner_key if t.head else self._inner).copy()
        inner.update(text.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        params["signature"] = outer.hexdigest()
        return params

    @staticmethod
    def _tail(t: _Template, params: dict[str, Any]) -> str:
        text = t.fill(params)
        if "True" in text or "False" in text:
            return _slow_tail(t, params)
        return text


def _slow_tail(t: _Template, params: dict[str, Any]) -> str:
    return "&".join([
        f"{k}={v}" if type(v := params[k]) is not bool else f"{k}={'true' if v else 'false'}" for k in t.names
    ])  # fmt: skip


def _template(params: dict[str, Any]) -> _Template:
    names = tuple(params)
    t = _TEMPLATES.get(names)
    if t is None:
        if len(_TEMPLATES) >= 1024:
            _TEMPLATES.clear()
        t = _TEMPLATES[names] = _Template(names)
    return t


_TEMPLATES: dict[tuple[str, ...], _Template] = {}  # param names as given -> their signing template
_WORD = re.compile(r"[A-Za-z0-9_]+")
_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
