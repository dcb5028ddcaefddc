"""Spot changes to a resting order: cancel-replace and amend keep priority, REST and WebSocket API alike.

* ``POST /api/v3/order/cancelReplace`` / ``order.cancelReplace``: cancel one order, then place another
  (``cancelReplaceMode`` STOP_ON_FAILURE or ALLOW_FAILURE); -2022 when nothing was placed, -2021 with HTTP
  409 when one half failed, both with the halves' answers in ``data``.
* ``PUT /api/v3/order/amend/keepPriority`` / ``order.amend.keepPriority``: lower a resting order's quantity in
  place (``newQty``), keeping its order id and queue position (``localex.engine.amend``); the answer is
  ``{transactTime, executionId, amendedOrder}`` and the user stream gets an ``executionReport`` REPLACED.
"""

from __future__ import annotations

from localex.engine.amend import amend_keep_priority
from localex.engine.errors import ExchangeError
from localex.server import errors, routes_spot, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, Call, Endpoint, from_engine
from localex.server.order_params import SPOT_NEW_ORDER_PARAMS
from localex.server.params import Params

SPOT = "spot"
PERM_SPOT = "SPOT"
MODES = frozenset(("STOP_ON_FAILURE", "ALLOW_FAILURE"))
CANCEL_REPLACE_OWN = frozenset(
    (
        "cancelReplaceMode",
        "cancelOrderId",
        "cancelOrigClientOrderId",
        "cancelNewClientOrderId",
        "cancelRestrictions",
        "orderRateLimitExceededMode",
    )
)
CANCEL_REPLACE_PARAMS = SPOT_NEW_ORDER_PARAMS | CANCEL_REPLACE_OWN
AMEND_PARAMS = frozenset(("symbol", "orderId", "origClientOrderId", "newClientOrderId", "newQty"))


def _split(raw: dict[str, str]) -> tuple[Params, Params]:
    """Cancel-replace parameters -> (the cancel's, the new order's)."""
    cancel = {
        "symbol": raw.get("symbol", ""),
        "orderId": raw.get("cancelOrderId", ""),
        "origClientOrderId": raw.get("cancelOrigClientOrderId", ""),
        "newClientOrderId": raw.get("cancelNewClientOrderId", ""),
    }
    kept = {k: v for k, v in cancel.items() if v}
    return Params(kept), Params({k: v for k, v in raw.items() if k not in CANCEL_REPLACE_OWN})


def _failure(exc: Exception) -> dict[str, object]:
    if isinstance(exc, ExchangeError):
        return from_engine(exc).body()
    assert isinstance(exc, BinanceError)
    return exc.body()


def cancel_replace(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Cancel, then place (shared by REST and the WebSocket API)."""
    mode = params.str("cancelReplaceMode")
    if mode not in MODES:
        raise errors.bad_param("cancelReplaceMode")
    if "cancelOrderId" not in params and "cancelOrigClientOrderId" not in params:
        raise BinanceError(
            -1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!", 400
        )
    cancel_params, new_params = _split(params.raw())
    try:
        cancel_ok, cancel_body = True, routes_spot.cancel(call, cancel_params, account_id)
    except (ExchangeError, BinanceError) as exc:
        cancel_ok, cancel_body = False, _failure(exc)
    if not cancel_ok and mode == "STOP_ON_FAILURE":
        data: dict[str, object] = {
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": cancel_body,
            "newOrderResponse": None,
        }
        raise BinanceError(-2022, "Order cancel-replace failed.", 400, data=data)
    try:
        new_ok, new_body = True, routes_spot.place(call, new_params, account_id)
    except (ExchangeError, BinanceError) as exc:
        new_ok, new_body = False, _failure(exc)
    data = {
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
        "newOrderResult": "SUCCESS" if new_ok else "FAILURE",
        "cancelResponse": cancel_body,
        "newOrderResponse": new_body,
    }
    if cancel_ok and new_ok:
        return data
    if not cancel_ok and not new_ok:
        raise BinanceError(-2022, "Order cancel-replace failed.", 400, data=data)
    raise BinanceError(-2021, "Order cancel-replace partially failed.", 409, data=data)


def amend(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Amend keep priority (shared by REST and the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = routes_spot.order_ref(params)
    new_qty = params.opt_str("newQty")
    if new_qty is None:
        raise errors.mandatory("newQty")
    params.decimal("newQty")
    order = amend_keep_priority(
        call.state.exchange,
        account_id,
        symbol,
        new_qty,
        order_id=order_id,
        client_order_id=client_id,
        new_client_order_id=params.opt_client_id("newClientOrderId"),
    )
    spec = call.state.exchange.spec(SPOT, symbol)
    row = wire.spot_order(order, spec)
    amended = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "origClientOrderId": client_id or order.client_order_id,
        "clientOrderId": order.client_order_id,
        "price": row["price"],
        "qty": row["origQty"],
        "executedQty": row["executedQty"],
        "preventedQty": spec.fmt_qty(order.prevented_qty),
        "quoteOrderQty": row["origQuoteOrderQty"],
        "cumulativeQuoteQty": row["cummulativeQuoteQty"],
        "status": order.status,
        "timeInForce": row["timeInForce"],
        "type": order.type,
        "side": order.side,
        "workingTime": row["workingTime"],
        "selfTradePreventionMode": order.self_trade_prevention_mode,
    }
    return {"transactTime": wire.ms(order.update_ns), "executionId": order.update_ns, "amendedOrder": amended}


async def cancel_replace_order(call: Call) -> object:
    """POST /api/v3/order/cancelReplace."""
    assert call.account_id is not None
    return cancel_replace(call, call.params, call.account_id)


async def amend_order(call: Call) -> object:
    """PUT /api/v3/order/amend/keepPriority."""
    assert call.account_id is not None
    return amend(call, call.params, call.account_id)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/v3/order/cancelReplace",
        SPOT,
        cancel_replace_order,
        1,
        SIGNED,
        PERM_SPOT,
        order=True,
        params=CANCEL_REPLACE_PARAMS,
    ),
    Endpoint(
        "PUT",
        "/api/v3/order/amend/keepPriority",
        SPOT,
        amend_order,
        4,
        SIGNED,
        PERM_SPOT,
        order=True,
        params=AMEND_PARAMS,
    ),
]
