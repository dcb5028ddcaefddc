"""One ccxt.pro exchange instance, with the hooks the connector puts into ccxt.

* **Rate limits.** ccxt prices every REST call in its own cost units (``calculate_rate_limiter_cost`` from
  its endpoint table; on Binance 1 unit = 1 request weight) and, with ``enableRateLimit``, awaits
  ``throttle(cost)`` before sending. ccxt's throttler is a token bucket per instance that knows nothing of
  the other accounts on the IP or of the venue's answers, so the session keeps ccxt's prices and replaces
  the bucket: ``throttle`` awaits the shared ``RequestBudget`` of the account (``acquire("POST
  /api/v3/order", weight=cost, orders=1)``); every answer's headers go to ``observe_headers`` and a 429/418
  to ``on_rate_limited`` with its ``Retry-After``.
* **Clock.** ccxt signs with ``nonce()``; the session makes that the shared ``TimeSync``'s server time, so
  every client of the account signs on the same measured offset.
* **Bad frames.** ccxt.pro decodes and dispatches each WebSocket frame inside an event-loop callback; a
  frame that fails there (garbage, truncated JSON, a shape ccxt does not expect) raises out of the callback
  and the connection's receive loop is never rescheduled: the stream goes silent for good. The guard wraps
  each client's ``handle_message`` so such a frame is counted, logged and dropped, and the loop carries on.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxt_pro

from oms.venues.ccxt.ws_orders import observe_answer

log = logging.getLogger(__name__)


class FrameGuard:
    """Counts and drops WebSocket frames ccxt.pro fails on, instead of letting them stall the stream."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.dropped: Counter[str] = Counter()  # by exception class name

    @property
    def total(self) -> int:
        return sum(self.dropped.values())

    def wrap(self, client: Any) -> None:
        if getattr(client, "_oms_guarded", False):
            return
        inner = client.handle_message

        def guarded(message: Any) -> None:
            try:
                inner(message)
            except Exception as exc:  # a bad frame: count, log, drop; the receive loop must go on
                self.dropped[type(exc).__name__] += 1
                text = getattr(message, "data", message)
                log.warning(
                    "%s: dropped a frame on %s that ccxt could not handle (%s: %s): %.200r",
                    self.venue,
                    client.url,
                    type(exc).__name__,
                    exc,
                    text,
                )

        client.handle_message = guarded
        client._oms_guarded = True


def new_exchange(ccxt_id: str, config: dict[str, Any]) -> Any:
    """A ``ccxt.pro`` exchange by id (``binance``, ``bybit``, ...) built from its constructor dict."""
    cls = getattr(ccxt_pro, ccxt_id, None)
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"ccxt.pro has no exchange {ccxt_id!r}")
    return cls(config)


def _orders_in(method: str, path: str, params: Any) -> int:
    """How many orders a request places (for the order-rate limits): 0 unless it creates or changes one."""
    if method not in ("POST", "PUT") or "order" not in path.lower() or "cancel" in path.lower():
        return 0
    batch = params.get("batchOrders") if isinstance(params, dict) else None
    if isinstance(batch, list | str):
        return len(batch) if isinstance(batch, list) else max(1, batch.count("{"))
    return 1


class Session:
    """A ccxt.pro instance wired to the shared limiter, the shared clock and the frame guard."""

    def __init__(
        self, exchange: Any, name: str, limiter: Any = None, clock: Any = None, config: dict[str, Any] | None = None
    ) -> None:
        self.name = name  # "exchange/account", for messages
        self.guard = FrameGuard(name)
        self.limiter = limiter
        self.clock = clock
        self.config = config or {}
        self.units_spent = 0.0
        self._pending: tuple[str, int] = ("", 0)
        self.exchange = exchange
        self._install(exchange)

    def _install(self, exchange: Any) -> None:
        exchange.enableLastResponseHeaders = True  # Retry-After and the venue's used-weight headers
        exchange.enableLastJsonResponse = True  # the venue's error code where ccxt keeps only its message
        if self.limiter is not None:
            self._hook_limiter(exchange, self.limiter)
        if self.clock is not None:
            exchange.nonce = self.clock.server_time_ms
        if self.limiter is not None:  # WebSocket-API answers carry the venue's rate-limit counters
            handle = exchange.handle_message

            def handle_message(client: Any, message: Any) -> Any:
                observe_answer(self.limiter, message)
                return handle(client, message)

            exchange.handle_message = handle_message
        original_client = exchange.client

        def client(url: str) -> Any:
            c = original_client(url)
            self.guard.wrap(c)
            return c

        exchange.client = client

    async def switch_key(self, api_key: str, secret: str) -> None:
        """A new ccxt instance signing with the new key (same config, markets and hooks) replaces the current
        one, so nothing of the old key survives (ccxt caches per-key state such as Binance's listenKey); the
        caller closes the old instance once it has checked the new key."""
        old = self.exchange
        new = type(old)({**self.config, "apiKey": api_key, "secret": secret})
        if old.markets:
            new.set_markets(old.markets, old.currencies)
        self._install(new)
        self.exchange = new

    def _hook_limiter(self, ex: Any, limiter: Any) -> None:
        ex.enableRateLimit = True
        calculate = ex.calculate_rate_limiter_cost
        on_response = ex.on_rest_response

        def calculate_cost(api: Any, method: str, path: str, params: Any, config: Any = None) -> Any:
            cost = calculate(api, method, path, params, config or {})
            self._pending = (self.endpoint(api, method, path), _orders_in(method, path, params))
            return cost

        async def throttle(cost: float | None = None) -> None:
            endpoint, orders = self._pending
            self._pending = ("", 0)
            units = 1.0 if cost is None else float(cost)
            self.units_spent += units
            await limiter.acquire(endpoint or "REST", weight=max(1, math.ceil(units)), orders=orders)

        def on_rest_response(code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any) -> Any:
            try:
                limiter.observe_headers(headers or {})
                if code in (418, 429):
                    retry = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
                    limiter.on_rate_limited(int(code), float(retry) if retry else 60.0)
            except Exception as exc:  # the limiter's bookkeeping must never break a request
                log.warning("%s: rate-limit bookkeeping failed: %s", self.name, exc)
            return on_response(code, reason, url, method, headers, body, *rest)

        ex.calculate_rate_limiter_cost = calculate_cost
        ex.throttle = throttle
        ex.on_rest_response = on_rest_response

    def endpoint(self, api: Any, method: str, path: str) -> str:
        """``"POST /api/v3/order"``: the request's method and URL path, the key of ``VenueMetadata.weights``."""
        key = api[0] if isinstance(api, list | tuple) and api else api
        base = self.exchange.urls.get("api", {})
        url = base.get(key) if isinstance(base, dict) and isinstance(key, str) else None
        prefix = urlsplit(url).path.rstrip("/") if isinstance(url, str) else ""
        return f"{method} {prefix}/{path}"

    async def close(self) -> None:
        await self.exchange.close()
