"""The local exchange's own admin API (``/admin/v1``), clearly not a Binance path.

Creates accounts, funds them, creates and revokes API keys, and shows counters. A call must come from a
loopback peer, name this server's loopback address in ``Host`` (see ``guard``), carry the install's admin
token in ``X-Admin-Token``, and send its body (POST) as ``application/json`` (a web page can send
``text/plain`` across origins without asking; it cannot send JSON or custom headers without a CORS
preflight, which this server never grants). Every value is checked before anything changes; a rejected
call answers ``{"code": -1 or Binance's code, "msg": what and why}`` and is counted.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from localex.engine.errors import ExchangeError
from localex.engine.markets import fmt_amount
from localex.server.guard import TOKEN_HEADER, token_matches
from localex.server.http import json_response
from localex.server.state import ServerState

log = logging.getLogger(__name__)
ALL_PERMISSIONS = ["SPOT", "FUTURES", "TRANSFER", "WITHDRAW"]
WALLETS = frozenset(("SPOT", "FUTURES"))
MAX_ADMIN_BODY = 64 * 1024
AdminHandler = Callable[[web.Request, ServerState, dict[str, object]], object]


class AdminRequestError(ValueError):
    """A bad admin request: ``msg`` says which field and why."""


def _error(status: int, msg: str) -> web.Response:
    return json_response({"code": -1, "msg": msg}, status)


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _account_json(state: ServerState, account_id: str) -> dict[str, object]:
    acct = state.exchange.account(account_id)
    return {
        "accountId": acct.account_id,
        "email": acct.email,
        "isSub": acct.is_sub,
        "parentId": getattr(acct, "parent_id", None),
        "createTime": acct.created_ns // 1_000_000,
    }


def _refuse(state: ServerState, kind: str, status: int, msg: str, detail: str = "") -> web.Response:
    state.counters.bad(kind, detail or msg)
    return _error(status, msg)


async def _read_body(request: web.Request, state: ServerState) -> dict[str, object] | web.Response:
    if request.method != "POST":
        return {}
    ctype = request.content_type  # the media type without parameters, lower-cased
    if ctype != "application/json":
        return _refuse(
            state, "admin_content_type", 415, f"admin POST bodies must be application/json (got {ctype or 'none'})"
        )
    if request.content_length is not None and request.content_length > MAX_ADMIN_BODY:
        return _refuse(state, "admin_body_too_large", 413, f"admin body over {MAX_ADMIN_BODY} bytes")
    raw = await request.content.read(MAX_ADMIN_BODY + 1)
    if len(raw) > MAX_ADMIN_BODY:
        return _refuse(state, "admin_body_too_large", 413, f"admin body over {MAX_ADMIN_BODY} bytes")
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _refuse(state, "admin_invalid_json", 400, f"body is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        return _refuse(state, "admin_invalid_json", 400, "body must be a JSON object")
    return parsed


def _wrap(state: ServerState, fn: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if not _loopback(request):
            return _refuse(state, "admin_not_loopback", 403, "admin API answers loopback peers only")
        if not token_matches(request.headers.get(TOKEN_HEADER), state.admin_token):
            where = f" (it is in {state.admin_token_file})" if state.admin_token_file else ""
            return _refuse(state, "admin_token", 401, f"missing or wrong {TOKEN_HEADER}{where}")
        body = await _read_body(request, state)
        if isinstance(body, web.Response):
            return body
        try:
            return json_response(fn(request, state, body))
        except ExchangeError as exc:
            state.counters.bad("admin_rejected", exc.msg)
            return json_response(exc.to_wire(), 400)
        except AdminRequestError as exc:
            state.counters.bad("admin_bad_request", str(exc))
            return _error(400, f"bad admin request: {exc}")

    return handle


def create_account(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """POST /admin/v1/accounts {"email"?, "parentId"?, "accountId"?}."""
    acct = state.exchange.create_account(
        _opt_str(body, "email"), parent_id=_opt_str(body, "parentId"), account_id=_opt_str(body, "accountId")
    )
    return _account_json(state, acct.account_id)


def list_accounts(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """GET /admin/v1/accounts."""
    return [_account_json(state, a.account_id) for a in state.exchange.accounts()]


def fund(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """POST /admin/v1/accounts/{id}/fund {"asset", "amount", "wallet"?: SPOT|FUTURES}."""
    account_id = request.match_info["account_id"]
    asset = _str(body, "asset").upper()
    amount = _str(body, "amount")
    wallet = _wallet(body)
    t = state.exchange.fund(account_id, asset, amount, wallet=wallet)
    return {"tranId": t.tran_id, "asset": t.asset, "amount": fmt_amount(t.amount), "wallet": t.to_wallet}


def balances(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """GET /admin/v1/accounts/{id}/balances?wallet=SPOT."""
    account_id = request.match_info["account_id"]
    wallet = request.query.get("wallet", "SPOT").upper()
    if wallet not in WALLETS:
        raise AdminRequestError(f"wallet must be SPOT or FUTURES (got {wallet[:20]!r})")
    return [
        {"asset": b.asset, "free": fmt_amount(b.free), "locked": fmt_amount(b.locked)}
        for b in state.exchange.balances(account_id, wallet)
    ]


def create_key(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """POST /admin/v1/accounts/{id}/keys {"permissions"?: [...], "label"?}: returns the secret once."""
    account_id = request.match_info["account_id"]
    perms = body.get("permissions", ALL_PERMISSIONS)
    if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
        raise AdminRequestError(f"permissions must be a list of {', '.join(ALL_PERMISSIONS)}")
    label = _opt_str(body, "label") or ""
    key = state.exchange.create_api_key(account_id, permissions=set(perms), label=label)
    return {
        "apiKey": key.api_key,
        "secret": key.secret,
        "accountId": key.account_id,
        "permissions": sorted(key.permissions),
        "label": key.label,
    }


def list_keys(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """GET /admin/v1/accounts/{id}/keys (never the secrets)."""
    account_id = request.match_info["account_id"]
    return [
        {"apiKey": k.api_key, "permissions": sorted(k.permissions), "label": k.label, "revoked": k.revoked}
        for k in state.exchange.api_keys(account_id)
    ]


def revoke_key(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """DELETE /admin/v1/keys/{api_key}."""
    state.exchange.revoke_api_key(request.match_info["api_key"])
    return {"revoked": request.match_info["api_key"]}


def counters(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """GET /admin/v1/counters: rejected input, errors by code, 429/418 counts, connections."""
    snap = state.counters.snapshot()
    snap.update(
        {
            "rateLimit429": state.limiter.rejections_429,
            "rateLimit418": state.limiter.rejections_418,
            "streamConnections": len(state.hub.connections),
            "wsApiSessions": len(state.ws_api_sessions),
        }
    )
    return snap


def demo_keys(request: web.Request, state: ServerState, body: dict[str, object]) -> object:
    """GET /admin/v1/demo-keys: the LOCAL TEST keys of the demo accounts."""
    return state.demo_keys


def _opt_str(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise AdminRequestError(f"{name} must be a string (got {type(value).__name__})")
    return value


def _str(body: dict[str, object], name: str) -> str:
    value = _opt_str(body, name)
    if value is None:
        raise AdminRequestError(f"{name} is missing")
    return value


def _wallet(body: dict[str, object]) -> str:
    wallet = (_opt_str(body, "wallet") or "SPOT").upper()
    if wallet not in WALLETS:
        raise AdminRequestError(f"wallet must be SPOT or FUTURES (got {wallet[:20]!r})")
    return wallet


def add_routes(app: web.Application, state: ServerState) -> None:
    """Mount the admin API on ``app``."""
    r = app.router
    r.add_post("/admin/v1/accounts", _wrap(state, create_account))
    r.add_get("/admin/v1/accounts", _wrap(state, list_accounts))
    r.add_post("/admin/v1/accounts/{account_id}/fund", _wrap(state, fund))
    r.add_get("/admin/v1/accounts/{account_id}/balances", _wrap(state, balances))
    r.add_post("/admin/v1/accounts/{account_id}/keys", _wrap(state, create_key))
    r.add_get("/admin/v1/accounts/{account_id}/keys", _wrap(state, list_keys))
    r.add_delete("/admin/v1/keys/{api_key}", _wrap(state, revoke_key))
    r.add_get("/admin/v1/counters", _wrap(state, counters))
    r.add_get("/admin/v1/demo-keys", _wrap(state, demo_keys))
