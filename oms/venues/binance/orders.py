"""Model order commands -> Binance request parameters (Spot and USD-M spell order types differently).

Quantities and prices go out as the command's decimal strings, after a check that they carry no more
decimals than the instrument allows (an over-precise command is refused here, naming the field, instead of
being rounded or refused by the venue). USD-M conditional orders (stop, take-profit, trailing) go to Binance's
Algo Order API (``algo_params``: ``POST /fapi/v1/algoOrder`` / ``algoOrder.place``), which names the trigger
``triggerPrice``, the trailing activation ``activatePrice`` and the client id ``clientAlgoId``; the order the
trigger creates carries that client id, so the model's client order id names it throughout.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from oms.model import AmendOrder, Market, OrderType, PlaceOrder, PositionSide, Side, TimeInForce
from oms.venues.binance import codes
from oms.venues.binance.symbols import BadDecimal, SymbolTable, check_decimal, seen_decimals

E = TypeVar("E", bound=Enum)

SPOT_TYPES = frozenset(
    {
        OrderType.LIMIT,
        OrderType.MARKET,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)
USDM_CONDITIONAL = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP_MARKET,
    }
)
USDM_TYPES = frozenset({OrderType.LIMIT, OrderType.MARKET}) | USDM_CONDITIONAL
TYPES = {Market.SPOT: SPOT_TYPES, Market.USDM: USDM_TYPES}


class OrderNotExpressible(ValueError):
    """The command cannot be sent to this market as it is (type, flag or precision)."""


def _enum(kind: type[E], value: object) -> E:
    return value if type(value) is kind else kind(value)  # type: ignore[return-value]


def _dec(symbols: SymbolTable, venue: str, value: str, price: bool, what: str) -> str:
    places = symbols.price_places[venue] if price else symbols.qty_places[venue]
    try:
        return check_decimal(value, places, what)
    except BadDecimal as exc:
        raise OrderNotExpressible(str(exc)) from None


class _PlaceTemplate:
    """What ``place_params`` gives for one kind of order, but its quantity, prices and client order id."""

    __slots__ = ("params", "venue", "pplaces", "qplaces", "price", "stop", "pseen", "qseen")

    def __init__(self, params: dict[str, Any], symbols: SymbolTable) -> None:
        self.params = dict.fromkeys(params, None)  # the same names in the same order
        for k, v in params.items():
            if k not in _VARYING:
                self.params[k] = v
        self.venue = params["symbol"]
        self.pplaces = symbols.price_places[self.venue]
        self.qplaces = symbols.qty_places[self.venue]
        self.price = "price" in params
        self.stop = "stopPrice" in params
        self.pseen = seen_decimals(self.pplaces)  # live sets: a value in one is what check_decimal passes
        self.qseen = seen_decimals(self.qplaces)


_VARYING = frozenset({"quantity", "newClientOrderId", "price", "stopPrice"})
_TEMPLATES_MAX = 4096


def place_params(cmd: PlaceOrder, market: Market, symbols: SymbolTable, recv_window_ms: int) -> dict[str, Any]:
    """The parameters of ``order.place`` / ``POST .../order`` for ``cmd`` (its client order id must be set).

    The part fixed by the kind of order (symbol, side, type, flags, receive window) is kept per symbol table, so
    an order of a kind placed before is its template filled in: its quantity and prices checked, its client
    order id. A kind seen first (or one refused) goes through ``_place_params``, which says what is wrong.
    """
    key = (
        market, cmd.symbol, cmd.side, cmd.order_type, cmd.time_in_force, cmd.post_only, cmd.reduce_only,
        cmd.position_side, recv_window_ms, cmd.price is None, cmd.stop_price is None,
    )  # fmt: skip
    templates = symbols.place_templates
    t = templates.get(key)
    if t is None:
        p = _place_params(cmd, market, symbols, recv_window_ms)
        if len(templates) >= _TEMPLATES_MAX:
            templates.clear()
        templates[key] = _PlaceTemplate(p, symbols)
        return p
    p = t.params.copy()
    qty = cmd.qty
    p["quantity"] = qty if qty in t.qseen else _dec(symbols, t.venue, qty, False, "qty")
    p["newClientOrderId"] = cmd.client_order_id
    if t.price:
        price = cmd.price
        p["price"] = price if price in t.pseen else _dec(symbols, t.venue, price, True, "price")  # type: ignore[arg-type]
    if t.stop:
        p["stopPrice"] = _dec(symbols, t.venue, cmd.stop_price, True, "stop_price")  # type: ignore[arg-type]
    return p


def _place_params(cmd: PlaceOrder, market: Market, symbols: SymbolTable, recv_window_ms: int) -> dict[str, Any]:
    # commands built in Python (not decoded) carry whatever was passed: normalise to the enums
    order_type = _enum(OrderType, cmd.order_type)
    side = _enum(Side, cmd.side)
    position_side = _enum(PositionSide, cmd.position_side)
    tif_asked = _enum(TimeInForce, cmd.time_in_force) if cmd.time_in_force is not None else None
    if order_type not in TYPES[market]:
        raise OrderNotExpressible(f"{order_type.value} orders are not supported on Binance {market.value} here")
    if market is Market.USDM and order_type in USDM_CONDITIONAL:
        raise OrderNotExpressible(f"{order_type.value} orders go to the Algo Order API (algo_params), not order.place")
    venue = symbols.venue(cmd.symbol)
    if cmd.post_only and order_type is OrderType.LIMIT and market is Market.SPOT:
        order_type = OrderType.LIMIT_MAKER
    p: dict[str, Any] = {
        "symbol": venue,
        "side": codes.SIDE_TO_BINANCE[side],
        "type": codes.TYPE_TO_BINANCE[market][order_type],
        "quantity": _dec(symbols, venue, cmd.qty, False, "qty"),
        "newClientOrderId": cmd.client_order_id,
        "newOrderRespType": "RESULT",
        "recvWindow": recv_window_ms,
    }
    if order_type.has_limit_price:
        if cmd.price is None:
            raise OrderNotExpressible(f"{order_type.value} order needs a price")
        p["price"] = _dec(symbols, venue, cmd.price, True, "price")
        if order_type is not OrderType.LIMIT_MAKER:
            tif = tif_asked or TimeInForce.GTC
            if cmd.post_only and market is Market.USDM:
                tif = TimeInForce.GTX
            p["timeInForce"] = codes.TIF_TO_BINANCE[tif]
    elif tif_asked is not None and order_type is not OrderType.MARKET:
        p["timeInForce"] = codes.TIF_TO_BINANCE[tif_asked]
    if order_type.has_trigger:
        if cmd.stop_price is None:
            raise OrderNotExpressible(f"{order_type.value} order needs a stop price")
        p["stopPrice"] = _dec(symbols, venue, cmd.stop_price, True, "stop_price")
    if market is Market.USDM:
        if position_side is not PositionSide.BOTH:
            p["positionSide"] = codes.POSITION_SIDE_TO_BINANCE[position_side]
        elif cmd.reduce_only:
            p["reduceOnly"] = "true"  # hedge mode expresses reduce-only by the position side instead
    elif cmd.reduce_only:
        raise OrderNotExpressible("reduce-only orders exist on USD-M futures, not on Spot")
    return p


def amend_params(cmd: AmendOrder, symbols: SymbolTable, qty: str, price: str, recv_window_ms: int) -> dict[str, Any]:
    """``order.modify`` / ``PUT /fapi/v1/order``: USD-M wants side, quantity and price every time."""
    venue = symbols.venue(cmd.symbol)
    return {
        "symbol": venue,
        "origClientOrderId": cmd.client_order_id,
        "side": codes.SIDE_TO_BINANCE[Side(cmd.side)],
        "quantity": _dec(symbols, venue, qty, False, "qty"),
        "price": _dec(symbols, venue, price, True, "price"),
        "recvWindow": recv_window_ms,
    }


def is_conditional(cmd: PlaceOrder, market: Market) -> bool:
    """A USD-M stop, take-profit or trailing stop: placed through the Algo Order API."""
    return market is Market.USDM and _enum(OrderType, cmd.order_type) in USDM_CONDITIONAL


def algo_params(cmd: PlaceOrder, symbols: SymbolTable, recv_window_ms: int) -> dict[str, Any]:
    """The parameters of ``algoOrder.place`` / ``POST /fapi/v1/algoOrder`` for a USD-M conditional ``cmd``."""
    order_type = _enum(OrderType, cmd.order_type)
    if order_type not in USDM_CONDITIONAL:
        raise OrderNotExpressible(f"{order_type.value} is not a conditional order type")
    side = _enum(Side, cmd.side)
    position_side = _enum(PositionSide, cmd.position_side)
    venue = symbols.venue(cmd.symbol)
    p: dict[str, Any] = {
        "algoType": "CONDITIONAL",
        "symbol": venue,
        "side": codes.SIDE_TO_BINANCE[side],
        "type": codes.TYPE_TO_BINANCE[Market.USDM][order_type],
        "quantity": _dec(symbols, venue, cmd.qty, False, "qty"),
        "clientAlgoId": cmd.client_order_id,
        "newOrderRespType": "RESULT",
        "recvWindow": recv_window_ms,
    }
    if order_type is OrderType.TRAILING_STOP_MARKET:
        if not cmd.callback_rate:
            raise OrderNotExpressible("trailing_stop_market order needs a callback rate (percent)")
        p["callbackRate"] = cmd.callback_rate
        if cmd.stop_price is not None:
            p["activatePrice"] = _dec(symbols, venue, cmd.stop_price, True, "stop_price (activation price)")
    else:
        if cmd.stop_price is None:
            raise OrderNotExpressible(f"{order_type.value} order needs a stop price")
        p["triggerPrice"] = _dec(symbols, venue, cmd.stop_price, True, "stop_price")
    if order_type.has_limit_price:
        if cmd.price is None:
            raise OrderNotExpressible(f"{order_type.value} order needs a price")
        p["price"] = _dec(symbols, venue, cmd.price, True, "price")
        tif = _enum(TimeInForce, cmd.time_in_force) if cmd.time_in_force is not None else TimeInForce.GTC
        p["timeInForce"] = codes.TIF_TO_BINANCE[tif]
    if position_side is not PositionSide.BOTH:
        p["positionSide"] = codes.POSITION_SIDE_TO_BINANCE[position_side]
    elif cmd.reduce_only:
        p["reduceOnly"] = "true"
    return p


def spot_amend_params(cmd: AmendOrder, symbols: SymbolTable, recv_window_ms: int) -> dict[str, Any]:
    """``order.amend.keepPriority`` / ``PUT /api/v3/order/amend/keepPriority``: the order and its new (lower)
    quantity; the client order id stays."""
    venue = symbols.venue(cmd.symbol)
    if cmd.qty is None:
        raise OrderNotExpressible("a Spot amend needs the new quantity")
    return {
        "symbol": venue,
        "origClientOrderId": cmd.client_order_id,
        "newQty": _dec(symbols, venue, cmd.qty, False, "qty"),
        "recvWindow": recv_window_ms,
    }
