"""One account (or the public side) on one Binance market: client, transport, symbols, clock, orders.

``MarketSession.request`` is the one door every call goes through: it waits for budget
(``ctx.limiter.acquire``), signs with the shared clock's server time, takes the WebSocket-API-first path
(``transport``), feeds the venue's answers back to the limiter (headers, ``rateLimits``, 429/418), resyncs the
clock on -1021 and retries only idempotent calls, and turns failures into the interface's typed errors named
with the account, the action and the order. The python-binance client is built lazily, on the first call,
inside the loop that makes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from oms.venues.binance.client import build_client, close_client, set_client_key
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.errors import CLOCK_SKEW, to_venue_error
from oms.venues.binance.signing import WsSigner
from oms.venues.binance.symbols import SymbolTable
from oms.venues.binance.tracker import OrderTracker
from oms.venues.binance.transport import NotSent, RequestLog, SentNoAnswer, Transport, VenueAnswer, venue_answer
from oms.venues.interface import VenueContext

log = logging.getLogger(__name__)


class MarketSession:
    """Everything one account needs on one market. ``symbols`` comes from the instrument provider."""

    def __init__(self, ctx: VenueContext, settings: BinanceSettings, symbols: SymbolTable | None = None) -> None:
        self.ctx = ctx
        self.account = str(ctx.account)
        self.market = ctx.market
        self.settings = settings
        self.symbols = symbols
        creds = ctx.credentials
        self._api_key = creds.api_key if creds is not None else None
        self._secret = creds.secret if creds is not None else None
        self.log = RequestLog()
        self.tracker = OrderTracker(self.account, settings.untracked_events)
        self.client: AsyncClient | None = None
        self.transport: Transport | None = None
        self._lock = asyncio.Lock()
        self._slot: Any = None
        self.key_version = 0

    # ---- life ------------------------------------------------------------------------------------------------
    async def ensure_started(self) -> None:
        """Build the client and open the WebSocket API once (REST works while that fails)."""
        if self.transport is not None:
            return
        async with self._lock:
            if self.transport is not None:
                return
            limiter = self.ctx.limiter
            self.client = build_client(
                self.ctx.endpoints,
                self.market,
                self.settings,
                self._api_key,
                self._secret,
                limiter.observe_headers,
                limiter.observe_rate_limits,
            )
            transport = Transport(
                self.client,
                self.market.value,
                self._acquire,
                self.log,
                self.settings.ws_api_timeout_s,
                self.settings.ws_cooldown_s,
                self.server_ms,
                WsSigner(self._api_key, self._secret) if self._api_key and self._secret else None,
            )
            if self.ctx.endpoints.ws_api_url is None:
                transport.ws_enabled = False
            self.transport = transport
        if self.transport.ws_enabled and self._api_key is not None:
            if self._slot is None:  # the WebSocket API is one of the account's connections while it lives
                slot = self.ctx.limiter.connection()
                await slot.__aenter__()
                self._slot = slot
            await self.transport.connect_ws()

    async def _acquire(self, endpoint: str, orders: int) -> None:
        await self.ctx.limiter.acquire(endpoint, orders=orders)

    async def close(self) -> None:
        if self.transport is not None and self.transport._reviving is not None:
            self.transport._reviving.cancel()
        client, self.client, self.transport = self.client, None, None
        if client is not None:
            await close_client(client)
        slot, self._slot = self._slot, None
        if slot is not None:
            await slot.__aexit__(None, None, None)

    @property
    def symbol_table(self) -> SymbolTable:
        if self.symbols is None:
            raise RuntimeError(f"{self.account} {self.market.value}: instruments are not loaded")
        return self.symbols

    # ---- time ----------------------------------------------------------------------------------------------
    def server_ms(self) -> int:
        """The venue's clock (the shared ``ctx.clock``)."""
        return self.ctx.clock.server_time_ms()

    def _sign_with_clock(self) -> None:
        if self.client is not None:
            self.client.timestamp_offset = self.ctx.clock.server_time_ms() - int(time.time() * 1000)

    async def fetch_server_time_ms(self) -> int:
        """``GET /api/v3/time`` (``/fapi/v1/time``) over REST: the clock's time source."""
        body = await self.request("time", {}, action="read the server time", sign=False)
        return int(body["serverTime"])

    # ---- keys ----------------------------------------------------------------------------------------------
    def set_key(self, api_key: str, secret: str) -> None:
        """Sign every later request with the new key (open sockets and orders stay as they are)."""
        self._api_key, self._secret = api_key, secret
        self.key_version += 1
        if self.client is not None:
            set_client_key(self.client, api_key, secret)
        if self.transport is not None:
            self.transport.signer = WsSigner(api_key, secret)

    # ---- the one door -------------------------------------------------------------------------------------
    async def request(
        self, op: str, params: dict[str, Any], *, action: str, coid: str | None = None, sign: bool = True
    ) -> Any:
        """Run ``op`` (see ``transport.OPS``); typed errors name ``action``, ``coid`` and the account."""
        await self.ensure_started()
        transport = self.transport
        assert transport is not None
        idempotent = transport.ops[op].idempotent
        for attempt in (1, 2):
            if sign:
                self._sign_with_clock()
            try:
                return await transport.call(op, params, coid or "")
            except VenueAnswer as answer:
                if answer.status in (418, 429):
                    self.ctx.limiter.on_rate_limited(answer.status, answer.retry_after_s or 1.0)
                if answer.code == CLOCK_SKEW and sign:
                    await self.ctx.clock.resync()
                    if idempotent and attempt == 1:
                        continue
                raise to_venue_error(answer, account=self.account, action=action, order=coid) from answer
            except (SentNoAnswer, NotSent) as exc:
                raise to_venue_error(exc, account=self.account, action=action, order=coid) from exc
            except BinanceAPIException as exc:  # raised outside the transport's own handling
                raise to_venue_error(venue_answer(exc, "rest"), account=self.account, action=action) from exc
        raise AssertionError("unreachable")
