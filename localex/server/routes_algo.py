"""USD-M conditional orders through Binance's Algo Order API (``/fapi/v1/algoOrder`` and friends).

Binance moved STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET off
``POST /fapi/v1/order`` (which now answers -4120) to the Algo Service: ``POST /fapi/v1/algoOrder`` with
``algoType=CONDITIONAL``, ``triggerPrice`` (not ``stopPrice``), ``activatePrice`` (not ``activationPrice``) and
``clientAlgoId`` (not ``newClientOrderId``); ``DELETE``/``GET /fapi/v1/algoOrder`` by ``algoId`` or
``clientAlgoId``; ``GET /fapi/v1/openAlgoOrders``, ``GET /fapi/v1/allAlgoOrders``, ``DELETE
/fapi/v1/algoOpenOrders``; the WebSocket API's ``algoOrder.place`` / ``algoOrder.cancel``; the user stream's
``ALGO_UPDATE``.

Here an algo order is the engine's pending stop order: ``algoId`` is its engine order id and ``clientAlgoId`` its
client order id. While it waits for its trigger it is not an order of the matching engine (``/fapi/v1/order``,
``openOrders`` and ``allOrders`` do not show it; the stream sends ``ALGO_UPDATE``, not ``ORDER_TRADE_UPDATE``).
Triggered, it becomes the order it stands for (``actualOrderId``), with the algo order's client id as its
``clientOrderId``, and the ordinary order endpoints and events take over; the algo order reads TRIGGERED, and
FINISHED once that order is closed.
"""

from __future__ import annotations

from localex.engine.errors import ExchangeError
from localex.engine.markets import SymbolSpec
from localex.engine.types import STOP_TYPES_USDM, Order, OrderRequest
from localex.server import errors, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, Call, Endpoint
from localex.server.order_params import POSITION_SIDES, SIDES, STP_MODES, TIFS, WORKING_TYPES, dec_param
from localex.server.params import Params
from localex.server.routes_spot import order_ref

USDM = "usdm"
PERM = "FUTURES"
ALGO_TYPES = frozenset(("CONDITIONAL",))
RESP_TYPES = frozenset(("ACK", "RESULT"))
CLOSED = frozenset(("FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"))


def is_algo(order: Order) -> bool:
    """A USD-M conditional order (placed through the Algo Order API)."""
    return order.market == USDM and (order.orig_type or order.type) in STOP_TYPES_USDM


def is_pending_algo(order: Order) -> bool:
    """An algo order still waiting for its trigger (not an order of the matching engine yet)."""
    return is_algo(order) and not order.is_working


def algo_status(order: Order) -> str:
    """NEW (waiting), CANCELED / EXPIRED (closed before its trigger), TRIGGERED, FINISHED (its order closed)."""
    if not order.is_working:
        if order.status in ("NEW", "PARTIALLY_FILLED"):
            return "NEW"
        return "CANCELED" if order.status == "CANCELED" else "EXPIRED"
    return "FINISHED" if order.status in CLOSED else "TRIGGERED"


def algo_request(params: Params) -> OrderRequest:
    """``POST /fapi/v1/algoOrder`` (and ``algoOrder.place``) parameters -> the engine's ``OrderRequest``."""
    params.enum("algoType", ALGO_TYPES, BinanceError(-1116, "Invalid algoType.", 400))
    order_type = params.str("type")
    if order_type not in STOP_TYPES_USDM:
        raise errors.invalid_order_type()
    return OrderRequest(
        market=USDM,
        symbol=params.symbol(),
        side=params.enum("side", SIDES, errors.invalid_side()),
        type=order_type,
        quantity=dec_param(params, "quantity"),
        price=dec_param(params, "price"),
        time_in_force=params.opt_enum("timeInForce", TIFS, errors.invalid_tif()),
        stop_price=dec_param(params, "triggerPrice"),
        client_order_id=params.opt_client_id("clientAlgoId"),
        reduce_only=bool(params.opt_bool("reduceOnly")),
        close_position=bool(params.opt_bool("closePosition")),
        position_side=params.opt_enum("positionSide", POSITION_SIDES) or "BOTH",
        callback_rate=dec_param(params, "callbackRate"),
        activation_price=dec_param(params, "activatePrice"),
        working_type=params.opt_enum("workingType", WORKING_TYPES) or "CONTRACT_PRICE",
        self_trade_prevention_mode=params.opt_enum("selfTradePreventionMode", STP_MODES),
    )


def algo_body(call: Call, order: Order, query: bool = False) -> dict[str, object]:
    """An algo order as Binance writes it (``query``: with the triggered order's id, price and quantity)."""
    spec = call.state.exchange.spec(USDM, order.symbol)
    kind = order.orig_type or order.type
    trailing = kind == "TRAILING_STOP_MARKET"
    body: dict[str, object] = {
        "algoId": order.order_id,
        "clientAlgoId": order.client_order_id,
        "algoType": "CONDITIONAL",
        "orderType": kind,
        "symbol": order.symbol,
        "side": order.side,
        "positionSide": order.position_side,
        "timeInForce": order.time_in_force or "GTC",
        "quantity": spec.fmt_qty(order.orig_qty),
        "algoStatus": algo_status(order),
        "triggerPrice": spec.fmt_price(order.stop_price),
        "price": spec.fmt_price(order.price if kind in ("STOP", "TAKE_PROFIT") else 0),
        "icebergQuantity": None,
        "selfTradePreventionMode": order.self_trade_prevention_mode,
        "workingType": order.working_type,
        "priceMatch": "NONE",
        "closePosition": order.close_position,
        "priceProtect": False,
        "reduceOnly": order.reduce_only,
        "activatePrice": spec.fmt_price(order.activation_price) if trailing and order.activation_price else "",
        "callbackRate": order.callback_rate if trailing else "",
        "createTime": wire.ms(order.time_ns),
        "updateTime": wire.ms(order.update_ns),
        "triggerTime": wire.ms(order.working_ns) if order.is_working else 0,
        "goodTillDate": 0,
    }
    if query:
        body["actualOrderId"] = str(order.order_id) if order.is_working else ""
        body["actualPrice"] = spec.fmt_avg_price(order.cum_quote, order.executed_qty) if order.is_working else ""
        body["executedQty"] = spec.fmt_qty(order.executed_qty)
    return body


def algo_update(order: Order, time_ns: int, spec: SymbolSpec) -> dict[str, object]:
    """The user stream's ``ALGO_UPDATE`` of an algo order."""
    kind = order.orig_type or order.type
    t = wire.ms(time_ns)
    working = order.is_working
    return {
        "e": "ALGO_UPDATE",
        "T": t,
        "E": t,
        "o": {
            "caid": order.client_order_id,
            "aid": order.order_id,
            "at": "CONDITIONAL",
            "o": kind,
            "s": order.symbol,
            "S": order.side,
            "ps": order.position_side,
            "f": order.time_in_force or "GTC",
            "q": spec.fmt_qty(order.orig_qty),
            "X": algo_status(order),
            "ai": str(order.order_id) if working else "",
            "ap": spec.fmt_avg_price(order.cum_quote, order.executed_qty) if working else spec.fmt_price(0),
            "aq": spec.fmt_qty(order.executed_qty),
            "act": order.type if working else "0",
            "tp": spec.fmt_price(order.stop_price),
            "p": spec.fmt_price(order.price if kind in ("STOP", "TAKE_PROFIT") else 0),
            "V": order.self_trade_prevention_mode,
            "wt": order.working_type,
            "pm": "NONE",
            "cp": order.close_position,
            "pP": False,
            "R": order.reduce_only,
            "tt": wire.ms(order.working_ns) if working else 0,
            "gtd": 0,
            "rm": "",
        },
    }


def _algo_ref(params: Params) -> tuple[int | None, str | None]:
    return order_ref(params, "algoId", "clientAlgoId")


def _find(call: Call, params: Params, account_id: str) -> Order:
    """The account's algo order named by ``algoId`` / ``clientAlgoId`` (-2013 when there is none)."""
    algo_id, client_id = _algo_ref(params)
    symbol = params.opt_symbol()
    ex = call.state.exchange
    markets = [symbol] if symbol is not None else [s.symbol for s in ex.specs(USDM)]
    for sym in markets:
        try:
            order = ex.get_order(account_id, USDM, sym, order_id=algo_id, client_order_id=client_id)
        except ExchangeError:
            continue
        if is_algo(order):
            return order
    raise errors.no_such_order()


def place(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Place an algo order (shared with the WebSocket API's ``algoOrder.place``)."""
    req = algo_request(params)
    params.opt_enum("newOrderRespType", RESP_TYPES, BinanceError(-1136, "Invalid newOrderRespType.", 400))
    result = call.state.exchange.place_order(account_id, req)
    return algo_body(call, result.order)


def cancel(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Cancel an algo order still waiting for its trigger (shared with ``algoOrder.cancel``); -2011 otherwise."""
    try:
        order = _find(call, params, account_id)
    except BinanceError:
        raise errors.cancel_rejected() from None
    if not is_pending_algo(order) or order.status not in ("NEW", "PARTIALLY_FILLED"):
        raise errors.cancel_rejected()
    done = call.state.exchange.cancel_order(account_id, USDM, order.symbol, order_id=order.order_id)
    return {"algoId": done.order_id, "clientAlgoId": done.client_order_id, "code": "200", "msg": "success"}


async def new_algo_order(call: Call) -> object:
    """POST /fapi/v1/algoOrder."""
    assert call.account_id is not None
    return place(call, call.params, call.account_id)


async def cancel_algo_order(call: Call) -> object:
    """DELETE /fapi/v1/algoOrder."""
    assert call.account_id is not None
    return cancel(call, call.params, call.account_id)


async def query_algo_order(call: Call) -> object:
    """GET /fapi/v1/algoOrder."""
    assert call.account_id is not None
    return algo_body(call, _find(call, call.params, call.account_id), query=True)


def _pending(call: Call, account_id: str, symbol: str | None) -> list[Order]:
    ex = call.state.exchange
    if symbol is not None:
        ex.spec(USDM, symbol)
    return [o for o in ex.open_orders(account_id, USDM, symbol) if is_pending_algo(o)]


async def open_algo_orders(call: Call) -> object:
    """GET /fapi/v1/openAlgoOrders: the algo orders waiting for their trigger."""
    assert call.account_id is not None
    return [algo_body(call, o) for o in _pending(call, call.account_id, call.params.opt_symbol())]


async def all_algo_orders(call: Call) -> object:
    """GET /fapi/v1/allAlgoOrders: every algo order of the symbol (``algoId`` from, time range, ``limit``)."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    start, end = p.opt_int("startTime", 0), p.opt_int("endTime", 0)
    limit = p.opt_int("limit", 1, 1000) or 500
    rows = call.state.exchange.all_orders(
        call.account_id,
        USDM,
        symbol,
        order_id=p.opt_int("algoId", 0),
        start_ns=start * 1_000_000 if start is not None else None,
        end_ns=end * 1_000_000 if end is not None else None,
        limit=100_000,
    )
    algos = [o for o in rows if is_algo(o)]
    return [algo_body(call, o, query=True) for o in algos[:limit]]


async def cancel_all_algo(call: Call) -> object:
    """DELETE /fapi/v1/algoOpenOrders: cancel every waiting algo order of the symbol."""
    assert call.account_id is not None
    symbol = call.params.symbol()
    for o in _pending(call, call.account_id, symbol):
        call.state.exchange.cancel_order(call.account_id, USDM, symbol, order_id=o.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def open_orders_weight(p: Params) -> int:
    return 1 if p.opt_str("symbol") else 40


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/fapi/v1/algoOrder", USDM, new_algo_order, 0, SIGNED, PERM, order=True),
    Endpoint("DELETE", "/fapi/v1/algoOrder", USDM, cancel_algo_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/algoOrder", USDM, query_algo_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/openAlgoOrders", USDM, open_algo_orders, open_orders_weight, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/allAlgoOrders", USDM, all_algo_orders, 5, SIGNED, PERM),
    Endpoint("DELETE", "/fapi/v1/algoOpenOrders", USDM, cancel_all_algo, 1, SIGNED, PERM),
]
