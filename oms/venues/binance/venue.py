"""One Binance account (Spot and/or USD-M) on python-binance: the connector the factory builds.

It holds a ``MarketSession`` per market (client, transport, symbols, tracker), its execution and its user
stream, and publishes every model event (order events, balances, positions) on one queue that ``events()``
iterates. Calls are routed by the symbol's market (``BTC/USDT`` Spot, ``BTC/USDT:USDT`` USD-M).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from oms.keys import Credentials
from oms.model import (
    AccountSettings,
    AmendOrder,
    Balance,
    BookSnapshot,
    CancelAll,
    CancelOrder,
    Fill,
    InstrumentId,
    InstrumentSpec,
    MarginType,
    Market,
    Order,
    PlaceOrder,
    Position,
    PositionMode,
)
from oms.venues.binance.config import BinanceEndpoints, BinanceSettings
from oms.venues.binance.execution import MarketExecution
from oms.venues.binance.market_data import MarketStream, depth_snapshot, stream_names
from oms.venues.binance.session import Acquire, BackoffSink, HeadersSink, LimitsSink, MarketSession, _ignore, _no_wait
from oms.venues.binance.symbols import SymbolTable
from oms.venues.binance.user_stream import UserStream
from oms.venues.errors import Unsupported, VenueError

log = logging.getLogger(__name__)


class BinanceAccount:
    """A Binance account's connector; ``await start()`` in the loop that will use it, ``await close()``."""

    def __init__(
        self,
        account: str,
        credentials: dict[Market, Credentials],
        endpoints: BinanceEndpoints,
        settings: BinanceSettings | None = None,
        *,
        acquire: Acquire = _no_wait,
        on_headers: HeadersSink = _ignore,
        on_limits: LimitsSink = _ignore,
        on_backoff: BackoffSink = _ignore,
        symbols: dict[Market, SymbolTable] | None = None,
    ) -> None:
        self.account = account
        self.settings = settings or BinanceSettings()
        self.endpoints = endpoints
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.sessions: dict[Market, MarketSession] = {}
        self.execution: dict[Market, MarketExecution] = {}
        self.user_streams: dict[Market, UserStream] = {}
        for market, cred in credentials.items():
            s = MarketSession(
                account,
                market,
                cred.api_key,
                cred.secret,
                endpoints,
                self.settings,
                acquire=acquire,
                on_headers=on_headers,
                on_limits=on_limits,
                on_backoff=on_backoff,
                symbols=(symbols or {}).get(market),
            )
            self.sessions[market] = s
            self.execution[market] = MarketExecution(s, self.publish)
        self.credentials = dict(credentials)

    # ---- life ---------------------------------------------------------------------------------------------
    async def start(self, user_streams: bool = True, connect_ws: bool = True) -> None:
        """Start every market: clock, symbols, WebSocket API, open orders, then the user streams."""
        await asyncio.gather(*(s.start(connect_ws) for s in self.sessions.values()))
        for ex in self.execution.values():
            await ex.load_open_orders()
        if user_streams:
            for market, s in self.sessions.items():
                us = self.user_streams[market] = UserStream(s, self.execution[market], self.publish)
                us.start()

    async def wait_subscribed(self, timeout: float = 10.0) -> None:
        """Until every user stream is subscribed (and reconciled after a gap)."""
        await asyncio.wait_for(asyncio.gather(*(u.reconciled.wait() for u in self.user_streams.values())), timeout)

    async def close(self) -> None:
        for us in self.user_streams.values():
            await us.stop()
        for ex in self.execution.values():
            for task in list(ex.resolving.values()):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for s in self.sessions.values():
            await s.close()

    # ---- events ---------------------------------------------------------------------------------------------
    def publish(self, event: object) -> None:
        self.queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Any]:
        """Every model event of this account (order events with fills, balances, positions), in order."""
        while True:
            yield await self.queue.get()

    # ---- routing ---------------------------------------------------------------------------------------------
    def market_of(self, symbol: str) -> Market:
        return InstrumentId.parse(symbol).market

    def _ex(self, symbol_or_market: str | Market, action: str) -> MarketExecution:
        market = symbol_or_market if isinstance(symbol_or_market, Market) else self.market_of(symbol_or_market)
        ex = self.execution.get(market)
        if ex is None:
            raise Unsupported(f"{market.value} is not enabled for this account", account=self.account, action=action)
        return ex

    def session(self, market: Market) -> MarketSession:
        return self.sessions[market]

    # ---- instruments ----------------------------------------------------------------------------------------
    def instruments(self, market: Market | None = None) -> list[InstrumentSpec]:
        out = []
        for m, s in self.sessions.items():
            if market is None or m is market:
                out.extend(s.symbol_table.specs.values())
        return out

    def to_venue_symbol(self, symbol: str) -> str:
        return self.sessions[self.market_of(symbol)].symbol_table.venue(symbol)

    def to_symbol(self, venue_symbol: str, market: Market) -> str:
        return self.sessions[market].symbol_table.unified(venue_symbol)

    # ---- execution --------------------------------------------------------------------------------------------
    async def place(self, cmd: PlaceOrder) -> Order:
        return await self._ex(cmd.symbol, "place").place(cmd)

    async def amend(self, cmd: AmendOrder) -> Order:
        return await self._ex(cmd.symbol, "amend").amend(cmd)

    async def cancel(self, cmd: CancelOrder) -> Order:
        return await self._ex(cmd.symbol, "cancel").cancel(cmd)

    async def cancel_all(self, cmd: CancelAll) -> list[Order]:
        if cmd.symbol is not None:
            return await self._ex(cmd.symbol, "cancel all").cancel_all(cmd)
        out: list[Order] = []
        for ex in self.execution.values():
            out.extend(await ex.cancel_all(cmd))
        return out

    async def place_batch(self, cmds: list[PlaceOrder]) -> list[Order | VenueError]:
        if not cmds:
            return []
        return await self._ex(cmds[0].symbol, "place batch").place_batch(cmds)

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        return await self._ex(symbol, "query").query_order(symbol, client_order_id)

    async def resolve(self, symbol: str, client_order_id: str) -> Order | None:
        """The true state of an UNKNOWN placement (None: it never reached the book)."""
        ex = self._ex(symbol, "resolve")
        task = ex.resolving.get(client_order_id)
        if task is not None:
            return await asyncio.shield(task)
        return await ex.resolve(symbol, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return await self._ex(symbol, "list open orders").open_orders(symbol)
        out: list[Order] = []
        for ex in self.execution.values():
            out.extend(await ex.open_orders())
        return out

    async def fills_since(self, symbol: str, since_ns: int) -> list[Fill]:
        return await self._ex(symbol, "list fills").fills_since(symbol, since_ns)

    async def balances(self, market: Market | None = None) -> list[Balance]:
        out: list[Balance] = []
        for m, ex in self.execution.items():
            if market is None or m is market:
                out.extend(await ex.balances())
        return out

    async def positions(self) -> list[Position]:
        ex = self.execution.get(Market.USDM)
        return await ex.positions() if ex is not None else []

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        return await self._ex(symbol, "set leverage").set_leverage(symbol, leverage)

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        return await self._ex(symbol, "set margin type").set_margin_type(symbol, margin_type)

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        return await self._ex(Market.USDM, "set position mode").set_position_mode(mode)

    # ---- keys ------------------------------------------------------------------------------------------------
    def set_credentials(self, credentials: Credentials) -> None:
        """Switch one market to a new key live: REST signer, WebSocket-API signer, user-stream subscription.

        Open orders stay open (they belong to the account, not the key); the user stream subscribes again
        under the new key and reconciles the moment in between from REST.
        """
        market = Market(credentials.market)
        s = self.sessions.get(market)
        if s is None:
            raise Unsupported(f"{market.value} is not enabled for this account", account=self.account, action="set key")
        s.set_key(credentials.api_key, credentials.secret)
        self.credentials[market] = credentials
        us = self.user_streams.get(market)
        if us is not None:
            us.rotate()

    # ---- market data ----------------------------------------------------------------------------------------
    def market_stream(self, market: Market, symbols: Iterable[str], channels: Iterable[str]) -> MarketStream:
        """A combined stream of ``channels`` (``trades``, ``agg_trades``, ``quotes``, ``depth``, ``mark_price``,
        ``kline_1m``...) for unified ``symbols``; iterate ``.events()``."""
        s = self.sessions[market]
        return MarketStream(s, stream_names(s.symbol_table, symbols, channels))

    async def depth_snapshot(self, symbol: str, limit: int = 1000) -> BookSnapshot:
        return await depth_snapshot(self.sessions[self.market_of(symbol)], symbol, limit)
