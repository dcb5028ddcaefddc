"""Binance request signing, checked exactly as Binance checks it.

REST: ``X-MBX-APIKEY`` names the key; the signature is hex HMAC-SHA256, keyed by the secret, over the
raw ``totalParams`` (query string followed directly by the form body) without the ``signature``
parameter; ``timestamp`` must fall inside ``recvWindow`` (default 5000 ms, at most 60000) and be no more
than 1000 ms ahead of the server. WebSocket API: the same over the request's params sorted by name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, unquote_plus, urlencode

from localex.server import errors

API_KEY_RE = re.compile(r"^[A-Za-z0-9]{8,128}$")
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
MAX_AHEAD_MS = 1000
TIMESTAMP_LEGAL = "^[0-9]{1,20}$"
TIMESTAMP_RE = re.compile(r"^[0-9]{1,20}\Z")  # ASCII digits only: int() would take "1_000" and other scripts' digits
RECV_WINDOW_LEGAL = r"^[0-9]{1,20}(\.[0-9]{1,3})?$"
RECV_WINDOW_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,3})?\Z")


@dataclass(frozen=True, slots=True)
class Credential:
    """A verified caller: the account behind an API key, and what the key may do."""

    api_key: str
    account_id: str
    permissions: frozenset[str]


class KeyLookup(Protocol):
    """Where the server finds API keys (the engine's key registry)."""

    def secret_for(self, api_key: str) -> tuple[str, str, frozenset[str]] | None:
        """``(secret, account_id, permissions)`` for an active key, or None."""
        ...


def _hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Split ``raw`` into the payload without ``signature=`` and the signature found (if any)."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for pair in raw.split("&"):
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def _check_key(api_key: str | None, keys: KeyLookup) -> tuple[str, Credential]:
    if not api_key or not API_KEY_RE.match(api_key):
        raise errors.bad_api_key_format()
    found = keys.secret_for(api_key)
    if found is None:
        raise errors.rejected_mbx_key()
    secret, account_id, permissions = found
    return secret, Credential(api_key, account_id, permissions)


def check_timestamp(timestamp: object, recv_window: object, now_ms: int) -> None:
    """Binance's timestamp rule: ``now - recvWindow <= timestamp < now + 1000``."""
    if timestamp in (None, ""):
        raise errors.mandatory("timestamp")
    if isinstance(timestamp, bool) or not TIMESTAMP_RE.match(str(timestamp)):
        raise errors.illegal_chars("timestamp", TIMESTAMP_LEGAL)
    ts = int(str(timestamp))
    window: float = DEFAULT_RECV_WINDOW
    if recv_window not in (None, ""):
        # milliseconds with up to 3 decimals (Binance's microsecond precision); "inf", "1e9", "0x10": -1100
        if isinstance(recv_window, bool) or not RECV_WINDOW_RE.match(str(recv_window)):
            raise errors.illegal_chars("recvWindow", RECV_WINDOW_LEGAL)
        window = float(str(recv_window))
        if window > MAX_RECV_WINDOW or window <= 0:
            raise errors.bad_recv_window()
    if ts >= now_ms + MAX_AHEAD_MS:
        raise errors.timestamp_outside(ahead=True)
    if now_ms - ts > window:
        raise errors.timestamp_outside(ahead=False)


def require_api_key(api_key: str | None, keys: KeyLookup, permission: str | None = None) -> Credential:
    """USER_STREAM-style endpoints: a valid key, no signature."""
    _, cred = _check_key(api_key, keys)
    if permission is not None and permission not in cred.permissions:
        raise errors.rejected_mbx_key()
    return cred


def verify_rest(
    raw_query: str,
    raw_body: str,
    api_key: str | None,
    params: Mapping[str, str],
    keys: KeyLookup,
    now_ms: int,
    permission: str | None = None,
) -> Credential:
    """Verify a signed REST request; return the caller or raise Binance's error."""
    secret, cred = _check_key(api_key, keys)
    query_payload, query_sig = _strip_signature(raw_query)
    body_payload, body_sig = _strip_signature(raw_body)
    signature = query_sig if query_sig is not None else body_sig
    if not signature:
        raise errors.mandatory("signature")
    check_timestamp(params.get("timestamp"), params.get("recvWindow"), now_ms)
    total = query_payload + body_payload
    candidates = [total]
    decoded = unquote_plus(total)
    if decoded != total:
        candidates.append(decoded)
    if not _matches(secret, candidates, signature):
        raise errors.bad_signature()
    if permission is not None and permission not in cred.permissions:
        raise errors.rejected_mbx_key()
    return cred


def _matches(secret: str, payloads: Iterable[str], signature: str) -> bool:
    wanted = signature.lower()
    ok = False
    for payload in payloads:
        ok |= hmac.compare_digest(_hmac_hex(secret, payload), wanted)
    return ok


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payloads(params: Mapping[str, object]) -> list[str]:
    """The strings a WebSocket API client may have signed: params sorted by name, raw or URL-encoded."""
    items = sorted((k, v) for k, v in params.items() if k != "signature")
    raw = "&".join(f"{k}={_ws_value(v)}" for k, v in items)
    encoded = urlencode([(k, _ws_value(v)) for k, v in items])
    python_style = "&".join(f"{k}={quote(str(v)) if k == 'symbol' else str(v)}" for k, v in items)
    return list(dict.fromkeys([raw, encoded, python_style]))


def verify_ws(params: Mapping[str, object], keys: KeyLookup, now_ms: int, permission: str | None = None) -> Credential:
    """Verify a signed WebSocket API request's params (``apiKey``, ``timestamp``, ``signature``)."""
    api_key = params.get("apiKey")
    secret, cred = _check_key(api_key if isinstance(api_key, str) else None, keys)
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        raise errors.mandatory("signature")
    check_timestamp(params.get("timestamp"), params.get("recvWindow"), now_ms)
    if not _matches(secret, ws_payloads(params), signature):
        raise errors.bad_signature()
    if permission is not None and permission not in cred.permissions:
        raise errors.rejected_mbx_key()
    return cred
