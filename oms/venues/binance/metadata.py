"""Binance Spot and USD-M as data: what each does natively, what each endpoint weighs, the limits and fees.

Weights are Binance's published ones for the endpoints and WebSocket-API methods this connector calls
(keys: ``"METHOD /path"`` for REST, the method name for the WebSocket API). Rate-limit rules: request weight
per IP and minute (Spot 6000, USD-M 2400), orders per account (Spot 100/10 s and 200,000/day; USD-M 300/10 s
and 1,200/min), WebSocket connection attempts per IP (300 per 5 minutes). Fees: the VIP 0 tier.
"""

from __future__ import annotations

from oms.model import Market, TimeInForce
from oms.venues.binance.orders import SPOT_TYPES, USDM_TYPES
from oms.venues.metadata import Capabilities, EndpointWeight, FeeTier, RateLimitRule, VenueMetadata

SPOT_CAPABILITIES = Capabilities(
    market=Market.SPOT,
    order_types=SPOT_TYPES,
    time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
    amend=True,  # order.amend.keepPriority: the quantity goes down in place (a price change is a new order)
    amend_qty_only=True,
    batch_orders=False,
    cancel_all=True,
    ws_api_orders=True,
    user_stream=True,
    reduce_only=False,
    post_only=True,  # LIMIT_MAKER
    hedge_mode=False,
    leverage=False,
    margin_type=False,
    sub_account_transfer=True,
    sub_account_balances=True,  # GET /sapi/v4/sub-account/assets, /sapi/v2/sub-account/futures/account
    fills_since=True,
    fetch_order_by_client_id=True,
    commission_rates=True,  # GET /api/v3/account/commission
)
USDM_CAPABILITIES = Capabilities(
    market=Market.USDM,
    order_types=USDM_TYPES,
    time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTX}),
    amend=True,  # PUT /fapi/v1/order, order.modify
    batch_orders=True,
    max_batch=5,
    cancel_all=True,
    ws_api_orders=True,
    user_stream=True,
    reduce_only=True,
    post_only=True,  # GTX
    hedge_mode=True,
    leverage=True,
    margin_type=True,
    sub_account_transfer=True,
    fills_since=True,
    fetch_order_by_client_id=True,
    commission_rates=True,  # GET /fapi/v1/commissionRate
)

_ORDER = EndpointWeight(1, orders=True)
_CANCEL = EndpointWeight(1, trading=True)  # cancels and order queries may use the IP's whole weight window
SPOT_WEIGHTS = {
    "POST /api/v3/order": _ORDER,
    "order.place": _ORDER,
    "PUT /api/v3/order/amend/keepPriority": EndpointWeight(4, orders=True),
    "order.amend.keepPriority": EndpointWeight(4, orders=True),
    "POST /api/v3/order/cancelReplace": _ORDER,
    "order.cancelReplace": _ORDER,
    "DELETE /api/v3/order": _CANCEL,
    "order.cancel": _CANCEL,
    "GET /api/v3/order": EndpointWeight(4, trading=True),
    "order.status": EndpointWeight(4, trading=True),
    "GET /api/v3/openOrders": EndpointWeight(6),
    "openOrders.status": EndpointWeight(6),
    "GET /api/v3/openOrders#all": EndpointWeight(80),  # without a symbol (transport.ALL_SYMBOL_OPS)
    "openOrders.status#all": EndpointWeight(80),
    "DELETE /api/v3/openOrders": _CANCEL,
    "openOrders.cancelAll": _CANCEL,
    "GET /api/v3/account": EndpointWeight(20),
    "GET /api/v3/account/commission": EndpointWeight(20),
    "account.status": EndpointWeight(20),
    "GET /api/v3/myTrades": EndpointWeight(20),
    "myTrades": EndpointWeight(20),
    "GET /api/v3/allOrders": EndpointWeight(20),
    "GET /api/v3/exchangeInfo": EndpointWeight(20),
    "GET /api/v3/depth": EndpointWeight(50),  # limit 1000 (5 up to 100, 25 up to 500, 250 for 5000)
    "GET /api/v3/time": EndpointWeight(1),
    "time": EndpointWeight(1),
    "userDataStream.subscribe.signature": EndpointWeight(2),
    "ws-api connect": EndpointWeight(3),  # the connection's 2 and the time request that opens it
    "POST /sapi/v1/sub-account/universalTransfer": EndpointWeight(1),
    "GET /sapi/v1/sub-account/universalTransfer": EndpointWeight(1),
    "POST /sapi/v1/asset/transfer": EndpointWeight(1),
    # master-account reads of sub-account wallets: Binance counts them on the SAPI's own budgets (v4 assets:
    # UID weight 60; futures account V2: IP weight 1); counted here once, like the other SAPI calls
    "GET /sapi/v4/sub-account/assets": EndpointWeight(1),
    "GET /sapi/v2/sub-account/futures/account": EndpointWeight(1),
}
USDM_WEIGHTS = {
    "POST /fapi/v1/order": EndpointWeight(0, orders=True),
    "order.place": EndpointWeight(0, orders=True),
    "PUT /fapi/v1/order": _ORDER,
    "order.modify": _ORDER,
    "DELETE /fapi/v1/order": _CANCEL,
    "order.cancel": _CANCEL,
    "GET /fapi/v1/order": _CANCEL,
    "order.status": _CANCEL,
    "GET /fapi/v1/openOrders": EndpointWeight(1),
    "GET /fapi/v1/openOrders#all": EndpointWeight(40),  # without a symbol (transport.ALL_SYMBOL_OPS)
    "DELETE /fapi/v1/allOpenOrders": _CANCEL,
    "POST /fapi/v1/batchOrders": EndpointWeight(5, orders=True),
    "GET /fapi/v3/balance": EndpointWeight(5),
    "account.balance": EndpointWeight(5),
    "GET /fapi/v3/positionRisk": EndpointWeight(5),
    "v2/account.position": EndpointWeight(5),
    "GET /fapi/v1/userTrades": EndpointWeight(5),
    "GET /fapi/v1/income": EndpointWeight(30),
    "GET /fapi/v1/allOrders": EndpointWeight(5),
    "GET /fapi/v1/exchangeInfo": EndpointWeight(1),
    "GET /fapi/v1/depth": EndpointWeight(20),  # limit 1000 (2 up to 50, 5 up to 100, 10 up to 500)
    "GET /fapi/v1/time": EndpointWeight(1),
    "POST /fapi/v1/leverage": EndpointWeight(1),
    "GET /fapi/v1/adlQuantile": EndpointWeight(5),
    "GET /fapi/v1/symbolConfig": EndpointWeight(5),
    "GET /fapi/v1/commissionRate": EndpointWeight(20),
    "POST /fapi/v1/marginType": EndpointWeight(1),
    "POST /fapi/v1/positionSide/dual": EndpointWeight(1),
    "GET /fapi/v1/positionSide/dual": EndpointWeight(30),
    "POST /fapi/v1/algoOrder": EndpointWeight(0, orders=True),
    "algoOrder.place": EndpointWeight(0, orders=True),
    "DELETE /fapi/v1/algoOrder": _CANCEL,
    "algoOrder.cancel": _CANCEL,
    "GET /fapi/v1/algoOrder": _CANCEL,
    "GET /fapi/v1/openAlgoOrders": EndpointWeight(1),
    "GET /fapi/v1/openAlgoOrders#all": EndpointWeight(40),
    "DELETE /fapi/v1/algoOpenOrders": _CANCEL,
    "ws-api connect": EndpointWeight(4),  # the connection's 2 and the all-symbol ticker.price (2) that opens it
    "POST /fapi/v1/listenKey": EndpointWeight(1),
    "PUT /fapi/v1/listenKey": EndpointWeight(1),
    "DELETE /fapi/v1/listenKey": EndpointWeight(1),
}

_CONNECTIONS = RateLimitRule(kind="connections", interval_s=300, limit=300, scope="ip")
SPOT_RULES = (
    RateLimitRule(kind="weight", interval_s=60, limit=6000, scope="ip", header="X-MBX-USED-WEIGHT-1M"),
    RateLimitRule(kind="orders", interval_s=10, limit=100, scope="account", header="X-MBX-ORDER-COUNT-10S"),
    RateLimitRule(kind="orders", interval_s=86400, limit=200_000, scope="account", header="X-MBX-ORDER-COUNT-1D"),
    _CONNECTIONS,
)
USDM_RULES = (
    RateLimitRule(kind="weight", interval_s=60, limit=2400, scope="ip", header="X-MBX-USED-WEIGHT-1M"),
    RateLimitRule(kind="orders", interval_s=10, limit=300, scope="account", header="X-MBX-ORDER-COUNT-10S"),
    RateLimitRule(kind="orders", interval_s=60, limit=1200, scope="account", header="X-MBX-ORDER-COUNT-1M"),
    _CONNECTIONS,
)

SPOT_METADATA = VenueMetadata(
    exchange="binance",
    market=Market.SPOT,
    capabilities=SPOT_CAPABILITIES,
    weights=SPOT_WEIGHTS,
    rate_limits=SPOT_RULES,
    fee_tiers=(FeeTier(tier=0, maker="0.001", taker="0.001"),),
)
USDM_METADATA = VenueMetadata(
    exchange="binance",
    market=Market.USDM,
    capabilities=USDM_CAPABILITIES,
    weights=USDM_WEIGHTS,
    rate_limits=USDM_RULES,
    fee_tiers=(FeeTier(tier=0, maker="0.0002", taker="0.0005"),),
)
METADATA = {Market.SPOT: SPOT_METADATA, Market.USDM: USDM_METADATA}
