"""Capabilities and venue metadata of a ccxt exchange, read from ccxt itself (no per-exchange tables here).

* ``Capabilities`` from ``exchange.has`` (only ``True`` counts as native; ``'emulated'`` is ccxt building the
  call from others, not atomic) and ``exchange.features`` per market type (order types from
  ``createOrder.triggerPrice``/``stopLossPrice``/``takeProfitPrice``/``trailing``, time in force, hedge mode,
  ``createOrders.max``).
* ``VenueMetadata.weights`` from ccxt's endpoint table (``exchange.api``: cost per method and path), keyed
  ``"METHOD /path"`` like every connector's; ``rate_limits`` from ccxt's ``rateLimit`` (ms per cost unit:
  ``60000 / rateLimit`` units per minute); ``fee_tiers`` from ``exchange.fees['trading']``. The weights are in
  ccxt's cost units, normalised by ccxt to its ``rateLimit`` (Binance: a unit is 5 request weights, 1200 units
  per minute = Binance's 6000 weight/min), so a ccxt exchange's budget in ``configs/exchanges.yaml`` is
  counted in those units.

Sub-account transfers and sub-account balances read with the main key are not in ccxt's unified API (no
``has`` entry for either), so ``sub_account_transfer`` and ``sub_account_balances`` are False for every exchange;
``amend`` is declared on USD-M only (ccxt's Spot ``editOrder`` is a cancel-replace on several exchanges).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxt_pro

from oms.model import Market, OrderType, TimeInForce
from oms.venues.metadata import Capabilities, EndpointWeight, FeeTier, RateLimitRule, VenueMetadata

_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PO": TimeInForce.GTX,
    "GTD": TimeInForce.GTD,
}


@functools.cache
def _describe(ccxt_id: str) -> Any:
    cls = getattr(ccxt_pro, ccxt_id, None)
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"ccxt.pro has no exchange {ccxt_id!r}")
    return cls()


def market_features(features: Mapping[str, Any], market: Market) -> Mapping[str, Any]:
    if market is Market.SPOT:
        return features.get("spot") or {}
    return (features.get("swap") or {}).get("linear") or {}


def trigger_book(features: Mapping[str, Any], market: Market) -> bool:
    """Trigger orders kept apart from the order book (queried, cancelled and listed with ccxt's ``trigger``
    flag): Binance USD-M's Algo Order API."""
    return bool((market_features(features, market).get("fetchOrder") or {}).get("trigger"))


def capabilities_from(has: Mapping[str, Any], features: Mapping[str, Any], market: Market) -> Capabilities:
    f = market_features(features, market)
    create = f.get("createOrder") or {}
    types = {OrderType.LIMIT, OrderType.MARKET}
    # Trigger orders: where ccxt's fetchOrder feature says ``trigger`` they live in a separate book (Binance
    # USD-M's Algo Order API) that the execution client reaches with ccxt's ``trigger`` flag (``trigger_book``)
    if create.get("triggerPrice") or create.get("stopLossPrice"):
        types |= {OrderType.STOP_LIMIT, OrderType.STOP_MARKET}
    if create.get("takeProfitPrice"):
        types |= {OrderType.TAKE_PROFIT_LIMIT, OrderType.TAKE_PROFIT_MARKET}
    if create.get("trailing"):
        types.add(OrderType.TRAILING_STOP_MARKET)
    tif_flags = create.get("timeInForce") or {}
    tifs = frozenset(_TIF[k] for k, v in tif_flags.items() if v and k in _TIF) or frozenset(
        {TimeInForce.GTC, TimeInForce.IOC}
    )
    post_only = bool(tif_flags.get("PO")) or has.get("createPostOnlyOrder") is True
    if post_only:
        types.add(OrderType.LIMIT_MAKER)
    batch = f.get("createOrders") or {}
    futures = market is Market.USDM
    return Capabilities(
        market=market,
        order_types=frozenset(types),
        time_in_force=tifs,
        # ccxt's editOrder on a Spot market is a cancel-replace on several exchanges (Binance: POST /api/v3/order/
        # cancelReplace, a new order with a new venue id under the same client order id), not an amend in place
        amend=futures and has.get("editOrder") is True,
        cancel_replace=not futures and has.get("editOrder") is True,
        batch_orders=has.get("createOrders") is True and bool(batch),
        max_batch=int(batch.get("max") or 1) if batch else 1,
        cancel_all=has.get("cancelAllOrders") is True,
        ws_api_orders=has.get("createOrderWs") is True,  # ccxt's createOrderWs (ws_orders), REST without it
        user_stream=has.get("watchOrders") is True,
        reduce_only=futures and has.get("createReduceOnlyOrder") is not False,
        post_only=post_only,
        hedge_mode=futures and bool(create.get("hedged")),
        leverage=futures and has.get("setLeverage") is True,
        margin_type=futures and has.get("setMarginMode") is True,
        sub_account_transfer=False,
        sub_account_balances=False,
        fills_since=has.get("fetchMyTrades") is True,
        fetch_order_by_client_id=has.get("fetchOrder") is True,
        commission_rates=has.get("fetchTradingFee") is True,
    )


def weights_from(api: Mapping[str, Any], urls: Mapping[str, Any]) -> dict[str, EndpointWeight]:
    """ccxt's endpoint table -> ``"METHOD /path"`` -> weight (ccxt cost, rounded up; at least 1)."""
    out: dict[str, EndpointWeight] = {}
    for key, methods in api.items():
        base = urls.get(key)
        if not isinstance(methods, Mapping) or not isinstance(base, str):
            continue
        prefix = urlsplit(base).path.rstrip("/")
        for method, paths in methods.items():
            if not isinstance(paths, Mapping):
                continue
            for path, cost in paths.items():
                value = cost.get("cost", 1) if isinstance(cost, Mapping) else cost
                weight = max(1, math.ceil(float(value or 1)))
                m = method.upper()
                low = path.lower()
                orders = m in ("POST", "PUT") and "order" in low and "cancel" not in low
                # cancels, the query of one order and opening the user stream may use the IP's whole window
                trading = (
                    orders
                    or (m in ("DELETE", "PUT") and "order" in low)
                    or (m == "GET" and low.endswith("order"))
                    or (m == "POST" and ("listenkey" in low or "userdatastream" in low))
                )
                out[f"{m} {prefix}/{path}"] = EndpointWeight(weight, orders, trading)
    return out


def metadata_for(ccxt_id: str, exchange: str, market: Market | str) -> VenueMetadata:
    market = Market(market)
    ex = _describe(ccxt_id)
    caps = capabilities_from(ex.has, getattr(ex, "features", None) or {}, market)
    trading = (ex.fees or {}).get("trading") or {}
    tiers = ()
    if trading.get("maker") is not None and trading.get("taker") is not None:
        tiers = (FeeTier(tier=0, maker=_dec(trading["maker"]), taker=_dec(trading["taker"])),)
    per_minute = int(60_000 / float(ex.rateLimit or 1))
    return VenueMetadata(
        exchange=exchange,
        market=market,
        capabilities=caps,
        weights=weights_from(ex.api or {}, (ex.urls or {}).get("api") or {}),
        rate_limits=(RateLimitRule(kind="weight", interval_s=60.0, limit=per_minute, scope="ip"),),
        fee_tiers=tiers,
    )


def _dec(x: Any) -> str:
    text = format(float(x), "f").rstrip("0").rstrip(".")
    return text or "0"


def native(has: Mapping[str, Any], *methods: str) -> bool:
    """True when ccxt does every one of ``methods`` natively (``has[m] is True``, not ``'emulated'``)."""
    return all(has.get(m) is True for m in methods)
