"""What a ccxt exchange does natively, read from its ``has`` flags (so the daemon knows what to emulate).

ccxt marks each unified method ``True`` (native), ``'emulated'`` (ccxt builds it from other calls) or
``False``/``None`` (absent). Only ``True`` counts as native here: an emulated call costs several requests
and is not atomic, which is exactly what the daemon must know. ``HAS_KEYS`` names, per capability, the ccxt
methods that must all be native.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HAS_KEYS: dict[str, tuple[str, ...]] = {
    "trades_stream": ("watchTrades",),
    "quotes_stream": ("watchBidsAsks",),
    "ticker_stream": ("watchTicker",),
    "depth_stream": ("watchOrderBook",),
    "klines_stream": ("watchOHLCV",),
    "mark_price_stream": ("watchMarkPrice",),
    "funding_rate": ("fetchFundingRate",),
    "amend": ("editOrder",),
    "cancel": ("cancelOrder",),
    "cancel_all": ("cancelAllOrders",),
    "batch_place": ("createOrders",),
    "batch_cancel": ("cancelOrders",),
    "query_by_client_id": ("fetchOrder",),
    "open_orders": ("fetchOpenOrders",),
    "fills_since": ("fetchMyTrades",),
    "balances": ("fetchBalance",),
    "positions": ("fetchPositions",),
    "leverage": ("setLeverage",),
    "margin_type": ("setMarginMode",),
    "position_mode": ("setPositionMode",),
    "transfer": ("transfer",),
    "orders_stream": ("watchOrders",),
    "fills_stream": ("watchMyTrades",),
    "balance_stream": ("watchBalance",),
    "positions_stream": ("watchPositions",),
    "ws_order_entry": ("createOrderWs", "cancelOrderWs"),
}


def native(has: Mapping[str, Any], *methods: str) -> bool:
    return all(has.get(m) is True for m in methods)


def from_has(has: Mapping[str, Any]) -> dict[str, bool]:
    """Every capability name -> True when all its ccxt methods are native."""
    return {name: native(has, *methods) for name, methods in HAS_KEYS.items()}
