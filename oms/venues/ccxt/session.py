"""One ccxt.pro exchange instance per account, with the three hooks the connector puts into ccxt.

* **Rate limits.** ccxt prices every REST call in its own cost units (``calculate_rate_limiter_cost`` from
  the endpoint table; for Binance 1 unit = 1 request weight) and, with ``enableRateLimit``, awaits
  ``throttle(cost)`` before sending. ccxt's own throttler is a per-instance token bucket that knows nothing
  of the other accounts on the same IP or of the venue's answers, so the connector keeps ccxt's pricing and
  replaces its bucket: ``throttle`` awaits the shared limiter's budget for this account instead. ccxt's
  ``rateLimit`` (ms per unit) converts the units to a per-minute budget where the venue publishes none.
* **Bad frames.** ccxt.pro decodes and dispatches each WebSocket frame inside an event-loop callback; a
  frame that fails there (garbage, truncated JSON, a shape ccxt does not expect) raises out of the callback
  and the connection's receive loop is never rescheduled: the stream goes silent. The guard wraps each
  client's ``handle_message`` so such a frame is counted, logged and dropped, and the loop carries on.
* **Keys.** ``set_credentials`` swaps the key of a live instance: REST signs with it from the next call;
  authenticated streams are closed so they re-subscribe with the new key.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro as ccxt_pro

log = logging.getLogger(__name__)

Acquire = Callable[[float], Awaitable[None]]
"""Awaits budget for a request of this many ccxt cost units (the shared limiter's, for this account)."""


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


def new_exchange(ccxt_id: str, config: dict[str, Any]) -> ccxt_pro.Exchange:
    """A ``ccxt.pro`` exchange by id (``binance``, ``bybit``, ...) built from its constructor dict."""
    try:
        cls = getattr(ccxt_pro, ccxt_id)
    except AttributeError:
        raise ValueError(f"ccxt.pro has no exchange {ccxt_id!r}") from None
    return cls(config)


class Session:
    """A ccxt.pro instance wired to the shared limiter and the frame guard, for one account."""

    def __init__(
        self,
        exchange: ccxt_pro.Exchange,
        name: str,
        acquire: Acquire | None = None,
    ) -> None:
        self.exchange = exchange
        self.name = name  # "exchange/account", for messages
        self.guard = FrameGuard(name)
        self.weight_spent = 0.0
        exchange.enableLastResponseHeaders = True  # Retry-After and the venue's used-weight headers
        if acquire is not None:
            exchange.enableRateLimit = True

            async def throttle(cost: float | None = None) -> None:
                units = 1.0 if cost is None else float(cost)
                self.weight_spent += units
                await acquire(units)

            exchange.throttle = throttle
        original_client = exchange.client

        def client(url: str) -> Any:
            c = original_client(url)
            self.guard.wrap(c)
            return c

        exchange.client = client

    @property
    def units_per_minute(self) -> float:
        """ccxt's own budget for this venue in its cost units per minute (``60000 / rateLimit``)."""
        return 60_000.0 / float(self.exchange.rateLimit or 1)

    async def set_credentials(self, api_key: str, secret: str, password: str | None = None) -> None:
        """Switch the key live: REST uses it from the next request; private streams re-subscribe with it."""
        ex = self.exchange
        ex.apiKey = api_key
        ex.secret = secret
        if password is not None:
            ex.password = password
        clients = dict(getattr(ex, "clients", None) or {})
        for url, client in clients.items():
            if _is_private(client):
                await client.close()
                ex.clients.pop(url, None)

    async def close(self) -> None:
        await self.exchange.close()


def _is_private(client: Any) -> bool:
    subs = getattr(client, "subscriptions", None) or {}
    url = str(getattr(client, "url", ""))
    private_hashes = ("orders", "myTrades", "balance", "positions", "userData", "authenticated")
    return "listenKey" in url or any(any(p in str(k) for p in private_hashes) for k in subs)
