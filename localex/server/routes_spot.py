"""Spot account and trading endpoints (``/api/v3``): account, order, openOrders, allOrders, myTrades."""

from __future__ import annotations

import secrets
import zlib

from localex.engine.types import Order
from localex.server import errors, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, Call, Endpoint
from localex.server.order_params import (
    SPOT_NEW_ORDER_PARAMS,
    SPOT_TEST_ORDER_PARAMS,
    resp_type,
    spot_order_request,
)
from localex.server.params import Params

SPOT = "spot"
PERM_SPOT = "SPOT"
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CANCEL_RESTRICTIONS = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}


def new_client_id() -> str:
    """A Binance-style generated client order id (22 characters)."""
    return "".join(secrets.choice(ID_CHARS) for _ in range(22))


def order_ref(
    params: Params, id_name: str = "orderId", client_name: str = "origClientOrderId"
) -> tuple[int | None, str | None]:
    """``(orderId, origClientOrderId)``; at least one is mandatory."""
    order_id = params.opt_int(id_name, 0)
    client_id = params.opt_str(client_name)
    if order_id is None and client_id is None:
        raise BinanceError(-1102, f"Param '{client_name}' or '{id_name}' must be sent, but both were empty/null!", 400)
    return order_id, client_id


def ns(ms_value: int | None) -> int | None:
    """Milliseconds (wire) to nanoseconds (engine)."""
    return None if ms_value is None else ms_value * 1_000_000


def account_body(call: Call, account_id: str, omit_zero: bool) -> dict[str, object]:
    """GET /api/v3/account body (also the WebSocket API's ``account.status``)."""
    balances = call.state.exchange.balances(account_id, "SPOT")
    rows = [wire.spot_balance(b) for b in balances if not (omit_zero and b.free == 0 and b.locked == 0)]
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": "0.00100000",
            "taker": "0.00100000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": call.now_ms,
        "accountType": "SPOT",
        "balances": rows,
        "permissions": ["SPOT"],
        "uid": zlib.crc32(account_id.encode()),
    }


async def account(call: Call) -> object:
    """GET /api/v3/account."""
    assert call.account_id is not None
    return account_body(call, call.account_id, bool(call.params.opt_bool("omitZeroBalances")))


def place(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Place a spot order; the FULL/RESULT/ACK response (shared with the WebSocket API)."""
    req = spot_order_request(params)
    result = call.state.exchange.place_order(account_id, req)
    spec = call.state.exchange.spec(SPOT, req.symbol)
    return wire.spot_new_order(result.order, result.fills, spec, resp_type(params, req.type))


async def new_order(call: Call) -> object:
    """POST /api/v3/order."""
    assert call.account_id is not None
    return place(call, call.params, call.account_id)


async def test_order(call: Call) -> object:
    """POST /api/v3/order/test: every check, nothing placed."""
    assert call.account_id is not None
    req = spot_order_request(call.params)
    call.state.exchange.test_order(call.account_id, req)
    if call.params.opt_bool("computeCommissionRates"):
        return {
            "standardCommissionForOrder": {"maker": "0.00100000", "taker": "0.00100000"},
            "specialCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
            "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0.25000000",
            },
        }
    return {}


def cancel(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Cancel one spot order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    new_id = params.opt_client_id("newClientOrderId") or new_client_id()
    restriction = params.opt_enum(
        "cancelRestrictions",
        frozenset(CANCEL_RESTRICTIONS),
        BinanceError(-1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.", 400),
    )
    ex = call.state.exchange
    if restriction is not None:
        current = ex.get_order(account_id, SPOT, symbol, order_id=order_id, client_order_id=client_id)
        if current.status != CANCEL_RESTRICTIONS[restriction]:
            raise BinanceError(-2011, "Order was not canceled due to cancel restrictions.", 400)
    order = ex.cancel_order(account_id, SPOT, symbol, order_id=order_id, client_order_id=client_id)
    call.state.cancel_client_ids[(account_id, order.order_id)] = new_id  # its executionReport's ``c``
    spec = ex.spec(SPOT, symbol)
    return wire.spot_cancel(order, spec, order.client_order_id, new_id, call.now_ms)


async def cancel_order(call: Call) -> object:
    """DELETE /api/v3/order."""
    assert call.account_id is not None
    return cancel(call, call.params, call.account_id)


def query(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Query one spot order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    order = call.state.exchange.get_order(account_id, SPOT, symbol, order_id=order_id, client_order_id=client_id)
    return wire.spot_order(order, call.state.exchange.spec(SPOT, symbol))


async def query_order(call: Call) -> object:
    """GET /api/v3/order."""
    assert call.account_id is not None
    return query(call, call.params, call.account_id)


def _rows(call: Call, orders: list[Order]) -> list[dict[str, object]]:
    ex = call.state.exchange
    return [wire.spot_order(o, ex.spec(SPOT, o.symbol)) for o in orders]


def open_orders_body(call: Call, params: Params, account_id: str) -> list[dict[str, object]]:
    """Open spot orders, of one symbol or all (shared with the WebSocket API)."""
    symbol = params.opt_symbol()
    if symbol is not None:
        call.state.exchange.spec(SPOT, symbol)
    return _rows(call, call.state.exchange.open_orders(account_id, SPOT, symbol))


async def open_orders(call: Call) -> object:
    """GET /api/v3/openOrders."""
    assert call.account_id is not None
    return open_orders_body(call, call.params, call.account_id)


def cancel_all_body(call: Call, params: Params, account_id: str) -> list[dict[str, object]]:
    """Cancel every open order of a symbol (shared with the WebSocket API)."""
    symbol = params.symbol()
    spec = call.state.exchange.spec(SPOT, symbol)
    canceled = call.state.exchange.cancel_all(account_id, SPOT, symbol)
    if not canceled:
        raise errors.cancel_rejected()
    rows = []
    for o in canceled:
        new_id = new_client_id()
        call.state.cancel_client_ids[(account_id, o.order_id)] = new_id
        rows.append(wire.spot_cancel(o, spec, o.client_order_id, new_id, call.now_ms))
    return rows


async def cancel_all(call: Call) -> object:
    """DELETE /api/v3/openOrders."""
    assert call.account_id is not None
    return cancel_all_body(call, call.params, call.account_id)


async def all_orders(call: Call) -> object:
    """GET /api/v3/allOrders."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    call.state.exchange.spec(SPOT, symbol)
    orders = call.state.exchange.all_orders(
        call.account_id,
        SPOT,
        symbol,
        order_id=p.opt_int("orderId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return _rows(call, orders)


async def my_trades(call: Call) -> object:
    """GET /api/v3/myTrades."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    spec = call.state.exchange.spec(SPOT, symbol)
    fills = call.state.exchange.my_trades(
        call.account_id,
        SPOT,
        symbol,
        order_id=p.opt_int("orderId", 0),
        from_id=p.opt_int("fromId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return [wire.spot_my_trade(f, spec) for f in fills]


async def commission(call: Call) -> object:
    """GET /api/v3/account/commission."""
    symbol = call.params.symbol()
    call.state.exchange.spec(SPOT, symbol)
    rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"}
    zero = {k: "0.00000000" for k in rates}
    return {
        "symbol": symbol,
        "standardCommission": rates,
        "specialCommission": zero,
        "taxCommission": zero,
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.25000000",
        },
    }


# Parameters per endpoint as Binance documents them (binance-spot-api-docs rest-api.md); the signing
# parameters (timestamp, recvWindow, signature) are added by the request pipeline for SIGNED endpoints.
SYMBOL = frozenset(("symbol",))
ORDER_REF = frozenset(("symbol", "orderId", "origClientOrderId"))
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v3/account", SPOT, account, 20, SIGNED, params=frozenset(("omitZeroBalances",))),
    Endpoint("GET", "/api/v3/account/commission", SPOT, commission, 20, SIGNED, params=SYMBOL),
    Endpoint("POST", "/api/v3/order", SPOT, new_order, 1, SIGNED, PERM_SPOT, order=True, params=SPOT_NEW_ORDER_PARAMS),
    Endpoint("POST", "/api/v3/order/test", SPOT, test_order, 1, SIGNED, PERM_SPOT, params=SPOT_TEST_ORDER_PARAMS),
    Endpoint(
        "DELETE",
        "/api/v3/order",
        SPOT,
        cancel_order,
        1,
        SIGNED,
        PERM_SPOT,
        params=ORDER_REF | {"newClientOrderId", "cancelRestrictions"},
    ),
    Endpoint("GET", "/api/v3/order", SPOT, query_order, 4, SIGNED, params=ORDER_REF),
    Endpoint(
        "GET",
        "/api/v3/openOrders",
        SPOT,
        open_orders,
        lambda p: 6 if p.opt_str("symbol") else 80,
        SIGNED,
        params=SYMBOL,
    ),
    Endpoint("DELETE", "/api/v3/openOrders", SPOT, cancel_all, 1, SIGNED, PERM_SPOT, params=SYMBOL),
    Endpoint(
        "GET",
        "/api/v3/allOrders",
        SPOT,
        all_orders,
        20,
        SIGNED,
        params=frozenset(("symbol", "orderId", "startTime", "endTime", "limit")),
    ),
    Endpoint(
        "GET",
        "/api/v3/myTrades",
        SPOT,
        my_trades,
        20,
        SIGNED,
        params=frozenset(("symbol", "orderId", "startTime", "endTime", "fromId", "limit")),
    ),
]
