"""The Binance connector's options (frozen, documented field by field) and its endpoints for python-binance.

Options come from ``VenueContext.options`` (``configs/exchanges.yaml`` and the factory's ``options``); unknown
keys are ignored (they belong to other layers), a known key with a bad value raises ``ValueError`` naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oms.model import Market
from oms.venues.interface import Endpoints


@dataclass(frozen=True, slots=True)
class BinanceSettings:
    """How the connector behaves. Defaults suit Binance; tests shorten the timers.

    * ``ws_api_timeout_s``: a WebSocket-API request without an answer after this long is given up: an
      idempotent one is repeated over REST, a placement becomes UNKNOWN (resolved by its client order id).
    * ``ws_cooldown_s``: after a WebSocket-API failure, requests go over REST this long before the socket is
      tried again.
    * ``rest_timeout_s``: python-binance's REST timeout.
    * ``recv_window_ms``: ``recvWindow`` of signed requests; an UNKNOWN placement not found once its timestamp
      plus this window has passed never reached the book (Binance refuses it after the window).
    * ``silence_s``: a user stream with no event this long while orders are open is re-subscribed, then
      reconciled from REST.
    * ``keepalive_s``: USD-M listenKey keep-alive period (keys live 60 minutes; Binance advises 30).
    * ``untracked_events``: ``drop`` (count and log) or ``pass`` user events of orders this connector neither
      placed nor loaded from the venue.
    * ``max_streams_per_connection``: market streams per combined connection (Binance allows 1024).
    * ``open_orders_at_start``: the user stream reads every open order of the account when it starts (weight
      80 on Spot, 40 on USD-M), so that events of orders placed before it are recognised. A caller that
      reconciles right after subscribing turns it off (the stream daemon does): any read of open orders
      (``open_orders``) makes the orders it finds known, so its reconciliation's per-symbol reads (6 a symbol
      on Spot) do the same for less, and its fill read covers the events of the moments before.
    """

    ws_api_timeout_s: float = 2.0
    ws_cooldown_s: float = 5.0
    rest_timeout_s: float = 10.0
    recv_window_ms: int = 5000
    silence_s: float = 60.0
    keepalive_s: float = 30 * 60.0
    untracked_events: str = "drop"
    max_streams_per_connection: int = 200
    open_orders_at_start: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BinanceSettings:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in options:
                continue
            raw = options[f.name]
            kind = type(f.default)
            if kind is bool:
                values[f.name] = _flag(f.name, raw)
                continue
            try:
                values[f.name] = kind(raw)
            except (TypeError, ValueError):
                raise ValueError(f"binance option {f.name}: {raw!r} is not a {kind.__name__}") from None
        if values.get("untracked_events", "drop") not in ("drop", "pass"):
            raise ValueError("binance option untracked_events: must be 'drop' or 'pass'")
        return cls(**values)


def _flag(name: str, raw: Any) -> bool:
    """A yes/no option: a bool, or its YAML/env spellings (``bool("false")`` would be True)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"binance option {name}: {raw!r} is not true or false")


def client_attrs(endpoints: Endpoints, market: Market) -> dict[str, str]:
    """python-binance ``AsyncClient`` URL class attributes for one market (strings without ``{}`` pass its
    tld formatting unchanged). SAPI (transfers) lives on the Spot host live; on the local exchange one port
    serves everything."""
    rest = endpoints.rest_url.rstrip("/")
    attrs: dict[str, str] = {}
    if market is Market.SPOT:
        attrs.update({"API_URL": rest + "/api", "MARGIN_API_URL": rest + "/sapi"})
        if endpoints.ws_api_url:
            attrs["WS_API_URL"] = endpoints.ws_api_url
    else:
        attrs.update({"FUTURES_URL": rest + "/fapi", "FUTURES_DATA_URL": rest + "/futures/data"})
        if endpoints.venue == "local":
            attrs.update({"API_URL": rest + "/api", "MARGIN_API_URL": rest + "/sapi"})
        if endpoints.ws_api_url:
            attrs["WS_FUTURES_URL"] = endpoints.ws_api_url
    return attrs


def socket_attrs(endpoints: Endpoints, market: Market) -> dict[str, str]:
    """``BinanceSocketManager`` stream URL attributes for one market."""
    if not endpoints.ws_url:
        return {}
    base = endpoints.ws_url.rstrip("/") + "/"
    return {"STREAM_URL": base} if market is Market.SPOT else {"FSTREAM_URL": base}
