"""python-binance clients for one account, pointed at the configured endpoints, with the hooks the connector
needs and nothing patched in the library.

* URLs: python-binance keeps them as class attributes formatted with the tld; a subclass carrying the
  configured strings (no ``{}``) redirects every REST path, and both WebSocket APIs.
* REST answers: an aiohttp ``TraceConfig`` sees every response's headers (``X-MBX-USED-WEIGHT-1M``,
  ``X-MBX-ORDER-COUNT-10S``/``-1D``/``-1M``, ``Retry-After``), per request, however many run at once.
* WebSocket-API answers: python-binance returns only ``result``; ``RateLimitedWebsocketAPI`` (a subclass of its
  ``WebsocketAPI``) reads each answer's ``rateLimits`` as it is decoded, and is installed as the client's
  ``ws_api``/``ws_future`` before first use.
* Market streams: ``raw_frames`` makes one of python-binance's sockets hand the frame text on undecoded, so
  ``msgspec`` decodes it once into the wire struct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from binance import AsyncClient, BinanceSocketManager
from binance.ws.websocket_api import WebsocketAPI

from oms.venues.binance.config import BinanceEndpoints, BinanceSettings

HeaderSink = Callable[[str, int, Any], None]  # (market, http status, headers)
LimitsSink = Callable[[str, list[dict[str, Any]]], None]  # (market, rateLimits rows)


class RateLimitedWebsocketAPI(WebsocketAPI):
    """python-binance's WebSocket API, reporting every answer's ``rateLimits`` (and error ``retryAfter``)."""

    def __init__(self, url: str, market: str, on_limits: LimitsSink, timeout_s: float) -> None:
        super().__init__(url=url)
        self.market = market
        self._on_limits = on_limits
        self.TIMEOUT = timeout_s  # the library's own per-request wait; the connector's is shorter

    def json_loads(self, msg: Any) -> Any:
        parsed = super().json_loads(msg)
        if isinstance(parsed, dict):
            limits = parsed.get("rateLimits")
            if limits:
                try:
                    self._on_limits(self.market, limits)
                except Exception:  # a limiter problem must not break the socket's read loop
                    self._log.exception("rateLimits sink failed")
        return parsed


def _url_class(base: type, attrs: dict[str, str], name: str) -> type:
    return type(name, (base,), attrs)


def build_client(
    endpoints: BinanceEndpoints,
    settings: BinanceSettings,
    api_key: str,
    secret: str,
    on_headers: HeaderSink,
    on_limits: LimitsSink,
) -> AsyncClient:
    """An ``AsyncClient`` for one account (not yet connected: call ``ping``/``get_server_time`` to start).

    Must run inside the event loop that will use it (python-binance binds its session to the loop).
    """
    trace = aiohttp.TraceConfig()

    async def on_request_end(session: Any, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        path = params.url.path
        market = "usdm" if path.startswith("/fapi") else "spot"
        on_headers(market, params.response.status, params.response.headers)

    trace.on_request_end.append(on_request_end)
    cls = _url_class(AsyncClient, endpoints.client_attrs(), "ConfiguredAsyncClient")
    client: AsyncClient = cls(api_key, secret, session_params={"trace_configs": [trace]})
    client.REQUEST_TIMEOUT = settings.rest_timeout_s
    client.REQUEST_RECVWINDOW = settings.recv_window_ms
    library_timeout = max(settings.ws_timeout_s * 4, 10.0)
    client.ws_api = RateLimitedWebsocketAPI(endpoints.spot.ws_api_url, "spot", on_limits, library_timeout)
    client.ws_future = RateLimitedWebsocketAPI(endpoints.usdm.ws_api_url, "usdm", on_limits, library_timeout)
    return client


def set_client_key(client: AsyncClient, api_key: str, secret: str) -> None:
    """Switch a live client to another key: the REST signer and header, and the WebSocket-API signer.

    python-binance signs each request when it is made (``API_KEY``/``API_SECRET``) and puts the key in the
    session's default headers once, so both are replaced; open sockets stay open.
    """
    client.API_KEY = api_key
    client.API_SECRET = secret
    client.session.headers["X-MBX-APIKEY"] = api_key


def socket_manager(client: AsyncClient, endpoints: BinanceEndpoints, user_timeout_s: float) -> BinanceSocketManager:
    """A ``BinanceSocketManager`` for the configured stream URLs (``user_timeout_s``: listenKey keep-alive)."""
    cls = _url_class(BinanceSocketManager, endpoints.socket_attrs(), "ConfiguredSocketManager")
    return cls(client, user_timeout=user_timeout_s, max_queue_size=10_000)


def _identity(msg: Any) -> Any:
    return msg


def raw_frames(socket: Any) -> Any:
    """Make a python-binance stream socket queue each frame's text undecoded (errors still arrive as dicts)."""
    socket.json_loads = _identity
    return socket
