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

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from binance import AsyncClient, BinanceSocketManager
from binance.ws.constants import WSListenerState
from binance.ws.websocket_api import WebsocketAPI

from oms.model import Market
from oms.venues.binance.config import BinanceSettings, client_attrs, socket_attrs
from oms.venues.interface import Endpoints

HeaderSink = Callable[[Any], None]  # the response headers of one REST answer
LimitsSink = Callable[[list[dict[str, Any]]], None]  # the rateLimits rows of one WebSocket-API answer


class RateLimitedWebsocketAPI(WebsocketAPI):
    """python-binance's WebSocket API, reporting every answer's ``rateLimits``."""

    def __init__(self, url: str, on_limits: LimitsSink, timeout_s: float) -> None:
        super().__init__(url=url)
        self._on_limits = on_limits
        self.TIMEOUT = timeout_s  # the library's own per-request wait; the connector's is shorter
        self.late_answers = 0  # answers that came as their request gave up (``_handle_message``)

    def _handle_message(self, msg: Any) -> Any:
        """python-binance's, surviving an answer to a request that has just given up: a timeout cancels the
        request's future one loop step before the request removes it, and an answer read in that step made
        ``set_result`` raise ``InvalidStateError``, which ended the read loop for good (every later request on
        the socket then timed out; seen with 200 accounts on one loaded daemon). The late answer is dropped."""
        try:
            return super()._handle_message(msg)
        except asyncio.InvalidStateError:
            self.late_answers += 1
            return None

    def json_loads(self, msg: Any) -> Any:
        parsed = super().json_loads(msg)
        if isinstance(parsed, dict):
            limits = parsed.get("rateLimits")
            if limits:
                try:
                    self._on_limits(limits)
                except Exception:  # a limiter problem must not break the socket's read loop
                    self._log.exception("rateLimits sink failed")
        return parsed


class SpotAmendCalls:
    """Binance Spot's amend keep priority, which python-binance 1.0.37 does not wrap: ``PUT
    /api/v3/order/amend/keepPriority`` and the WebSocket API's ``order.amend.keepPriority``, sent through the
    library's own request helpers (same URLs, signing, timeouts and answer handling as its other calls)."""

    async def amend_keep_priority_order(self, **params: Any) -> Any:
        return await self._put("order/amend/keepPriority", True, data=params)  # type: ignore[attr-defined]

    async def ws_amend_keep_priority_order(self, **params: Any) -> Any:
        return await self._ws_api_request("order.amend.keepPriority", True, params)  # type: ignore[attr-defined]


def build_client(
    endpoints: Endpoints,
    market: Market,
    settings: BinanceSettings,
    api_key: str | None,
    secret: str | None,
    on_headers: HeaderSink,
    on_limits: LimitsSink,
) -> AsyncClient:
    """An ``AsyncClient`` for one account on one market (connects lazily).

    Must be built inside the event loop that will use it (python-binance binds its session to the loop).
    """
    trace = aiohttp.TraceConfig()

    async def on_request_end(session: Any, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        on_headers(params.response.headers)

    trace.on_request_end.append(on_request_end)
    cls = type("ConfiguredAsyncClient", (SpotAmendCalls, AsyncClient), client_attrs(endpoints, market))
    client: AsyncClient = cls(api_key, secret, session_params={"trace_configs": [trace]})
    client.REQUEST_TIMEOUT = settings.rest_timeout_s
    client.REQUEST_RECVWINDOW = settings.recv_window_ms
    library_timeout = max(settings.ws_api_timeout_s * 4, 10.0)
    if endpoints.ws_api_url:
        api = RateLimitedWebsocketAPI(endpoints.ws_api_url, on_limits, library_timeout)
        if market is Market.SPOT:
            client.ws_api = api
        else:
            client.ws_future = api
    return client


async def close_client(client: AsyncClient) -> None:
    """Close both WebSocket APIs and the REST session (python-binance's ``close_connection`` leaves the
    futures one open). The socket is closed before the library's own close, whose read loop would otherwise
    notice the exit only when its next ``recv`` times out."""
    for api in (client.ws_api, client.ws_future):
        try:
            api.ws_state = WSListenerState.EXITING
            if api.ws is not None:
                await asyncio.wait_for(api.ws.close(), 1.0)
            await asyncio.wait_for(api.close(), 2.0)
        except Exception:  # a socket that is already gone
            pass
    await client.session.close()


def set_client_key(client: AsyncClient, api_key: str, secret: str) -> None:
    """Switch a live client to another key: the REST signer and header, and the WebSocket-API signer.

    python-binance signs each request when it is made (``API_KEY``/``API_SECRET``) and put the key into the
    session's default headers once, so both are replaced; open sockets stay open.
    """
    client.API_KEY = api_key
    client.API_SECRET = secret
    client.session.headers["X-MBX-APIKEY"] = api_key


def socket_manager(
    client: AsyncClient, endpoints: Endpoints, market: Market, keepalive_s: float
) -> BinanceSocketManager:
    """A ``BinanceSocketManager`` for the configured stream URLs (``keepalive_s``: listenKey keep-alive)."""
    cls = type("ConfiguredSocketManager", (BinanceSocketManager,), socket_attrs(endpoints, market))
    return cls(client, user_timeout=keepalive_s, max_queue_size=10_000)


def _identity(msg: Any) -> Any:
    return msg


def raw_frames(socket: Any) -> Any:
    """Make a python-binance stream socket queue each frame's text undecoded (errors still arrive as dicts)."""
    socket.json_loads = _identity
    return socket
