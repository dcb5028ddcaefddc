"""What key rotation asks of a venue: create and revoke keys (the local exchange's admin API) and a signed read.

``admin_call`` is the one function that talks to the local exchange's ``/admin/v1`` API: JSON bodies
(``Content-Type: application/json``) and ``X-Admin-Token`` when a token is configured
(``OMS_LOCALEX_ADMIN_TOKEN``, or the 0600 file ``data/localex/localex-admin-token``).

``signed_read`` proves that a key works: a Binance-signed ``GET /api/v3/account`` (Spot) or
``GET /fapi/v2/balance`` (USD-M), as Binance and the local exchange check it (HMAC-SHA256 of the query).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

from oms.keys.provider import Credentials, KeyStoreError

ADMIN_TOKEN_ENV = "OMS_LOCALEX_ADMIN_TOKEN"
ADMIN_TOKEN_FILE = "localex-admin-token"  # written by the local exchange (localex.server.guard)
READ_PATHS = {"spot": "/api/v3/account", "usdm": "/fapi/v2/balance"}


class VenueError(KeyStoreError):
    """The venue refused or failed a key operation; the message names the account and the call."""


def admin_token(data_dir: Path | None) -> str | None:
    """The local exchange's admin token, when one is configured."""
    token = os.environ.get(ADMIN_TOKEN_ENV)
    if token:
        return token.strip()
    if data_dir is not None:
        path = Path(data_dir) / "localex" / ADMIN_TOKEN_FILE
        if path.is_file():
            return path.read_text().strip() or None
    return None


def admin_call(
    base_url: str, method: str, path: str, body: dict | None = None, token: str | None = None, timeout: float = 10.0
) -> object:
    """One call of the local exchange's admin API; returns the decoded JSON or raises ``VenueError``."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Admin-Token"] = token
    try:
        resp = requests.request(method, base_url.rstrip("/") + path, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise VenueError(f"local exchange admin {method} {path} failed: {type(exc).__name__}: {exc}") from None
    if resp.status_code >= 400:
        raise VenueError(f"local exchange admin {method} {path} answered {resp.status_code}: {resp.text[:200]}")
    return resp.json()


def local_account_id(base_url: str, venue_account: str, token: str | None) -> str:
    """The local exchange's account id for a key's ``venue_account``: the id itself, or the account whose email
    it is (Binance names sub-accounts by email, so provisioned keys carry the email)."""
    if "@" not in venue_account:
        return venue_account
    listed = admin_call(base_url, "GET", "/admin/v1/accounts", None, token)
    for acct in listed if isinstance(listed, list) else []:
        if acct.get("email") == venue_account:
            return str(acct["accountId"])
    raise VenueError(f"the local exchange has no account with email {venue_account}")


def create_key(base_url: str, venue_account: str, permissions: list[str], label: str, token: str | None) -> dict:
    """A new key of ``venue_account`` (an account id, or its email) on the local exchange: ``{"apiKey",
    "secret", "permissions", ...}``."""
    perms = sorted({p.upper() for p in permissions})
    account_id = local_account_id(base_url, venue_account, token)
    answer = admin_call(
        base_url, "POST", f"/admin/v1/accounts/{account_id}/keys", {"permissions": perms, "label": label}, token
    )
    if not isinstance(answer, dict) or "apiKey" not in answer or "secret" not in answer:
        raise VenueError(f"local exchange created a key for {venue_account} but answered without apiKey/secret")
    return answer


def revoke_key(base_url: str, api_key: str, token: str | None) -> None:
    admin_call(base_url, "DELETE", f"/admin/v1/keys/{api_key}", None, token)


def _signed_get(rest_url: str, path: str, creds: Credentials, what: str, timeout: float) -> requests.Response:
    query = urlencode({"timestamp": int(time.time() * 1000), "recvWindow": 10000})
    signature = hmac.new(creds.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    url = f"{rest_url.rstrip('/')}{path}?{query}&signature={signature}"
    try:
        resp = requests.get(url, headers={"X-MBX-APIKEY": creds.api_key}, timeout=timeout)
    except requests.RequestException as exc:
        raise VenueError(f"{what} failed: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise VenueError(f"{what} refused: HTTP {resp.status_code} {resp.text[:200]}")
    return resp


def api_restrictions(spot_rest_url: str, creds: Credentials, timeout: float = 10.0) -> dict:
    """What Binance says the key may do (``GET /sapi/v1/account/apiRestrictions``: enableWithdrawals, ...)."""
    what = f"permission check of {creds.exchange}/{creds.account} key {creds.fingerprint}"
    resp = _signed_get(spot_rest_url, "/sapi/v1/account/apiRestrictions", creds, what, timeout)
    try:
        doc = resp.json()
    except ValueError:
        raise VenueError(f"{what}: the answer is not JSON: {resp.text[:200]}") from None
    if not isinstance(doc, dict) or "enableWithdrawals" not in doc:
        raise VenueError(f"{what}: the answer lacks enableWithdrawals: {resp.text[:200]}")
    return doc


def signed_read(rest_url: str, creds: Credentials, timeout: float = 10.0) -> None:
    """A signed account read with ``creds``; raises ``VenueError`` (naming the key's fingerprint) if refused."""
    what = f"signed read of {creds.exchange}/{creds.account}/{creds.market} with key {creds.fingerprint}"
    _signed_get(rest_url, READ_PATHS[creds.market], creds, what, timeout)
