"""Correctly configured ccxt and python-binance clients for a local exchange, so nobody repeats URLs.

The local exchange serves Spot and USD-M Futures on one port (see ``localex.server.app`` for the
path layout). ccxt: URLs go in the constructor (never ``set_sandbox_mode``); ccxt.pro tells Spot from
futures by its WebSocket URL (Spot contains ``/stream``, futures must not). python-binance: URLs are class
attributes formatted in ``__init__``, so each helper builds a subclass carrying the local URLs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from binance import AsyncClient, BinanceSocketManager, Client, ThreadedWebsocketManager


@dataclass(frozen=True, slots=True)
class LocalexUrls:
    """Every base URL of one local exchange (``http://127.0.0.1:PORT``)."""

    http: str

    @property
    def ws(self) -> str:
        """The WebSocket base (``ws://127.0.0.1:PORT``)."""
        return "ws://" + self.http.split("://", 1)[1]

    def ccxt_api(self) -> dict[str, Any]:
        """ccxt's ``urls.api`` for binance (REST and ccxt.pro WebSocket keys)."""
        h, w = self.http, self.ws
        return {
            "public": f"{h}/api/v3",
            "private": f"{h}/api/v3",
            "v1": f"{h}/api/v1",
            "sapi": f"{h}/sapi/v1",
            "sapiV2": f"{h}/sapi/v2",
            "sapiV3": f"{h}/sapi/v3",
            "sapiV4": f"{h}/sapi/v4",
            "fapiPublic": f"{h}/fapi/v1",
            "fapiPublicV2": f"{h}/fapi/v2",
            "fapiPublicV3": f"{h}/fapi/v3",
            "fapiPrivate": f"{h}/fapi/v1",
            "fapiPrivateV2": f"{h}/fapi/v2",
            "fapiPrivateV3": f"{h}/fapi/v3",
            "fapiData": f"{h}/futures/data",
            "ws": {
                "spot": f"{w}/stream/ws",
                "margin": f"{w}/stream/ws",
                "linear": f"{w}/fstream/ws",
                "ws-api": {"spot": f"{w}/ws-api/v3", "linear": f"{w}/ws-fapi/v1"},
            },
        }


def ccxt_config(
    base_url: str, api_key: str | None = None, secret: str | None = None, default_type: str = "spot", **extra: Any
) -> dict[str, Any]:
    """The constructor dict for ``ccxt.binance`` (any flavour) against ``base_url``.

    ``default_type`` is ``spot`` or ``swap`` (USD-M perpetuals). Options keep ccxt away from endpoints a
    local exchange does not serve (currencies, margin pairs, COIN-M markets).
    """
    config: dict[str, Any] = {
        "urls": {"api": LocalexUrls(base_url.rstrip("/")).ccxt_api()},
        "enableRateLimit": False,
        "timeout": 10_000,
        "options": {
            "defaultType": default_type,
            "fetchMarkets": {"types": ["spot", "linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "adjustForTimeDifference": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    }
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    options = extra.pop("options", None)
    if options:
        config["options"].update(options)
    config.update(extra)
    return config


def ccxt_sync(
    base_url: str, api_key: str | None = None, secret: str | None = None, default_type: str = "spot", **extra: Any
) -> ccxt.binance:
    """A synchronous ``ccxt.binance`` talking to the local exchange."""
    return ccxt.binance(ccxt_config(base_url, api_key, secret, default_type, **extra))


def ccxt_async_client(
    base_url: str, api_key: str | None = None, secret: str | None = None, default_type: str = "spot", **extra: Any
) -> ccxt_async.binance:
    """An asyncio ``ccxt.async_support.binance`` talking to the local exchange (close it when done)."""
    return ccxt_async.binance(ccxt_config(base_url, api_key, secret, default_type, **extra))


def ccxt_pro_client(
    base_url: str, api_key: str | None = None, secret: str | None = None, default_type: str = "spot", **extra: Any
) -> ccxt_pro.binance:
    """A ``ccxt.pro.binance`` (REST + WebSocket streams + WebSocket API) for the local exchange."""
    return ccxt_pro.binance(ccxt_config(base_url, api_key, secret, default_type, **extra))


def _binance_url_attrs(base_url: str) -> dict[str, str]:
    urls = LocalexUrls(base_url.rstrip("/"))
    h, w = urls.http, urls.ws
    return {
        "API_URL": f"{h}/api",
        "MARGIN_API_URL": f"{h}/sapi",
        "FUTURES_URL": f"{h}/fapi",
        "FUTURES_DATA_URL": f"{h}/futures/data",
        "FUTURES_COIN_URL": f"{h}/dapi",
        "FUTURES_COIN_DATA_URL": f"{h}/futures/data",
        "PAPI_URL": f"{h}/papi",
        "OPTIONS_URL": f"{h}/eapi",
        "WS_API_URL": f"{w}/ws-api/v3",
        "WS_FUTURES_URL": f"{w}/ws-fapi/v1",
    }


def binance_client_class(base_url: str) -> type[Client]:
    """A python-binance ``Client`` subclass whose URLs point at the local exchange."""
    return type("LocalexClient", (Client,), _binance_url_attrs(base_url))


def binance_async_client_class(base_url: str) -> type[AsyncClient]:
    """A python-binance ``AsyncClient`` subclass whose URLs point at the local exchange."""
    return type("LocalexAsyncClient", (AsyncClient,), _binance_url_attrs(base_url))


def binance_sync(base_url: str, api_key: str | None = None, secret: str | None = None, ping: bool = False) -> Client:
    """A python-binance ``Client`` for the local exchange (``ping=False`` skips the construction ping)."""
    return binance_client_class(base_url)(api_key, secret, ping=ping)


async def binance_async(base_url: str, api_key: str | None = None, secret: str | None = None) -> AsyncClient:
    """A python-binance ``AsyncClient`` for the local exchange, created as ``AsyncClient.create`` does."""
    return await binance_async_client_class(base_url).create(api_key, secret)


def binance_socket_manager_class(base_url: str) -> type[BinanceSocketManager]:
    """A python-binance ``BinanceSocketManager`` subclass whose stream URLs point at the local exchange."""
    ws = LocalexUrls(base_url.rstrip("/")).ws
    return type(
        "LocalexSocketManager",
        (BinanceSocketManager,),
        {
            "STREAM_URL": f"{ws}/",
            "FSTREAM_URL": f"{ws}/fstream/",
            "DSTREAM_URL": f"{ws}/dstream/",
        },
    )


def binance_socket_manager(client: AsyncClient, base_url: str, **kwargs: Any) -> BinanceSocketManager:
    """A python-binance ``BinanceSocketManager`` whose stream URLs point at the local exchange."""
    return binance_socket_manager_class(base_url)(client, **kwargs)


class _LocalexThreadedWebsocketManager(ThreadedWebsocketManager):
    """``ThreadedWebsocketManager`` whose own client and socket manager are the local exchange's.

    The library creates both inside its thread (``AsyncClient.create`` and ``BinanceSocketManager``),
    so the two hooks that do so are replaced; everything else (threads, callbacks, stop) is the library's.
    """

    _client_cls: type[AsyncClient]
    _bsm_cls: type[BinanceSocketManager]

    async def socket_listener(self) -> None:
        try:
            self._client = await self._client_cls.create(loop=self._loop, **self._client_params)
            self._bsm = self._bsm_cls(client=self._client, max_queue_size=self._max_queue_size)
        except Exception as exc:  # the library's own behaviour: log, stop the manager
            self._log.error("Failed to create client: %s", exc)
            self.stop()
        while self._running:
            await asyncio.sleep(0.2)
        while self._socket_running:
            await asyncio.sleep(0.2)


def binance_threaded_socket_manager(
    base_url: str, api_key: str | None = None, secret: str | None = None, **kwargs: Any
) -> ThreadedWebsocketManager:
    """A python-binance ``ThreadedWebsocketManager`` (not started) streaming from the local exchange.

    Use it as the library documents: ``twm.start()``, ``twm.start_trade_socket(callback, symbol)``, ...,
    ``twm.stop()``.
    """
    cls = type(
        "LocalexThreadedWebsocketManager",
        (_LocalexThreadedWebsocketManager,),
        {
            "_client_cls": binance_async_client_class(base_url),
            "_bsm_cls": binance_socket_manager_class(base_url),
        },
    )
    return cls(api_key, secret, **kwargs)
