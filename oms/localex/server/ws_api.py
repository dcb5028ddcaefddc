"""Binance's WebSocket API: Spot at ``/ws-api/v3``, USD-M Futures at ``/ws-fapi/v1``.

Requests are ``{"id", "method", "params"}``; answers ``{"id", "status": 200, "result", "rateLimits"}`` or a
status with an ``error`` object. Signed methods carry ``apiKey``, ``timestamp`` and ``signature`` in
params. ``userDataStream.subscribe.signature`` attaches the account's Spot user data to this session as
``{"subscriptionId": N, "event": {...}}`` frames.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web

from oms.localex.engine.errors import ExchangeError
from oms.localex.server import auth, errors, routes_futures, routes_market, routes_spot
from oms.localex.server.errors import BinanceError
from oms.localex.server.http import Call, from_engine
from oms.localex.server.outbox import Outbox
from oms.localex.server.params import Params
from oms.localex.server.state import ServerState

log = logging.getLogger(__name__)
Fn = Callable[["Session", Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Method:
    """One WebSocket API method: its function, weight, whether signed, the permission, order or not."""

    fn: Fn
    weight: int = 1
    signed: bool = False
    permission: str | None = None
    order: bool = False


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

    def _rate_limits(self, now_ms: int) -> list[dict[str, object]]:
        used = self.state.limiter.used_weight(self.ip, self.market, now_ms)
        limit = self.state.limiter.exchange_info_limits(self.market)[0]["limit"]
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit,
                 "count": used}]

    async def handle(self, text: str) -> dict[str, object]:
        """Answer one request frame (never raises)."""
        now_ms = time.time_ns() // 1_000_000
        request_id: object = None
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.state.counters.bad("ws_api_invalid_json")
                raise BinanceError(-1000, "Invalid JSON: message could not be parsed.", 400) from None
            if not isinstance(message, dict):
                raise BinanceError(-1000, "Invalid request: expected a JSON object.", 400)
            request_id = message.get("id")
            if not isinstance(request_id, int | str) or isinstance(request_id, bool):
                raise BinanceError(-1102, "Mandatory parameter 'id' was not sent, was empty/null, or malformed.")
            method_name = message.get("method")
            table = SPOT_METHODS if self.market == "spot" else FUTURES_METHODS
            if not isinstance(method_name, str) or not method_name:
                raise errors.mandatory("method")
            if method_name not in table:
                raise errors.unsupported()
            raw_params = message.get("params", {})
            if not isinstance(raw_params, dict):
                raise errors.bad_param("params")
            result = await self._dispatch(table[method_name], raw_params, now_ms)
            return {"id": request_id, "status": 200, "result": result, "rateLimits": self._rate_limits(now_ms)}
        except ExchangeError as exc:
            err = from_engine(exc)
        except BinanceError as exc:
            err = exc
        except Exception:  # noqa: BLE001 - one bad request never closes the session or the server
            log.exception("ws-api internal error")
            self.state.counters.internal_errors += 1
            err = errors.unknown()
        self.state.counters.error(err.code)
        self.state.counters.bad(f"ws_api_{err.code}", err.msg)
        body: dict[str, object] = {"id": request_id, "status": err.status, "error": err.body(),
                                   "rateLimits": self._rate_limits(now_ms)}
        if err.retry_after is not None:
            body["error"] = {**err.body(), "data": {"retryAfter": now_ms + err.retry_after * 1000}}
        return body

    async def _dispatch(self, method: Method, raw_params: dict[str, object], now_ms: int) -> object:
        self.state.limiter.charge_weight(self.ip, self.market, method.weight, now_ms)
        account_id: str | None = None
        api_key = raw_params.get("apiKey") if isinstance(raw_params.get("apiKey"), str) else None
        if method.signed:
            cred = auth.verify_ws(raw_params, self.state.keys, now_ms, method.permission)
            account_id = cred.account_id
        if method.order and account_id is not None:
            self.state.limiter.charge_order(account_id, self.market, now_ms)
        skip = ("apiKey", "signature", "timestamp", "recvWindow")
        params = Params({k: _wsvalue(v) for k, v in raw_params.items() if k not in skip})
        call = Call(self.request, params, self.state, account_id, api_key if isinstance(api_key, str) else None,
                    now_ms, self.ip)
        return await method.fn(self, call)

    def close(self) -> None:
        """Forget every subscription of this session."""
        self.unsubscribe(None)


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
    cred = auth.require_api_key(c.api_key, s.state.keys)
    return {"listenKey": s.state.listen_keys.start(cred.account_id, c.now_ms)}


async def _futures_listen_key_ping(s: Session, c: Call) -> object:
    cred = auth.require_api_key(c.api_key, s.state.keys)
    key = s.state.listen_keys.keepalive(cred.account_id, c.now_ms)
    if key is None:
        raise errors.invalid_listen_key()
    return {"listenKey": key}


async def _futures_listen_key_stop(s: Session, c: Call) -> object:
    cred = auth.require_api_key(c.api_key, s.state.keys)
    key = s.state.listen_keys.close(cred.account_id)
    if key is not None:
        s.state.hub.close_listen_key(key)
    return {}


SPOT_METHODS: dict[str, Method] = {
    "ping": Method(_ping),
    "time": Method(_time),
    "exchangeInfo": Method(_wrap_rest(routes_market.spot_exchange_info), 20),
    "depth": Method(_wrap_rest(routes_market.spot_depth), 5),
    "trades.recent": Method(_wrap_rest(routes_market.spot_trades), 25),
    "klines": Method(_wrap_rest(routes_market.spot_klines), 2),
    "ticker.book": Method(_wrap_rest(routes_market.spot_book_ticker), 2),
    "ticker.price": Method(_wrap_rest(routes_market.spot_price), 2),
    "order.place": Method(lambda s, c: _async(routes_spot.place(c, c.params, _acct(c))), 1, True, "SPOT", True),
    "order.test": Method(_wrap_rest(routes_spot.test_order), 1, True, "SPOT"),
    "order.cancel": Method(lambda s, c: _async(routes_spot.cancel(c, c.params, _acct(c))), 1, True, "SPOT"),
    "order.status": Method(lambda s, c: _async(routes_spot.query(c, c.params, _acct(c))), 4, True),
    "openOrders.status": Method(lambda s, c: _async(routes_spot.open_orders_body(c, c.params, _acct(c))), 6, True),
    "openOrders.cancelAll": Method(lambda s, c: _async(routes_spot.cancel_all_body(c, c.params, _acct(c))), 1, True,
                                   "SPOT"),
    "allOrders": Method(_wrap_rest(routes_spot.all_orders), 20, True),
    "myTrades": Method(_wrap_rest(routes_spot.my_trades), 20, True),
    "account.status": Method(_spot_account, 20, True),
    "userDataStream.subscribe.signature": Method(_subscribe_signature, 2, True),
    "userDataStream.unsubscribe": Method(_unsubscribe, 2),
}

FUTURES_METHODS: dict[str, Method] = {
    "ping": Method(_ping),
    "time": Method(_time),
    "depth": Method(_wrap_rest(routes_market.futures_depth), 5),
    "ticker.book": Method(_wrap_rest(routes_market.futures_book_ticker), 2),
    "ticker.price": Method(_wrap_rest(routes_market.futures_price), 1),
    "order.place": Method(lambda s, c: _async(routes_futures.place(c, c.params, _acct(c))), 0, True, "FUTURES",
                          True),
    "order.cancel": Method(lambda s, c: _async(routes_futures.cancel(c, c.params, _acct(c))), 1, True, "FUTURES"),
    "order.status": Method(lambda s, c: _async(routes_futures.query(c, c.params, _acct(c))), 1, True),
    "order.modify": Method(_wrap_rest(routes_futures.modify_order), 1, True, "FUTURES", True),
    "account.status": Method(lambda s, c: _async(routes_futures.account_body(c, _acct(c))), 5, True),
    "v2/account.status": Method(lambda s, c: _async(routes_futures.account_body(c, _acct(c))), 5, True),
    "account.balance": Method(lambda s, c: _async(routes_futures.balance_body(c, _acct(c))), 5, True),
    "v2/account.balance": Method(lambda s, c: _async(routes_futures.balance_body(c, _acct(c))), 5, True),
    "account.position": Method(_wrap_rest(routes_futures.position_risk), 5, True),
    "v2/account.position": Method(_wrap_rest(routes_futures.position_risk), 5, True),
    "userDataStream.start": Method(_futures_listen_key_start, 1),
    "userDataStream.ping": Method(_futures_listen_key_ping, 1),
    "userDataStream.stop": Method(_futures_listen_key_stop, 1),
}


async def _async(value: object) -> object:
    return value


async def serve_ws_api(request: web.Request, state: ServerState, market: str) -> web.StreamResponse:
    """The handler of ``/ws-api/v3`` (spot) and ``/ws-fapi/v1`` (futures)."""
    if len(state.ws_api_sessions) >= state.config.max_ws_api_connections:
        state.counters.bad("ws_api_too_many_connections")
        return web.Response(status=429, content_type="application/json",
                            body=orjson.dumps({"code": -1003, "msg": "Too many connections."}))
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
                session.outbox.send(orjson.dumps({"id": None, "status": 400, "error": {
                    "code": -1000, "msg": "Invalid request: binary frames are not supported."}}).decode())
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        session.close()
        state.ws_api_sessions.discard(session)
        await session.outbox.close()
    return ws
