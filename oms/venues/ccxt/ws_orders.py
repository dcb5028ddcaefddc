"""Orders over ccxt.pro's WebSocket API (``createOrderWs``/``cancelOrderWs``), REST when that is not safe.

Where ccxt does an order call over the venue's WebSocket API natively (``has['createOrderWs']``,
``has['cancelOrderWs']``) and the account's endpoints name that API (``ws_api_url``), the execution client asks
``WsOrders.route`` before each placement or cancel, the same rule as the Binance connector's transport:

* **ws** when ccxt holds an open connection to the WebSocket API and no WebSocket request failed within
  ``cooldown_s``;
* **rest** otherwise ("socket down": a connection is then opened in the background, so the next call can use
  it; "cooldown"; "rest-only").

A WebSocket request that fails without the venue's answer (no answer within ``timeout_s``, the socket closed)
may have reached the venue: a cancel (idempotent) is repeated over REST; a placement raises ``UnknownOutcome``
and is resolved by its client order id, never re-sent. The venue's refusals come back as ccxt's typed
exceptions, as on REST.

Budget, as for the Binance connector: the WebSocket API connection holds one of the account's connection
slots (``RequestBudget.connection``) from its first use until the client closes (on Spot the user stream
shares that connection: ccxt keeps one client per URL); each request is charged to the shared budget before
it is sent (weight 1, and 1 order for a placement); and every answer's ``rateLimits`` (ccxt asks for them with
its ``returnRateLimits`` option) goes to ``observe_rate_limits`` through the session's message hook.

Every request's path, reason, latency and outcome is recorded (``records``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

WS = "ws"
REST = "rest"
# the ccxt calls used per operation: (WebSocket method, REST method, ``has`` key)
OPERATIONS = {
    "place": ("create_order_ws", "create_order", "createOrderWs"),
    "cancel": ("cancel_order_ws", "cancel_order", "cancelOrderWs"),
}
# ccxt's ``createOrderWs`` sends the caller's params again beside the request it built from them (ccxt 4.5's
# binance: ``extend(payload, params)``), so a unified name (``clientOrderId``, ``postOnly``, ...) reaches the venue
# as an unknown parameter (-1104 "Not all sent parameters were read"). Over the WebSocket API the client order
# id therefore goes under the venue's own name, which ccxt reads as well (data per ccxt id), and an order with
# other unified params (post-only, reduce-only, triggers, position side) goes over REST.
NATIVE_CLIENT_ID = {"binance": "newClientOrderId", "binanceusdm": "newClientOrderId"}
WS_PLACE_PARAMS = frozenset({"clientOrderId", "timeInForce"})
# ccxt's per-method options that make the venue return its rate-limit counters with each answer
RATE_LIMIT_OPTIONS = {"createOrderWs": {"returnRateLimits": True}, "cancelOrderWs": {"returnRateLimits": True}}


@dataclass(frozen=True, slots=True)
class WsRecord:
    """One order request: ``op``, the path it took, why, how long it took and how it ended."""

    op: str
    path: str
    reason: str
    latency_ns: int
    outcome: str


class WsOrders:
    """The WebSocket-or-REST choice of one ccxt execution client (see the module docstring)."""

    def __init__(
        self,
        session: Any,
        ws_api_url: str | None,
        limiter: Any,
        *,
        timeout_s: float = 2.0,
        cooldown_s: float = 5.0,
        enabled: bool = True,
    ) -> None:
        self.session = session
        self.url = ws_api_url.rstrip("/") if ws_api_url else None
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self.enabled = enabled and self.url is not None
        self.records: deque[WsRecord] = deque(maxlen=1000)
        self._failed_at = -1e18
        self._slot: Any = None
        self._connecting: asyncio.Task[None] | None = None

    # --- state ----------------------------------------------------------------------------------------------
    def supports(self, op: str) -> bool:
        """ccxt does ``op`` over the WebSocket API natively, and the account has one configured."""
        has = getattr(self.session.exchange, "has", None) or {}
        return self.enabled and has.get(OPERATIONS[op][2]) is True

    def place_params(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """``params`` as ``createOrderWs`` must get them (the client order id under the venue's own name), or None
        when this order goes over REST (see ``NATIVE_CLIENT_ID``)."""
        native = NATIVE_CLIENT_ID.get(str(getattr(self.session.exchange, "id", "")))
        if native is None or not set(params) <= WS_PLACE_PARAMS:
            return None
        out = dict(params)
        if "clientOrderId" in out:
            out[native] = out.pop("clientOrderId")
        return out

    def client(self) -> Any:
        """ccxt's client of the WebSocket API (None before the first use or after a loss).

        Its requests are charged to the shared budget (``charge``), so ccxt's own per-client token bucket is
        taken off it: a second limiter that paces every message at ccxt's REST ``rateLimit`` once its first
        tokens are spent (about 3 orders a second here, where the budget allows thousands)."""
        clients = getattr(self.session.exchange, "clients", None) or {}
        for url, c in clients.items():
            if self.url is not None and str(url).rstrip("/") == self.url:
                if not getattr(c, "_oms_budgeted", False):
                    c.throttle = _budgeted
                    c._oms_budgeted = True
                return c
        return None

    def up(self) -> bool:
        """ccxt holds an open connection to the WebSocket API."""
        c = self.client()
        return c is not None and c.connected.done() and not c.connected.exception() and not c.closed()

    def route(self, op: str) -> tuple[str, str]:
        if not self.supports(op):
            return REST, "rest-only"
        if not self.up():
            self._connect()
            return REST, "socket down"
        if time.monotonic() - self._failed_at < self.cooldown_s:
            return REST, "cooldown"
        return WS, "ws"

    def _connect(self) -> None:
        """Open the WebSocket API in the background (once at a time, at most once per cooldown)."""
        if self._connecting is not None and not self._connecting.done():
            return
        if time.monotonic() - self._failed_at < self.cooldown_s:
            return
        self._connecting = asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> bool:
        """Take a connection slot (once) and open ccxt's client of the WebSocket API; False if unreachable."""
        if not self.enabled or self.url is None:
            return False
        if self._slot is None and self.limiter is not None:
            slot = self.limiter.connection()
            await slot.__aenter__()
            self._slot = slot
        ex = self.session.exchange
        t0 = time.perf_counter_ns()
        try:
            ex.client(self.url)
            c = self.client()
            await asyncio.wait_for(c.connect(ex.session, 0), max(self.timeout_s * 2, 1.0))
        except Exception as exc:  # unreachable: REST carries on, the next route tries again after the cooldown
            self._failed_at = time.monotonic()
            self.records.append(WsRecord("connect", WS, "ws", time.perf_counter_ns() - t0, type(exc).__name__))
            return False
        self.records.append(WsRecord("connect", WS, "ws", time.perf_counter_ns() - t0, "ok"))
        return True

    def failed(self) -> None:
        """A WebSocket request failed without an answer: REST for ``cooldown_s``."""
        self._failed_at = time.monotonic()

    def record(self, op: str, path: str, reason: str, t0: int, outcome: str) -> None:
        self.records.append(WsRecord(op, path, reason, time.perf_counter_ns() - t0, outcome))

    async def charge(self, op: str) -> None:
        """The request's share of the account's budget, before it is sent."""
        if self.limiter is not None:
            orders = 1 if op == "place" else 0
            await self.limiter.acquire(f"ws {OPERATIONS[op][0]}", weight=1, orders=orders, trading=True)

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
        slot, self._slot = self._slot, None
        if slot is not None:
            await slot.__aexit__(None, None, None)


async def _budgeted(cost: Any = None) -> None:
    """ccxt's per-message throttle on the WebSocket-API client: the shared budget was charged already."""


def observe_answer(limiter: Any, message: Any) -> None:
    """A WebSocket-API answer's ``rateLimits`` into the shared budget (other messages are ignored)."""
    if limiter is None or not isinstance(message, Mapping):
        return
    limits = message.get("rateLimits")
    if isinstance(limits, list) and limits:
        try:
            limiter.observe_rate_limits(limits)
        except Exception as exc:  # the budget's bookkeeping must never break the stream
            log.warning("rate-limit bookkeeping of a WebSocket answer failed: %s", exc)
