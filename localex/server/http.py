"""The REST plumbing shared by every Binance endpoint: parameters, weight, signing, errors, headers.

An :class:`Endpoint` declares one route the way Binance's docs do (method, path, weight, security type,
permission, whether it counts as an order); :func:`make_handler` wraps its function so that every request
is weighed, verified, answered in Binance's JSON and never produces a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from localex.engine.errors import ExchangeError
from localex.server import auth, errors
from localex.server.errors import BinanceError
from localex.server.params import Params
from localex.server.state import STATE_KEY, ServerState

log = logging.getLogger(__name__)

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"
UNAUTHORIZED_CODES = frozenset((-2014, -2015))


@dataclass(slots=True)
class Call:
    """One verified request as a handler sees it."""

    request: web.Request
    params: Params
    state: ServerState
    account_id: str | None
    api_key: str | None
    now_ms: int
    ip: str


Handler = Callable[[Call], Awaitable[object]]
WeightFn = Callable[[Params], int]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Binance REST route and how it is guarded."""

    method: str
    path: str
    market: str
    handler: Handler
    weight: int | WeightFn = 1
    security: str = NONE
    permission: str | None = None
    order: bool = False
    params: frozenset[str] | None = None


SIGNING_PARAMS = frozenset(("timestamp", "recvWindow", "signature"))


def check_unread(endpoint: Endpoint, sent: Mapping[str, str]) -> None:
    """Binance Spot's parameter accounting, before anything is read or changed.

    ``endpoint.params`` lists the parameters the endpoint reads (the signing parameters are added for
    SIGNED endpoints). More parameters than it declares: -1101 ``Too many parameters; expected 'N' and
    received 'M'.``; a name it does not read: -1104 ``Not all sent parameters were read; read 'N'
    parameter(s) but was sent 'M'.`` (both counts include ``signature``, as Binance's do). ``None`` means
    the endpoint's gateway ignores unknown names (USD-M futures and SAPI, see ``routes_*``).
    """
    if endpoint.params is None:
        return
    check_param_names(endpoint.params | SIGNING_PARAMS if endpoint.security == SIGNED else endpoint.params, sent)


def check_param_names(accepted: frozenset[str], sent: Iterable[str]) -> None:
    """-1101 when more names are sent than ``accepted`` holds, -1104 when any is not in it."""
    sent = list(sent)
    if len(sent) > len(accepted):
        raise errors.too_many_parameters_expected(len(accepted), len(sent))
    read = sum(1 for name in sent if name in accepted)
    if read < len(sent):
        raise errors.unread_params(read, len(sent))


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(err: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    """Binance's error body with its HTTP status (and ``Retry-After`` for 429/418)."""
    hdrs = dict(headers or {})
    if err.retry_after is not None:
        hdrs["Retry-After"] = str(err.retry_after)
    return json_response(err.body(), err.status, hdrs)


def from_engine(exc: ExchangeError) -> BinanceError:
    """An engine rejection as the server's error (401 for key errors, 400 otherwise)."""
    return BinanceError(exc.code, exc.msg, 401 if exc.code in UNAUTHORIZED_CODES else 400)


def client_ip(request: web.Request) -> str:
    """The peer address (the server only listens on loopback; no proxy headers are trusted)."""
    return request.remote or "127.0.0.1"


async def read_params(request: web.Request) -> tuple[dict[str, str], str, str]:
    """``(params, raw_query, raw_body)``; query and form body merged (query wins over the body, as on Binance).

    A name repeated within the query string or within the body: -1101 "Duplicate values for a parameter
    detected.".
    """
    raw_query = request.rel_url.raw_query_string
    raw_body = ""
    if request.can_read_body:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise errors.request_too_large("body", 413) from exc
        try:
            raw_body = body.decode()
        except UnicodeDecodeError as exc:
            raise errors.illegal_chars("body", "UTF-8 form data") from exc
    try:
        body_pairs = parse_qsl(raw_body, keep_blank_values=True)
        query_pairs = parse_qsl(raw_query, keep_blank_values=True)
    except ValueError as exc:
        raise errors.illegal_chars("query", "application/x-www-form-urlencoded") from exc
    merged = dict(body_pairs)
    query = dict(query_pairs)
    if len(merged) < len(body_pairs) or len(query) < len(query_pairs):
        raise errors.duplicate_params()
    merged.update(query)
    return merged, raw_query, raw_body


def _headers(state: ServerState, ip: str, market: str, account: str | None, now_ms: int) -> dict[str, str]:
    used = state.limiter.used_weight(ip, market, now_ms)
    headers = {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)}
    if account is not None:
        for interval, count in state.limiter.order_counts(account, market, now_ms).items():
            headers[f"X-MBX-ORDER-COUNT-{interval}"] = str(count)
    return headers


def make_handler(endpoint: Endpoint, state: ServerState) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap an endpoint function with Binance's request pipeline."""

    async def handle(request: web.Request) -> web.Response:
        state.counters.requests += 1
        now_ms = time.time_ns() // 1_000_000
        ip = client_ip(request)
        account: str | None = None
        try:
            raw, raw_query, raw_body = await read_params(request)
            params = Params(raw)
            weight = endpoint.weight(params) if callable(endpoint.weight) else endpoint.weight
            state.limiter.charge_weight(ip, endpoint.market, weight, now_ms)
            api_key = request.headers.get("X-MBX-APIKEY")
            if endpoint.security == SIGNED:
                cred = auth.verify_rest(raw_query, raw_body, api_key, raw, state.keys, now_ms, endpoint.permission)
                account = cred.account_id
            elif endpoint.security == USER_STREAM:
                cred = auth.require_api_key(api_key, state.keys, endpoint.permission)
                account = cred.account_id
            check_unread(endpoint, raw)
            if endpoint.order and account is not None:
                state.limiter.charge_order(account, endpoint.market, now_ms)
            call = Call(request, params, state, account, api_key, now_ms, ip)
            body = await endpoint.handler(call)
            return json_response(body, 200, _headers(state, ip, endpoint.market, account, now_ms))
        except ExchangeError as exc:
            err = from_engine(exc)
        except BinanceError as exc:
            err = exc
        except Exception:
            state.counters.internal_errors += 1
            log.exception("internal error in %s %s", request.method, request.path)
            err = errors.unknown()
        state.counters.error(err.code)
        state.counters.bad(f"rest_{err.code}", f"{request.method} {request.path}: {err.msg}")
        return error_response(err, _headers(state, ip, endpoint.market, account, now_ms))

    return handle


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods get Binance-shaped JSON; nothing escapes as a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        state: ServerState = request.app[STATE_KEY]
        state.counters.bad(f"http_{exc.status}", f"{request.method} {request.path}")
        if exc.status == 404:
            return error_response(errors.not_found())
        if exc.status == 405:
            return json_response({"code": -1000, "msg": f"Method {request.method} not allowed for this path."}, 405)
        return json_response({"code": -1000, "msg": exc.reason}, exc.status)
    except Exception:
        state = request.app[STATE_KEY]
        state.counters.internal_errors += 1
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(errors.unknown())
