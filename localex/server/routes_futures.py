"""USD-M Futures trading endpoints (``/fapi/v1``): orders, their queries, fills, the user stream's listenKey.

The account side (positions, balances, settings, income) is ``localex.server.routes_futures_account``.
"""

from __future__ import annotations

import orjson

from localex.engine.errors import ExchangeError
from localex.engine.types import OrderResult
from localex.server import errors, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, USER_STREAM, Call, Endpoint
from localex.server.order_params import futures_order_request
from localex.server.params import CLIENT_ID_RE, Params
from localex.server.routes_algo import is_pending_algo
from localex.server.routes_spot import ns, order_ref

USDM = "usdm"
PERM = "FUTURES"
RESP_TYPES = frozenset(("ACK", "RESULT"))


def _resp_type(params: Params) -> str:
    """USD-M ``newOrderRespType``: ACK (the default) or RESULT."""
    return (
        params.opt_enum("newOrderRespType", RESP_TYPES, BinanceError(-1136, "Invalid newOrderRespType.", 400)) or "ACK"
    )


def _order_body(call: Call, result: OrderResult, resp_type: str) -> dict[str, object]:
    """A new order's response: RESULT is the order after matching; ACK is the order as accepted (NEW, nothing
    executed yet), which is what Binance answers by default, before the matching engine reports fills."""
    spec = call.state.exchange.spec(USDM, result.order.symbol)
    body = wire.futures_order(result.order, spec, with_time=False)
    if resp_type == "ACK":
        body.update(
            {
                "status": "NEW",
                "avgPrice": spec.fmt_avg_price(0, 0),
                "executedQty": spec.fmt_qty(0),
                "cumQty": spec.fmt_qty(0),
                "cumQuote": spec.fmt_amount(0),
                "updateTime": wire.ms(result.order.time_ns),
            }
        )
    return body


def place(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Place a futures order (shared with the WebSocket API)."""
    req = futures_order_request(params)
    resp_type = _resp_type(params)
    result = call.state.exchange.place_order(account_id, req)
    return _order_body(call, result, resp_type)


async def new_order(call: Call) -> object:
    """POST /fapi/v1/order."""
    assert call.account_id is not None
    return place(call, call.params, call.account_id)


async def test_order(call: Call) -> object:
    """POST /fapi/v1/order/test."""
    assert call.account_id is not None
    call.state.exchange.test_order(call.account_id, futures_order_request(call.params))
    _resp_type(call.params)
    return {}


def _refuse_pending_algo(call: Call, account_id: str, symbol: str, order_id: int | None, client_id: str | None) -> None:
    """-2011 for an algo order still waiting for its trigger: it is not an order of the matching engine yet
    (``DELETE /fapi/v1/algoOrder`` cancels it)."""
    try:
        order = call.state.exchange.get_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    except ExchangeError:
        return  # unknown: the cancel itself answers
    if is_pending_algo(order):
        raise errors.cancel_rejected()


def cancel(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Cancel one futures order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    _refuse_pending_algo(call, account_id, symbol, order_id, client_id)
    order = call.state.exchange.cancel_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol), with_time=False)


async def cancel_order(call: Call) -> object:
    """DELETE /fapi/v1/order."""
    assert call.account_id is not None
    return cancel(call, call.params, call.account_id)


def query(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Query one futures order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    order = call.state.exchange.get_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    if is_pending_algo(order):  # waiting for its trigger: only GET /fapi/v1/algoOrder knows it
        raise errors.no_such_order()
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol))


async def query_order(call: Call) -> object:
    """GET /fapi/v1/order."""
    assert call.account_id is not None
    return query(call, call.params, call.account_id)


async def open_order(call: Call) -> object:
    """GET /fapi/v1/openOrder: one open order, -2013 if it is not open."""
    assert call.account_id is not None
    body = query(call, call.params, call.account_id)
    if body["status"] not in ("NEW", "PARTIALLY_FILLED"):
        raise errors.no_such_order()
    return body


async def modify_order(call: Call) -> object:
    """PUT /fapi/v1/order."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    order_id, client_id = order_ref(p)
    order = call.state.exchange.modify_order(
        call.account_id,
        USDM,
        symbol,
        order_id=order_id,
        client_order_id=client_id,
        side=p.str("side"),
        quantity=str(p.decimal("quantity")),
        price=str(p.decimal("price")),
    )
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol), with_time=False)


async def open_orders(call: Call) -> object:
    """GET /fapi/v1/openOrders."""
    assert call.account_id is not None
    symbol = call.params.opt_symbol()
    ex = call.state.exchange
    if symbol is not None:
        ex.spec(USDM, symbol)
    return [
        wire.futures_order(o, ex.spec(USDM, o.symbol))
        for o in ex.open_orders(call.account_id, USDM, symbol)
        if not is_pending_algo(o)
    ]


async def cancel_all(call: Call) -> object:
    """DELETE /fapi/v1/allOpenOrders (algo orders waiting for their trigger stay: ``DELETE
    /fapi/v1/algoOpenOrders`` cancels those)."""
    assert call.account_id is not None
    symbol = call.params.symbol()
    ex = call.state.exchange
    ex.spec(USDM, symbol)
    open_now = ex.open_orders(call.account_id, USDM, symbol)
    if not any(is_pending_algo(o) for o in open_now):
        ex.cancel_all(call.account_id, USDM, symbol)
    else:
        for o in open_now:
            if not is_pending_algo(o):
                ex.cancel_order(call.account_id, USDM, symbol, order_id=o.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def batch_orders(call: Call) -> object:
    """POST /fapi/v1/batchOrders (at most 5; each result an order or an error object)."""
    assert call.account_id is not None
    items = call.params.opt_json_list("batchOrders")
    if items is None:
        raise errors.mandatory("batchOrders")
    if not 1 <= len(items) <= 5:
        raise BinanceError(-1130, "Data sent for parameter 'batchOrders' is not valid.", 400)
    ex = call.state.exchange
    reqs = []
    resp_types: list[str] = []
    out: list[object] = []
    bad: dict[int, dict[str, object]] = {}
    for i, item in enumerate(items):
        try:
            item_params = Params({k: _str(v) for k, v in item.items()})
            reqs.append(futures_order_request(item_params))
            resp_types.append(_resp_type(item_params))
        except BinanceError as exc:
            bad[i] = exc.body()
            reqs.append(None)
            resp_types.append("ACK")
    valid = [r for r in reqs if r is not None]
    call.state.limiter.charge_order(call.account_id, USDM, call.now_ms, max(0, len(valid) - 1))
    results = iter(ex.batch_orders(call.account_id, valid) if valid else [])
    for i, req in enumerate(reqs):
        if req is None:
            out.append(bad[i])
            continue
        res = next(results)
        out.append(res.to_wire() if isinstance(res, Exception) else _order_body(call, res, resp_types[i]))
    return out


def _str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def cancel_batch(call: Call) -> object:
    """DELETE /fapi/v1/batchOrders (orderIdList or origClientOrderIdList)."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    ids = _order_ids(p.opt_str("orderIdList"))
    client_ids = _client_ids(p.opt_str("origClientOrderIdList"))
    if not ids and not client_ids:
        raise BinanceError(
            -1102, "Param 'origClientOrderIdList' or 'orderIdList' must be sent, but both were empty/null!", 400
        )
    ex = call.state.exchange
    spec = ex.spec(USDM, symbol)
    out: list[object] = []
    refs: list[tuple[int | None, str | None]] = [(i, None) for i in ids]
    refs += [(None, c) for c in client_ids]
    for order_id, client_id in refs:
        try:
            _refuse_pending_algo(call, call.account_id, symbol, order_id, client_id)
            order = ex.cancel_order(call.account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
            out.append(wire.futures_order(order, spec, with_time=False))
        except BinanceError as exc:
            out.append(exc.body())
        except ExchangeError as exc:
            out.append(exc.to_wire())
    return out


def _json_list(raw: str | None, name: str) -> list[object]:
    """A JSON list of at most 10 items; -1130 for the parameter otherwise."""
    if raw is None:
        return []
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_param(name) from exc
    if not isinstance(parsed, list) or len(parsed) > 10:
        raise errors.bad_param(name)
    return parsed


def _order_ids(raw: str | None) -> list[int]:
    """``orderIdList``: positive integers, checked whole before any order is touched.

    ``[null]``, ``["a"]``, ``[true]`` or ``[1.5]`` is -1130 for the list and cancels nothing (``true`` is not
    order 1, as Python's ``int(True)`` would have it).
    """
    items = _json_list(raw, "orderIdList")
    ids = [i for i in items if type(i) is int and 0 < i < 2**63]
    if len(ids) < len(items):
        raise errors.bad_param("orderIdList")
    return ids


def _client_ids(raw: str | None) -> list[str]:
    """``origClientOrderIdList``: client order ids in Binance's legal range, checked whole."""
    items = _json_list(raw, "origClientOrderIdList")
    ids = [c for c in items if isinstance(c, str) and CLIENT_ID_RE.match(c)]
    if len(ids) < len(items):
        raise errors.bad_param("origClientOrderIdList")
    return ids


async def all_orders(call: Call) -> object:
    """GET /fapi/v1/allOrders."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    spec = call.state.exchange.spec(USDM, symbol)
    orders = call.state.exchange.all_orders(
        call.account_id,
        USDM,
        symbol,
        order_id=p.opt_int("orderId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return [wire.futures_order(o, spec) for o in orders if not is_pending_algo(o)]


async def user_trades(call: Call) -> object:
    """GET /fapi/v1/userTrades."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    spec = call.state.exchange.spec(USDM, symbol)
    fills = call.state.exchange.my_trades(
        call.account_id,
        USDM,
        symbol,
        order_id=p.opt_int("orderId", 0),
        from_id=p.opt_int("fromId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return [wire.futures_user_trade(f, spec) for f in fills]


async def listen_key_start(call: Call) -> object:
    """POST /fapi/v1/listenKey."""
    assert call.account_id is not None
    return {"listenKey": call.state.listen_keys.start(call.account_id, call.now_ms)}


async def listen_key_keepalive(call: Call) -> object:
    """PUT /fapi/v1/listenKey."""
    assert call.account_id is not None
    key = call.state.listen_keys.keepalive(call.account_id, call.now_ms)
    if key is None:
        raise BinanceError(-1125, "This listenKey does not exist.", 400)
    return {"listenKey": key}


async def listen_key_close(call: Call) -> object:
    """DELETE /fapi/v1/listenKey."""
    assert call.account_id is not None
    key = call.state.listen_keys.close(call.account_id)
    if key is not None:
        call.state.hub.close_listen_key(key)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/fapi/v1/order", USDM, new_order, 0, SIGNED, PERM, order=True),
    Endpoint("POST", "/fapi/v1/order/test", USDM, test_order, 0, SIGNED, PERM),
    Endpoint("PUT", "/fapi/v1/order", USDM, modify_order, 1, SIGNED, PERM, order=True),
    Endpoint("DELETE", "/fapi/v1/order", USDM, cancel_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/order", USDM, query_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/openOrder", USDM, open_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/openOrders", USDM, open_orders, lambda p: 1 if p.opt_str("symbol") else 40, SIGNED, PERM),
    Endpoint("DELETE", "/fapi/v1/allOpenOrders", USDM, cancel_all, 1, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/batchOrders", USDM, batch_orders, 5, SIGNED, PERM, order=True),
    Endpoint("DELETE", "/fapi/v1/batchOrders", USDM, cancel_batch, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/allOrders", USDM, all_orders, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/userTrades", USDM, user_trades, 5, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/listenKey", USDM, listen_key_start, 1, USER_STREAM, PERM),
    Endpoint("PUT", "/fapi/v1/listenKey", USDM, listen_key_keepalive, 1, USER_STREAM, PERM),
    Endpoint("DELETE", "/fapi/v1/listenKey", USDM, listen_key_close, 1, USER_STREAM, PERM),
]
