"""One account on one Binance market: its python-binance client, transport, symbols, clock and orders.

``MarketSession.request`` is the one door every call goes through: it waits for rate-limit budget, takes
the WebSocket-API-first path (``transport``), feeds the venue's answers to the limiter, resyncs the server
time on -1021 (and retries only idempotent calls), and turns failures into the interface's typed errors,
named with the account, the action and the order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from oms.model import Market
from oms.venues.binance.client import build_client, set_client_key
from oms.venues.binance.config import BinanceEndpoints, BinanceSettings
from oms.venues.binance.errors import CLOCK_SKEW, to_venue_error
from oms.venues.binance.symbols import SymbolTable
from oms.venues.binance.tracker import OrderTracker
from oms.venues.binance.transport import NotSent, RequestLog, SentNoAnswer, Transport, VenueAnswer, venue_answer
from oms.venues.binance.wire_rest import ExchangeInfo, convert

log = logging.getLogger(__name__)

# (market, weight, is_order) -> waits until the budget allows the request
Acquire = Callable[[str, int, bool], Awaitable[None]]
# (market, http status, headers-like) / (market, rateLimits rows) / (market, status, retry-after s)
HeadersSink = Callable[[str, int, Any], None]
LimitsSink = Callable[[str, list[dict[str, Any]]], None]
BackoffSink = Callable[[str, int, float], None]


async def _no_wait(market: str, weight: int, order: bool) -> None:
    return None


def _ignore(*args: Any) -> None:
    return None


class MarketSession:
    """Everything one account needs on one market; ``start()`` inside the loop that will use it."""

    def __init__(
        self,
        account: str,
        market: Market,
        api_key: str,
        secret: str,
        endpoints: BinanceEndpoints,
        settings: BinanceSettings,
        *,
        acquire: Acquire = _no_wait,
        on_headers: HeadersSink = _ignore,
        on_limits: LimitsSink = _ignore,
        on_backoff: BackoffSink = _ignore,
        symbols: SymbolTable | None = None,
    ) -> None:
        self.account = account
        self.market = market
        self.endpoints = endpoints
        self.settings = settings
        self._api_key = api_key
        self._secret = secret
        self._acquire = acquire
        self._on_headers = on_headers
        self._on_limits = on_limits
        self._on_backoff = on_backoff
        self.symbols = symbols
        self.log = RequestLog()
        self.tracker = OrderTracker(account, settings.untracked_events)
        self.client: AsyncClient | None = None
        self.transport: Transport | None = None
        self.resyncs = 0
        self.key_version = 0

    # ---- life ------------------------------------------------------------------------------------------------
    async def start(self, connect_ws: bool = True) -> None:
        """Build the client, measure the server-time offset, load the symbols, open the WebSocket API."""
        self.client = build_client(
            self.endpoints, self.settings, self._api_key, self._secret, self._on_headers, self._on_limits
        )
        self.transport = Transport(
            self.client,
            self.market.value,
            self._acquire,
            self.log,
            self.settings.ws_timeout_s,
            self.settings.ws_cooldown_s,
            self.server_ms,
        )
        await self.resync_clock()
        if self.symbols is None:
            body = await self.request("exchange_info", {}, action="load markets")
            self.symbols = SymbolTable.from_exchange_info(
                convert(body, ExchangeInfo), self.market, self.settings.exchange
            )
        if connect_ws:
            await self.transport.connect_ws()

    async def close(self) -> None:
        client = self.client
        if client is None:
            return
        self.client = None
        for api in (client.ws_api, client.ws_future):
            try:
                await asyncio.wait_for(api.close(), 2.0)
            except Exception:
                log.debug("closing a WebSocket API of %s", self.account, exc_info=True)
        await client.session.close()

    @property
    def symbol_table(self) -> SymbolTable:
        assert self.symbols is not None, "session not started"
        return self.symbols

    # ---- time ----------------------------------------------------------------------------------------------
    def server_ms(self) -> int:
        """The venue's clock as this session knows it (local clock plus the measured offset)."""
        offset = self.client.timestamp_offset if self.client is not None else 0
        return int(time.time() * 1000) + offset

    async def resync_clock(self) -> int:
        """Measure the server-time offset again (half the round trip corrects the answer); returns it in ms."""
        assert self.client is not None
        method = self.client.get_server_time if self.market is Market.SPOT else self.client.futures_time
        t0 = time.time()
        try:
            body = await method()
        except Exception as exc:
            raise to_venue_error(_as_transport_error(exc), account=self.account, action="sync the clock") from exc
        t1 = time.time()
        offset = int(body["serverTime"] - (t0 + t1) / 2 * 1000)
        self.client.timestamp_offset = offset
        self.resyncs += 1
        return offset

    # ---- keys ----------------------------------------------------------------------------------------------
    def set_key(self, api_key: str, secret: str) -> None:
        """Sign every later request with the new key (open sockets and orders stay as they are)."""
        self._api_key, self._secret = api_key, secret
        self.key_version += 1
        if self.client is not None:
            set_client_key(self.client, api_key, secret)

    # ---- the one door -------------------------------------------------------------------------------------
    async def request(self, op: str, params: dict[str, Any], *, action: str, coid: str | None = None) -> Any:
        """Run ``op`` (see ``transport.OPS``); typed errors name ``action``, ``coid`` and the account."""
        assert self.transport is not None, "session not started"
        idempotent = self.transport.ops[op].idempotent
        for attempt in (1, 2):
            try:
                return await self.transport.call(op, params, coid or "")
            except VenueAnswer as answer:
                if answer.status in (418, 429):
                    self._on_backoff(self.market.value, answer.status, answer.retry_after_s or 1.0)
                if answer.code == CLOCK_SKEW:
                    await self.resync_clock()
                    if idempotent and attempt == 1:
                        continue
                raise to_venue_error(answer, account=self.account, action=action, order=coid) from answer
            except (SentNoAnswer, NotSent) as exc:
                raise to_venue_error(exc, account=self.account, action=action, order=coid) from exc
        raise AssertionError("unreachable")


def _as_transport_error(exc: Exception) -> Exception:
    if isinstance(exc, BinanceAPIException):
        return venue_answer(exc, "rest")
    return NotSent(str(exc))
