"""Binance's WebSocket API: Spot at ``/ws-api/v3``, USD-M Futures at ``/ws-fapi/v1``.

Requests are ``{"id", "method", "params"}``; answers ``{"id", "status": 200, "result", "rateLimits"}`` or a
status with an ``error`` object. Signed methods carry ``apiKey``, ``timestamp`` and ``signature`` in
params. ``userDataStream.subscribe.signature`` attaches the account's Spot user data to this session as
``{"subscriptionId": N, "event": {...}}`` frames.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web

from localex.engine.errors import ExchangeError
from localex.server import (
    auth,
    errors,
    routes_algo,
    routes_amend,
    routes_futures,
    routes_futures_account,
    routes_market,
    routes_spot,
)
from localex.server.errors import BinanceError
from localex.server.http import Call, check_param_names, error_response, from_engine
from localex.server.outbox import Outbox
from localex.server.params import Params
from localex.server.state import ServerState

log = logging.getLogger(__name__)
Fn = Callable[["Session", Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Method:
    """One WebSocket API method: its function, weight, whether signed, the permission, order or not."""

    fn: Fn
    weight: int | Callable[[dict[str, object]], int] = 1
    signed: bool = False
    permission: str | None = None
    order: bool = False
    rest: str | None = None  # "GET /api/v3/order": the Spot REST endpoint whose parameters it reads

    @property
    def params(self) -> frozenset[str] | None:
        """Every parameter name the method reads (None: unknown names are ignored, as on USD-M)."""
        return None if self.rest is None else _accepted_params(self.rest, self.signed)

    def weight_of(self, params: dict[str, object]) -> int:
        """The request weight of one call with ``params``."""
        return self.weight(params) if callable(self.weight) else self.weight


def _wsvalue(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "f").rstrip("0").rstrip(".") if value == value else "nan"
    return str(value)


class Session:
    """One WebSocket API connection."""

    def __init__(self, state: ServerState, market: str, outbox: Outbox, request: web.Request) -> None:
        self.state = state
        self.market = market
        self.outbox = outbox
        self.request = request
        self.ip = request.remote or "127.0.0.1"
        self._sub_ids = itertools.count(0)
        self.subscriptions: dict[int, str] = {}
        self.return_rate_limits = request.query.get("returnRateLimits", "true").lower() != "false"

    def push_event(self, subscription_id: int, event: dict[str, object]) -> None:
        """Deliver one Spot user-data event."""
        self.outbox.send(orjson.dumps({"subscriptionId": subscription_id, "event": event}).decode())

    def subscribe(self, account_id: str) -> int:
        """Attach ``account_id``'s user data; return the subscription id."""
        sub_id = next(self._sub_ids)
        self.subscriptions[sub_id] = account_id
        self.state.user_subscriptions.setdefault(account_id, set()).add((self, sub_id))
        return sub_id

    def unsubscribe(self, sub_id: int | None) -> None:
        """Detach one subscription (or all of them)."""
        ids = list(self.subscriptions) if sub_id is None else [sub_id]
        for i in ids:
            account_id = self.subscriptions.pop(i, None)
            if account_id is None:
                continue
            subs = self.state.user_subscriptions.get(account_id)
            if subs is not None:
                subs.discard((self, i))
                if not subs:
                    del self.state.user_subscriptions[account_id]

    def _rate_limits(self, now_ms: int, account_id: str | None, order: bool) -> list[dict[str, object]]:
        """The limits the request touched: order counts (order methods) then the IP's request weight."""
        limiter = self.state.limiter
        rows: list[dict[str, object]] = []
        if order and account_id is not None:
            counts = limiter.order_counts(account_id, self.market, now_ms)
            for row in limiter.exchange_info_limits(self.market):
                if row["rateLimitType"] != "ORDERS":
                    continue
                key = {"SECOND": "10S", "MINUTE": "1M", "DAY": "1D"}[str(row["interval"])]
                rows.append({**row, "count": counts.get(key, 0)})
        weight = limiter.exchange_info_limits(self.market)[0]
        rows.append({**weight, "count": limiter.used_weight(self.ip, self.market, now_ms)})
        return rows

    async def handle(self, text: str) -> dict[str, object]:
        """Answer one request frame (never raises)."""
        now_ms = time.time_ns() // 1_000_000
        ctx = _Context(show_limits=self.return_rate_limits)
        try:
            method, raw_params = self._parse(text, ctx)
            result = await self._dispatch(method, raw_params, now_ms, ctx)
            body: dict[str, object] = {"id": ctx.request_id, "status": 200, "result": result}
            if ctx.show_limits:
                body["rateLimits"] = self._rate_limits(now_ms, ctx.account_id, ctx.order)
            return body
        except ExchangeError as exc:
            err = from_engine(exc)
        except BinanceError as exc:
            err = exc
        except Exception:
            log.exception("ws-api internal error")
            self.state.counters.internal_errors += 1
            err = errors.unknown()
        self.state.counters.error(err.code)
        self.state.counters.bad(f"ws_api_{err.code}", err.msg)
        error = err.body()
        if err.retry_after is not None:
            error = {**error, "data": {"serverTime": now_ms, "retryAfter": now_ms + err.retry_after * 1000}}
        body = {"id": ctx.request_id, "status": err.status, "error": error}
        if ctx.show_limits:
            body["rateLimits"] = self._rate_limits(now_ms, ctx.account_id, ctx.order)
        return body

    def _parse(self, text: str, ctx: _Context) -> tuple[Method, dict[str, object]]:
        """The method and params of a request frame; raise Binance's error for a malformed one."""
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.state.counters.bad("ws_api_invalid_json")
            raise errors.invalid_json() from None
        if not isinstance(message, dict):
            raise BinanceError(-1000, "Invalid request: expected a JSON object.", 400)
        request_id = message.get("id")
        if (
            "id" not in message
            or isinstance(request_id, bool)
            or not (request_id is None or isinstance(request_id, int | str))
        ):
            raise BinanceError(-1102, "Mandatory parameter 'id' was not sent, was empty/null, or malformed.")
        ctx.request_id = request_id
        method_name = message.get("method")
        table = SPOT_METHODS if self.market == "spot" else FUTURES_METHODS
        if not isinstance(method_name, str) or not method_name:
            raise errors.mandatory("method")
        if method_name not in table:
            method_name = _VERSION_RE.sub("", method_name, count=1)  # "v3/order.place" is "order.place"
        if method_name not in table:
            raise errors.unsupported()
        raw_params = message.get("params", {})
        if not isinstance(raw_params, dict):
            raise errors.bad_param("params")
        flag = raw_params.get("returnRateLimits")
        if flag is not None:
            if not isinstance(flag, bool):
                raise errors.bad_param("returnRateLimits")
            ctx.show_limits = flag
        return table[method_name], raw_params

    async def _dispatch(self, method: Method, raw_params: dict[str, object], now_ms: int, ctx: _Context) -> object:
        self.state.limiter.charge_weight(self.ip, self.market, method.weight_of(raw_params), now_ms)
        account_id: str | None = None
        api_key = raw_params.get("apiKey") if isinstance(raw_params.get("apiKey"), str) else None
        if method.signed:
            cred = auth.verify_ws(raw_params, self.state.keys, now_ms, method.permission)
            account_id = cred.account_id
            ctx.account_id = account_id
        accepted = method.params
        if accepted is not None:  # Binance's parameter accounting, before anything changes (as REST's)
            check_param_names(accepted, raw_params)
        if method.order and account_id is not None:
            ctx.order = True
            self.state.limiter.charge_order(account_id, self.market, now_ms)
        skip = ("apiKey", "signature", "timestamp", "recvWindow", "returnRateLimits")
        params = Params({k: _wsvalue(v) for k, v in raw_params.items() if k not in skip})
        call = Call(
            self.request, params, self.state, account_id, api_key if isinstance(api_key, str) else None, now_ms, self.ip
        )
        return await method.fn(self, call)

    def close(self) -> None:
        """Forget every subscription of this session."""
        self.unsubscribe(None)


@dataclass(slots=True)
class _Context:
    """What one request turned out to be, for its ``rateLimits``: the signed account and whether it placed
    an order."""

    show_limits: bool = True
    request_id: object = None
    account_id: str | None = None
    order: bool = False


_VERSION_RE = re.compile(r"^v[0-9]+/")


def _acct(call: Call) -> str:
    assert call.account_id is not None
    return call.account_id


async def _ping(s: Session, c: Call) -> object:
    return {}


async def _time(s: Session, c: Call) -> object:
    return {"serverTime": c.now_ms}


async def _subscribe_signature(s: Session, c: Call) -> object:
    return {"subscriptionId": s.subscribe(_acct(c))}


async def _unsubscribe(s: Session, c: Call) -> object:
    s.unsubscribe(c.params.opt_int("subscriptionId", 0))
    return {}


async def _spot_account(s: Session, c: Call) -> object:
    return routes_spot.account_body(c, _acct(c), bool(c.params.opt_bool("omitZeroBalances")))


def _wrap_rest(fn: Callable[[Call], Awaitable[object]]) -> Fn:
    async def call(s: Session, c: Call) -> object:
        return await fn(c)

    return call


async def _futures_listen_key_start(s: Session, c: Call) -> object:
    cred = auth.require_api_key(c.api_key, s.state.keys, "FUTURES")
    return {"listenKey": s.state.listen_keys.start(cred.account_id, c.now_ms)}


async def _futures_listen_key_ping(s: Session, c: Call) -> object:
    cred = auth.require_api_key(c.api_key, s.state.keys, "FUTURES")
    key = s.state.listen_keys.keepalive(cred.account_id, c.now_ms)
    if key is None:
        raise errors.invalid_listen_key()
    return {"listenKey": key}


async def _futures_listen_key_stop(s: Session, c: Call) -> object:
    cred = auth.require_api_key(c.api_key, s.state.keys, "FUTURES")
    key = s.state.listen_keys.close(cred.account_id)
    if key is not None:
        s.state.hub.close_listen_key(key)
    return {}


async def _order_rate_limits(s: Session, c: Call) -> object:
    counts = s.state.limiter.order_counts(_acct(c), s.market, c.now_ms)
    rows = [r for r in s.state.limiter.exchange_info_limits(s.market) if r["rateLimitType"] == "ORDERS"]
    return [
        {**r, "count": counts.get({"SECOND": "10S", "MINUTE": "1M", "DAY": "1D"}[str(r["interval"])], 0)} for r in rows
    ]


def _all_symbols_weight(single: int, every: int) -> Callable[[dict[str, object]], int]:
    return lambda p: single if p.get("symbol") or p.get("symbols") else every


WS_COMMON_PARAMS = frozenset(("returnRateLimits",))
WS_SIGNING_PARAMS = WS_COMMON_PARAMS | {"apiKey", "timestamp", "recvWindow", "signature"}
_REST_PARAMS: dict[str, frozenset[str]] = {
    f"{e.method} {e.path}": e.params
    for e in routes_spot.ENDPOINTS + routes_amend.ENDPOINTS + routes_market.ENDPOINTS
    if e.params is not None
}


@functools.cache
def _accepted_params(rest: str, signed: bool) -> frozenset[str]:
    """The declared parameters of a REST endpoint plus the WebSocket API's own (built once per method)."""
    return _REST_PARAMS[rest] | (WS_SIGNING_PARAMS if signed else WS_COMMON_PARAMS)


SPOT_METHODS: dict[str, Method] = {
    "ping": Method(_ping),
    "time": Method(_time),
    "exchangeInfo": Method(_wrap_rest(routes_market.spot_exchange_info), 20, rest="GET /api/v3/exchangeInfo"),
    "depth": Method(_wrap_rest(routes_market.spot_depth), 5, rest="GET /api/v3/depth"),
    "trades.recent": Method(_wrap_rest(routes_market.spot_trades), 25, rest="GET /api/v3/trades"),
    "klines": Method(_wrap_rest(routes_market.spot_klines), 2, rest="GET /api/v3/klines"),
    "ticker.book": Method(_wrap_rest(routes_market.spot_book_ticker), 2, rest="GET /api/v3/ticker/bookTicker"),
    "ticker.price": Method(
        _wrap_rest(routes_market.spot_price), _all_symbols_weight(2, 4), rest="GET /api/v3/ticker/price"
    ),
    "ticker.24hr": Method(
        _wrap_rest(routes_market.spot_ticker_24h), _all_symbols_weight(2, 80), rest="GET /api/v3/ticker/24hr"
    ),
    "order.place": Method(
        lambda s, c: _async(routes_spot.place(c, c.params, _acct(c))), 1, True, "SPOT", True, rest="POST /api/v3/order"
    ),
    "order.test": Method(_wrap_rest(routes_spot.test_order), 1, True, "SPOT", rest="POST /api/v3/order/test"),
    "order.cancel": Method(
        lambda s, c: _async(routes_spot.cancel(c, c.params, _acct(c))), 1, True, "SPOT", rest="DELETE /api/v3/order"
    ),
    "order.cancelReplace": Method(
        lambda s, c: _async(routes_amend.cancel_replace(c, c.params, _acct(c))), 1, True, "SPOT", True
    ),
    "order.amend.keepPriority": Method(
        lambda s, c: _async(routes_amend.amend(c, c.params, _acct(c))),
        4,
        True,
        "SPOT",
        True,
        rest="PUT /api/v3/order/amend/keepPriority",
    ),
    "order.status": Method(
        lambda s, c: _async(routes_spot.query(c, c.params, _acct(c))), 4, True, rest="GET /api/v3/order"
    ),
    "openOrders.status": Method(
        lambda s, c: _async(routes_spot.open_orders_body(c, c.params, _acct(c))),
        _all_symbols_weight(6, 80),  # Binance's docs: 6 for one symbol, 80 without (as GET /api/v3/openOrders)
        True,
        rest="GET /api/v3/openOrders",
    ),
    "openOrders.cancelAll": Method(
        lambda s, c: _async(routes_spot.cancel_all_body(c, c.params, _acct(c))),
        1,
        True,
        "SPOT",
        rest="DELETE /api/v3/openOrders",
    ),
    "allOrders": Method(_wrap_rest(routes_spot.all_orders), 20, True, rest="GET /api/v3/allOrders"),
    "myTrades": Method(_wrap_rest(routes_spot.my_trades), 20, True, rest="GET /api/v3/myTrades"),
    "account.status": Method(_spot_account, 20, True, rest="GET /api/v3/account"),
    "account.commission": Method(_wrap_rest(routes_spot.commission), 20, True, rest="GET /api/v3/account/commission"),
    "account.rateLimits.orders": Method(_order_rate_limits, 40, True),
    "userDataStream.subscribe.signature": Method(_subscribe_signature, 2, True),
    "userDataStream.unsubscribe": Method(_unsubscribe, 2),
}

FUTURES_METHODS: dict[str, Method] = {
    "ping": Method(_ping),
    "time": Method(_time),
    "depth": Method(_wrap_rest(routes_market.futures_depth), 5),
    "ticker.book": Method(_wrap_rest(routes_market.futures_book_ticker), 2),
    "ticker.price": Method(_wrap_rest(routes_market.futures_price), 1),
    "order.place": Method(lambda s, c: _async(routes_futures.place(c, c.params, _acct(c))), 0, True, "FUTURES", True),
    "order.cancel": Method(lambda s, c: _async(routes_futures.cancel(c, c.params, _acct(c))), 1, True, "FUTURES"),
    "order.status": Method(lambda s, c: _async(routes_futures.query(c, c.params, _acct(c))), 1, True, "FUTURES"),
    "order.modify": Method(_wrap_rest(routes_futures.modify_order), 1, True, "FUTURES", True),
    "algoOrder.place": Method(lambda s, c: _async(routes_algo.place(c, c.params, _acct(c))), 0, True, "FUTURES", True),
    "algoOrder.cancel": Method(lambda s, c: _async(routes_algo.cancel(c, c.params, _acct(c))), 1, True, "FUTURES"),
    "account.status": Method(lambda s, c: _async(routes_futures_account.account_body(c, _acct(c))), 5, True, "FUTURES"),
    "v2/account.status": Method(
        lambda s, c: _async(routes_futures_account.account_body(c, _acct(c))), 5, True, "FUTURES"
    ),
    "account.balance": Method(
        lambda s, c: _async(routes_futures_account.balance_body(c, _acct(c))), 5, True, "FUTURES"
    ),
    "v2/account.balance": Method(
        lambda s, c: _async(routes_futures_account.balance_body(c, _acct(c))), 5, True, "FUTURES"
    ),
    "account.position": Method(_wrap_rest(routes_futures_account.position_risk), 5, True, "FUTURES"),
    "v2/account.position": Method(_wrap_rest(routes_futures_account.position_risk), 5, True, "FUTURES"),
    "userDataStream.start": Method(_futures_listen_key_start, 1),
    "userDataStream.ping": Method(_futures_listen_key_ping, 1),
    "userDataStream.stop": Method(_futures_listen_key_stop, 1),
}


async def _async(value: object) -> object:
    return value


async def serve_ws_api(request: web.Request, state: ServerState, market: str) -> web.StreamResponse:
    """The handler of ``/ws-api/v3`` (spot) and ``/ws-fapi/v1`` (futures).

    Before the upgrade: Binance's connection-attempt limit per IP (HTTP 429, -1034), and on Spot the
    connection's own request weight (2); ``max_ws_api_connections`` caps concurrent sessions.
    """
    ip = request.remote or "127.0.0.1"
    now_ms = time.time_ns() // 1_000_000
    try:
        if len(state.ws_api_sessions) >= state.config.max_ws_api_connections:
            raise errors.too_many_concurrent_connections(state.config.max_ws_api_connections)
        state.limiter.charge_connection(ip, f"ws-api:{market}", now_ms)
        if market == "spot":
            state.limiter.charge_weight(ip, market, state.config.rate_limits.ws_api_connect_weight, now_ms)
    except BinanceError as err:
        state.counters.bad("ws_api_connection_refused", err.msg)
        state.counters.error(err.code)
        return error_response(err)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1 << 16)
    await ws.prepare(request)
    session = Session(state, market, Outbox(ws, f"ws-api:{market}"), request)
    state.ws_api_sessions.add(session)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                reply = await session.handle(msg.data)
                session.outbox.send(orjson.dumps(reply).decode())
            elif msg.type == WSMsgType.BINARY:
                state.counters.bad("ws_api_binary_frame")
                session.outbox.send(
                    orjson.dumps(
                        {
                            "id": None,
                            "status": 400,
                            "error": {"code": -1000, "msg": "Invalid request: binary frames are not supported."},
                        }
                    ).decode()
                )
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        session.close()
        state.ws_api_sessions.discard(session)
        await session.outbox.close()
    return ws
