"""New-order parameters (REST and WebSocket API alike) -> the engine's ``OrderRequest``."""

from __future__ import annotations

from localex.engine.types import STOP_TYPES_USDM, OrderRequest
from localex.server import errors
from localex.server.params import Params

RESP_TYPES = frozenset(("ACK", "RESULT", "FULL"))
STP_MODES = frozenset(("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"))
SIDES = frozenset(("BUY", "SELL"))
TIFS = frozenset(("GTC", "IOC", "FOK", "GTX", "GTD"))
POSITION_SIDES = frozenset(("BOTH", "LONG", "SHORT"))
WORKING_TYPES = frozenset(("CONTRACT_PRICE", "MARK_PRICE"))
# POST /api/v3/order as documented (rest-api.md "New order (TRADE)"), less the pegged-order parameters
# (pegPriceType, pegOffsetValue, pegOffsetType) this exchange does not implement: those are answered -1104.
SPOT_NEW_ORDER_PARAMS = frozenset(
    (
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "strategyId",
        "strategyType",
        "stopPrice",
        "trailingDelta",
        "icebergQty",
        "newOrderRespType",
        "selfTradePreventionMode",
    )
)
SPOT_TEST_ORDER_PARAMS = SPOT_NEW_ORDER_PARAMS | {"computeCommissionRates"}


def dec_param(params: Params, name: str) -> str | None:
    """An optional decimal parameter as sent (checked to be a decimal)."""
    value = params.opt_decimal(name)
    return None if value is None else params.str(name)


def spot_order_request(params: Params) -> OrderRequest:
    """Parse ``POST /api/v3/order`` (and ``order.place``) parameters."""
    stp = params.opt_enum("selfTradePreventionMode", STP_MODES)
    iceberg = params.opt_decimal("icebergQty")
    if iceberg:  # every symbol's exchangeInfo says icebergAllowed: false
        raise errors.new_order_rejected("Iceberg orders are not supported for this symbol.")
    params.opt_int("strategyId", 0)
    strategy_type = params.opt_int("strategyType", 0)
    if strategy_type is not None and strategy_type < 1_000_000:
        raise errors.BinanceError(-1134, "strategyType was less than 1000000.", 400)
    return OrderRequest(
        market="spot",
        symbol=params.symbol(),
        side=params.enum("side", SIDES, errors.invalid_side()),
        type=params.str("type"),
        quantity=dec_param(params, "quantity"),
        price=dec_param(params, "price"),
        quote_order_qty=dec_param(params, "quoteOrderQty"),
        time_in_force=params.opt_enum("timeInForce", TIFS, errors.invalid_tif()),
        stop_price=dec_param(params, "stopPrice"),
        client_order_id=params.opt_client_id("newClientOrderId"),
        self_trade_prevention_mode=stp,
        trailing_delta=params.opt_str("trailingDelta"),
    )


def futures_order_request(params: Params) -> OrderRequest:
    """Parse ``POST /fapi/v1/order`` (and futures ``order.place``) parameters. Conditional types get -4120: they
    go to the Algo Order API (``localex.server.routes_algo``), as on Binance."""
    order_type = params.str("type")
    if order_type in STOP_TYPES_USDM:
        raise errors.switch_to_algo()
    return OrderRequest(
        market="usdm",
        symbol=params.symbol(),
        side=params.enum("side", SIDES, errors.invalid_side()),
        type=order_type,
        quantity=dec_param(params, "quantity"),
        price=dec_param(params, "price"),
        time_in_force=params.opt_enum("timeInForce", TIFS, errors.invalid_tif()),
        stop_price=dec_param(params, "stopPrice"),
        client_order_id=params.opt_client_id("newClientOrderId"),
        reduce_only=bool(params.opt_bool("reduceOnly")),
        close_position=bool(params.opt_bool("closePosition")),
        position_side=params.opt_enum("positionSide", POSITION_SIDES) or "BOTH",
        callback_rate=dec_param(params, "callbackRate"),
        activation_price=dec_param(params, "activationPrice"),
        working_type=params.opt_enum("workingType", WORKING_TYPES) or "CONTRACT_PRICE",
        self_trade_prevention_mode=params.opt_enum("selfTradePreventionMode", STP_MODES),
    )


def resp_type(params: Params, order_type: str) -> str:
    """Spot ``newOrderRespType``: FULL by default for MARKET and LIMIT, ACK otherwise (as Binance)."""
    value = params.opt_enum("newOrderRespType", RESP_TYPES)
    if value is not None:
        return value
    return "FULL" if order_type in ("MARKET", "LIMIT") else "ACK"
