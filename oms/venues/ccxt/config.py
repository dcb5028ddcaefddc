"""ccxt's constructor dict for one account and market, from the venue context.

Live venues keep ccxt's own URLs (they are the exchange's production endpoints). A ``local`` venue (the
project's local exchange, or any other host standing in for the exchange) gets every URL of ccxt's
``urls.api`` moved onto the configured endpoints, path kept: a REST URL onto ``rest_url``
(``https://fapi.binance.com/fapi/v1`` -> ``http://127.0.0.1:PORT/fapi/v1``), a WebSocket URL under
``ws_url`` (``wss://fstream.binance.com/ws`` -> ``ws://127.0.0.1:PORT/fstream/ws``), and the URL whose path is
the WebSocket API's onto ``ws_api_url``. Nothing exchange-specific: the same rule moves any ccxt exchange.

Options: a local venue serves Spot and linear markets only and no currency or margin-pair lists, so
``LOCAL_OPTIONS`` keeps ccxt away from what it would otherwise load; ``ctx.options["ccxt_options"]`` merges
anything else into ccxt's options and ``ctx.options["ccxt_config"]`` into the constructor dict.
``set_sandbox_mode`` is never used (it swaps in URL sets that lack endpoints).

The local exchange serves Spot market streams at its root and under ``/stream`` alike; ccxt.pro's binance
tells a Spot connection from a futures one by ``/stream`` in its URL, so a Spot ``ws_url`` without a path is
used as ``<ws_url>/stream`` (``LOCAL_SPOT_WS_PREFIX``).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxt_pro

from oms.model import Market
from oms.venues.ccxt.ws_orders import RATE_LIMIT_OPTIONS

DEFAULT_TYPE = {Market.SPOT: "spot", Market.USDM: "swap"}
LOCAL_SPOT_WS_PREFIX = "/stream"
LOCAL_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot", "linear"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/") if path.strip("/") else base.rstrip("/")


def move_urls(api: Any, rest_url: str, ws_url: str | None, ws_api_url: str | None, in_ws: bool = False) -> Any:
    """A copy of ccxt's ``urls.api`` tree with every URL moved onto the given endpoints (paths kept)."""
    if isinstance(api, dict):
        return {k: move_urls(v, rest_url, ws_url, ws_api_url, in_ws or k == "ws") for k, v in api.items()}
    if not isinstance(api, str) or "://" not in api:
        return api
    parts = urlsplit(api)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme in ("ws", "wss") or in_ws:
        if ws_api_url and urlsplit(ws_api_url).path.rstrip("/") == parts.path.rstrip("/"):
            return ws_api_url
        return _join(ws_url, path) if ws_url else api
    return _join(rest_url, path)


def exchange_config(
    ccxt_id: str,
    market: Market | str,
    venue: str,
    rest_url: str,
    ws_url: str | None = None,
    ws_api_url: str | None = None,
    options: dict[str, Any] | None = None,
    api_key: str | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """The ``ccxt.pro.<ccxt_id>(config)`` dict for one market of one account."""
    market = Market(market)
    opts = dict(options or {})
    ccxt_options: dict[str, Any] = {
        "defaultType": DEFAULT_TYPE[market],
        "adjustForTimeDifference": False,  # the shared clock signs (``Session``)
        # open orders of every symbol (the user stream's reconciliation) is a deliberate, priced call
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        **copy.deepcopy(RATE_LIMIT_OPTIONS),  # WebSocket-API order answers with the venue's counters
    }
    config: dict[str, Any] = {"enableRateLimit": False, "timeout": int(opts.get("timeout_ms", 10_000))}
    if venue == "local":
        if market is Market.SPOT and ws_url and not urlsplit(ws_url).path.strip("/"):
            ws_url = ws_url.rstrip("/") + LOCAL_SPOT_WS_PREFIX
        cls = getattr(ccxt_pro, ccxt_id)
        api = copy.deepcopy(cls().urls["api"])
        config["urls"] = {"api": move_urls(api, rest_url, ws_url, ws_api_url)}
        ccxt_options.update(copy.deepcopy(LOCAL_OPTIONS))
    ccxt_options.update(opts.get("ccxt_options") or {})
    config["options"] = ccxt_options
    config.update(opts.get("ccxt_config") or {})
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    return config
