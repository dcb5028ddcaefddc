"""The Binance connector's settings: endpoints per market and the behaviour knobs, frozen and documented.

Endpoints are Binance's base URLs (``configs/exchanges.yaml``: ``rest_url``, ``ws_url``, ``ws_api_url`` per
market); ``local_endpoints`` gives the local exchange's, whose paths are Binance's own on one port.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MarketUrls:
    """One market's base URLs: REST (``https://api.binance.com``), market streams, WebSocket API."""

    rest_url: str
    ws_url: str
    ws_api_url: str


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    """Spot and USD-M endpoints of one Binance venue (live, testnet or the local exchange)."""

    spot: MarketUrls
    usdm: MarketUrls

    def client_attrs(self) -> dict[str, str]:
        """python-binance's URL class attributes (strings without ``{}`` pass its formatting unchanged)."""
        s, u = self.spot, self.usdm
        return {
            "API_URL": s.rest_url.rstrip("/") + "/api",
            "MARGIN_API_URL": s.rest_url.rstrip("/") + "/sapi",
            "FUTURES_URL": u.rest_url.rstrip("/") + "/fapi",
            "FUTURES_DATA_URL": u.rest_url.rstrip("/") + "/futures/data",
            "WS_API_URL": s.ws_api_url,
            "WS_FUTURES_URL": u.ws_api_url,
        }

    def socket_attrs(self) -> dict[str, str]:
        """``BinanceSocketManager``'s stream URL attributes."""
        return {"STREAM_URL": self.spot.ws_url.rstrip("/") + "/", "FSTREAM_URL": self.usdm.ws_url.rstrip("/") + "/"}


LIVE = BinanceEndpoints(
    spot=MarketUrls(
        "https://api.binance.com", "wss://stream.binance.com:9443", "wss://ws-api.binance.com:443/ws-api/v3"
    ),
    usdm=MarketUrls("https://fapi.binance.com", "wss://fstream.binance.com", "wss://ws-fapi.binance.com/ws-fapi/v1"),
)


def local_endpoints(base_url: str) -> BinanceEndpoints:
    """The local exchange at ``http://127.0.0.1:PORT``: Spot and USD-M on one port, Binance's paths."""
    http = base_url.rstrip("/")
    ws = "ws://" + http.split("://", 1)[1]
    return BinanceEndpoints(
        spot=MarketUrls(http, ws, f"{ws}/ws-api/v3"),
        usdm=MarketUrls(http, f"{ws}/fstream", f"{ws}/ws-fapi/v1"),
    )


@dataclass(frozen=True, slots=True)
class BinanceSettings:
    """How the connector behaves. Every field has Binance-sensible defaults; tests shorten the timers.

    * ``ws_timeout_s``: a WebSocket-API request slower than this is given up: an idempotent one is repeated
      over REST, an order placement becomes UNKNOWN and is resolved by its client order id.
    * ``ws_cooldown_s``: after a WebSocket-API failure, requests go over REST for this long before the socket
      is tried again.
    * ``rest_timeout_s``: python-binance's REST request timeout.
    * ``recv_window_ms``: the ``recvWindow`` of order placements; an UNKNOWN placement not found after its
      timestamp plus this window never reached the book (Binance refuses it after the window).
    * ``silence_s``: a user stream with no event for this long while orders are open is re-subscribed, then
      reconciled from REST.
    * ``keepalive_s``: USD-M listenKey keep-alive period (Binance: keys live 60 minutes; ping every 30).
    * ``untracked_events``: ``drop`` (count and log) or ``pass`` user events of orders this connector did not
      place and has not loaded from REST.
    * ``streams_per_connection``: market streams per combined-stream connection (Binance allows 1024).
    """

    ws_timeout_s: float = 2.0
    ws_cooldown_s: float = 5.0
    rest_timeout_s: float = 10.0
    recv_window_ms: int = 5000
    silence_s: float = 60.0
    keepalive_s: float = 30 * 60.0
    untracked_events: str = "drop"
    streams_per_connection: int = 200
    exchange: str = "binance"
