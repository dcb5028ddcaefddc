"""The venue interface: what every connector offers, split the way the best adapters split it.

One connector (``Connector``, registered per client library in ``oms.venues.registry``) builds four facets
for one exchange market from a ``VenueContext``:

* ``InstrumentProvider``: the venue's markets as ``oms.model.Instrument``s and the symbol map both ways
  (unified ``BTC/USDT:USDT`` <-> venue ``BTCUSDT``).
* ``MarketDataClient``: public streams (trades, best bid/ask, depth diffs with sequence numbers, klines,
  mark price and funding) and REST snapshots, as model events. Needs no credentials.
* ``ExecutionClient``: one account's orders and account state over the venue's API (place, amend, cancel,
  cancel-all, batch, queries, balances, positions, futures settings, sub-account transfers).
* ``UserDataStream``: one account's pushed events (order updates, fills, balances, positions) as model events,
  kept gap-free across reconnects.

Conventions every implementation keeps (the contract tests in ``tests/venues/contract.py`` check them):

* Symbols in and out are unified symbols (``oms.model.InstrumentId``); prices and quantities are decimal
  strings exactly as the venue accepts them (the caller has checked them against the ``Instrument``; a
  connector does not round); times are int64 ns UTC; enums are ``oms.model`` members.
* Every method is a coroutine on the caller's asyncio loop; none blocks the loop (a sync client library runs
  in a thread). Every request first awaits its budget from ``VenueContext.limiter`` (it never earns a 429) and
  signs with ``VenueContext.clock``'s server time.
* Failures raise the typed errors of ``oms.venues.errors``, naming the action, the order and the account.
  The one rule that matters most: a request that was sent and whose answer never came raises
  ``UnknownOutcome``; it is never reported as failed and never re-sent by the connector.
* Streams never die of bad input: a garbage, truncated or unknown frame, an event for an unknown symbol or
  order is counted in ``Stream.dropped`` (by reason) and logged, and the stream carries on.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from oms.keys.provider import Credentials
from oms.model import (
    AccountId,
    AccountSettings,
    AmendOrder,
    Balance,
    BalanceEvent,
    BookSnapshot,
    CancelAll,
    CancelOrder,
    DepthDiff,
    Fill,
    Instrument,
    Kline,
    MarginType,
    Market,
    MarkPrice,
    Order,
    OrderEvent,
    PlaceOrder,
    Position,
    PositionEvent,
    PositionMode,
    Quote,
    Trade,
    Transfer,
    TransferEvent,
)
from oms.venues.errors import VenueError
from oms.venues.metadata import Capabilities, CommissionRates, VenueMetadata

T_co = TypeVar("T_co", covariant=True)


# --------------------------------------------------------------------------------------------- context
@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs of one venue market (local exchange or live), from ``configs/exchanges.yaml``.

    ``rest_url`` is the REST root (``https://fapi.binance.com``; local ``http://127.0.0.1:PORT``),
    ``ws_url`` the market-stream root (``wss://fstream.binance.com``; local ``ws://127.0.0.1:PORT/fstream``),
    ``ws_api_url`` the WebSocket API (``wss://ws-fapi.binance.com/ws-fapi/v1``; local ``.../ws-fapi/v1``),
    None where the venue has none. ``venue`` says which kind they are.
    """

    rest_url: str
    ws_url: str | None = None
    ws_api_url: str | None = None
    venue: Literal["local", "live"] = "local"


class RequestBudget(Protocol):
    """One account's rate-limit budget (``oms.venues.ratelimit`` implements it), shared with its IP.

    A connector calls ``acquire`` before every request and feeds back what the venue says, so the budget
    follows the venue's own count rather than a guess.
    """

    async def acquire(
        self, endpoint: str, *, weight: int | None = None, orders: int = 0, trading: bool | None = None
    ) -> None:
        """Wait until the request fits in every limit of the account and of its IP, then charge it.

        ``endpoint`` is the key of ``VenueMetadata.weights`` (``"POST /fapi/v1/order"``, ``"order.place"``);
        ``weight`` overrides its weight (e.g. depth by limit); ``orders`` is the number of orders it places
        (a batch of 5 is 5); ``trading`` says it places, cancels or resolves orders, which may use the IP's
        whole weight window (default: ``orders > 0`` or the endpoint's ``EndpointWeight.trading``), while
        other requests keep within its background share. Raises ``RateLimited`` only if the wait would exceed
        the budget's ``max_wait_s``.
        """
        ...

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Adopt the venue's counts from a REST response: ``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``,
        ``X-MBX-ORDER-COUNT-1D`` (and their futures spellings), whichever are present."""
        ...

    def observe_rate_limits(self, rate_limits: Sequence[Mapping[str, Any]]) -> None:
        """Adopt the ``rateLimits`` array of a WebSocket-API answer (``rateLimitType``, ``interval``,
        ``intervalNum``, ``limit``, ``count``)."""
        ...

    def on_rate_limited(self, status: int, retry_after_s: float) -> None:
        """The venue answered 429 or 418: every account on this IP waits ``retry_after_s``."""
        ...

    def connection(self) -> Any:
        """An async context manager holding one of the account's WebSocket connection slots (5 on
        Binance) while the connection is open; entering waits for a free slot."""
        ...


class TimeSync(Protocol):
    """The venue's clock as seen from here (``oms.venues.clock`` implements it)."""

    def server_time_ms(self) -> int:
        """The venue's current time in ms (local clock + measured offset): the ``timestamp`` to sign."""
        ...

    async def resync(self) -> None:
        """Measure the offset now (after a -1021, or when the refresh period has passed)."""
        ...


@dataclass(frozen=True)
class VenueContext:
    """Everything a connector needs to build one facet for one account and market.

    ``credentials`` is None for public market data. ``account_refs`` maps this exchange's account names to
    the venue's own identifiers where an API needs them (Binance sub-account transfers address accounts by
    email). ``options`` carries library options from the config (``ccxt_id``, timeouts such as
    ``ws_api_timeout_s``, ``recv_window_ms``).
    """

    account: AccountId
    market: Market
    endpoints: Endpoints
    limiter: RequestBudget
    clock: TimeSync
    credentials: Credentials | None = None
    account_refs: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exchange(self) -> str:
        return self.account.exchange


# --------------------------------------------------------------------------------------------- streams
@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A stream's own news, yielded between its events.

    ``kind``: ``connected`` (subscribed, or re-subscribed), ``gap`` (the connection broke or went silent;
    events may be missing until the next ``resynced``), ``resynced`` (after a gap: the REST snapshot that
    covers it has been yielded, so the consumer's state is complete again). ``reason`` says why.
    """

    kind: Literal["connected", "gap", "resynced"]
    reason: str = ""
    event_ns: int = 0


@runtime_checkable
class Stream(Protocol[T_co]):
    """An async iterator of events with a subscription handshake and drop counters.

    The subscription starts when the method that returns the stream is called (a background reader owns the
    connection), not on the first iteration: ``await stream.ready()`` returns once the venue has acknowledged
    it, and every event published after that is delivered, even if the consumer starts iterating later.
    ``async for ev in stream`` yields events in the venue's order. ``close()`` ends
    the iteration and releases the connection. Iteration raises only when the stream is closed for good
    (``AuthError`` after the key was revoked, ``VenueError`` after reconnects were given up).
    """

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def __anext__(self) -> T_co: ...

    async def ready(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def dropped(self) -> Mapping[str, int]:
        """Frames dropped so far, by reason (``bad_frame``, ``unknown_symbol``, ``unknown_order``, ...)."""
        ...


UserEvent = OrderEvent | Fill | BalanceEvent | PositionEvent | AccountSettings | StreamStatus
MarketEvent = Trade | Quote | DepthDiff | Kline | MarkPrice | StreamStatus


# --------------------------------------------------------------------------------------------- facets
@runtime_checkable
class InstrumentProvider(Protocol):
    """The venue's markets as Instruments, and the symbol map both ways."""

    async def load(self, reload: bool = False) -> Mapping[str, Instrument]:
        """Fetch the markets (Binance exchangeInfo; ccxt load_markets) once, or again with ``reload``;
        returns unified symbol -> Instrument for every trading or halted market of this context's market."""
        ...

    def instrument(self, symbol: str) -> Instrument:
        """The loaded Instrument of a unified symbol; ``KeyError`` naming the symbol and the exchange."""
        ...

    def to_venue(self, symbol: str) -> str:
        """``BTC/USDT:USDT`` -> the venue's id (``BTCUSDT``); ``KeyError`` if unknown."""
        ...

    def from_venue(self, venue_symbol: str) -> str:
        """The venue's id -> the unified symbol; ``KeyError`` if unknown."""
        ...


@runtime_checkable
class MarketDataClient(Protocol):
    """Public market data of one exchange market, as model events (no credentials needed).

    Each ``*`` stream method subscribes to the given unified symbols and returns at once; ``await
    stream.ready()`` waits for the venue's acknowledgement. Reconnects are the client's job: after one it
    yields ``StreamStatus("gap")`` then ``StreamStatus("connected")``; a depth consumer then resynchronises
    from ``book_snapshot`` by the diffs' sequence numbers.
    """

    def trades(self, symbols: Sequence[str]) -> Stream[Trade | StreamStatus]: ...

    def quotes(self, symbols: Sequence[str]) -> Stream[Quote | StreamStatus]:
        """Best bid/ask updates (Binance ``@bookTicker``)."""
        ...

    def depth(self, symbols: Sequence[str], *, interval_ms: int = 100) -> Stream[DepthDiff | StreamStatus]:
        """Depth diffs with ``first_update_id``/``last_update_id`` (and ``prev_update_id`` on futures), one
        per venue window (Binance ``@depth@100ms``), unmodified: sequence checks are the consumer's."""
        ...

    async def book_snapshot(self, symbol: str, limit: int = 1000) -> BookSnapshot:
        """A REST depth snapshot with its ``last_update_id``."""
        ...

    def klines(self, symbols: Sequence[str], interval: str) -> Stream[Kline | StreamStatus]:
        """Bars of ``interval`` (Binance names: ``1m``, ``1h``, ...), running and closed."""
        ...

    def mark_prices(self, symbols: Sequence[str]) -> Stream[MarkPrice | StreamStatus]:
        """Mark/index price and funding rate of perpetuals (Binance ``@markPrice@1s``); USD-M only."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ExecutionClient(Protocol):
    """One account's trading and account state on one market.

    Results are model objects in unified symbols. Every order method names the order's client order id in
    its errors. ``place`` never invents a client order id: pass ``PlaceOrder.with_client_order_id()``.
    Idempotent calls (queries, cancels, settings) may be retried by the connector after a ``-1021`` resync or
    a ``NetworkError``; order placement is never retried by it.
    """

    context: VenueContext
    capabilities: Capabilities
    metadata: VenueMetadata

    async def place(self, cmd: PlaceOrder) -> OrderEvent:
        """Place one order (WebSocket API first where the venue has one, REST as fallback).

        Returns the venue's answer as an event: ``accepted`` (status ``new``), or ``fill``/``partial_fill``
        for an order that traded at once (``filled_qty``, ``avg_price``; its fills arrive on the user stream
        and from ``fills``), or ``expired`` (an IOC/FOK that did not trade). Raises ``Rejected`` (nothing
        placed), ``UnknownOutcome`` (resolve with ``query_order``), ``RateLimited``, ``AuthError``,
        ``NetworkError`` (not sent), ``Unsupported`` (order type or option the venue lacks).
        """
        ...

    async def amend(self, cmd: AmendOrder) -> OrderEvent:
        """Change price and/or quantity in place (``capabilities.amend``); ``amended`` event. ``Unsupported``
        where the venue cannot (the daemon then cancels and replaces)."""
        ...

    async def cancel(self, cmd: CancelOrder) -> OrderEvent:
        """Cancel one order by client order id; the ``canceled`` event. ``OrderNotFound`` if the venue has no
        such open order (already filled, cancelled, or never placed)."""
        ...

    async def cancel_all(self, cmd: CancelAll) -> list[OrderEvent]:
        """Cancel every open order of the account on ``cmd.symbol`` (all symbols if None; emulated by a loop
        where ``capabilities.cancel_all`` is False); one ``canceled`` event per order."""
        ...

    async def place_batch(self, cmds: Sequence[PlaceOrder]) -> list[OrderEvent | VenueError]:
        """Place several orders, in one request where ``capabilities.batch_orders`` (up to ``max_batch`` per
        request), else one by one. One result per command, in order: the event, or the error (not raised)."""
        ...

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        """The order as the venue has it now (``OrderNotFound`` if it has none): how an ``UnknownOutcome`` is
        resolved."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders of the account (on one symbol, or all)."""
        ...

    async def fills(self, symbol: str, since_ns: int, until_ns: int | None = None) -> list[Fill]:
        """The account's fills on ``symbol`` from ``since_ns`` (inclusive) to ``until_ns`` (exclusive; now if
        None), oldest first, all pages. Equal to the user stream's fills for the same trades."""
        ...

    async def commission(self, symbol: str) -> CommissionRates:
        """The account's own maker/taker commission on ``symbol`` (``capabilities.commission_rates``;
        ``Unsupported`` where the venue does not report it: use ``metadata.fee()`` then)."""
        ...

    async def balances(self) -> list[Balance]:
        """Every asset balance of this market's wallet with a non-zero free or locked amount."""
        ...

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open futures positions (``qty`` != 0), one per symbol and position side; ``[]`` on Spot."""
        ...

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettings:
        """Set a symbol's leverage; returns the venue's answer (leverage and its max notional)."""
        ...

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> AccountSettings:
        """Set cross/isolated margin on a symbol; already being in that type is success, not an error."""
        ...

    async def set_position_mode(self, mode: PositionMode) -> AccountSettings:
        """Set one-way or hedge mode for the account; already being in that mode is success."""
        ...

    async def position_mode(self) -> PositionMode:
        """The account's position mode (one-way on Spot)."""
        ...

    async def transfer(self, transfer: Transfer) -> TransferEvent:
        """Move an asset between accounts (main <-> sub, sub <-> sub) or markets of this exchange.

        Called on the client of the account the venue requires to initiate it (Binance: the main account's
        key for universal sub-account transfers; accounts addressed via ``VenueContext.account_refs``).
        ``transfer.transfer_id`` is the idempotency key where the venue takes one. Returns ``done`` with the
        venue's transfer id, or raises like an order (``Rejected``, ``UnknownOutcome``, ...).
        """
        ...

    async def find_transfer(self, transfer: Transfer, since_ns: int | None = None) -> TransferEvent | None:
        """``transfer`` as the venue's transfer history has it (looked up by ``transfer.transfer_id``, the
        idempotency key ``transfer`` sent), or None if the venue never executed it: how a transfer whose
        answer never came, or a rerun after a crash, is resolved without moving money twice. ``Unsupported``
        where the venue has no such history (``capabilities.sub_account_transfer`` off)."""
        ...

    async def sub_account_balances(self, account: str, market: Market) -> list[Balance]:
        """The balances of sub-account ``account`` (a name in ``VenueContext.account_refs``) on its ``market``
        wallet, read with this client's key, which must be the main account's (Binance's master-account
        endpoints): a rebalance needs one key, not one per sub-account. ``free`` is what a transfer can move
        out (USD-M: the wallet's ``maxWithdrawAmount``; ``locked`` the rest of the wallet balance).
        ``Unsupported`` where the venue has no such endpoints (``capabilities.sub_account_balances`` off)."""
        ...

    async def server_time_ns(self) -> int:
        """The venue's time (Binance ``GET /api/v3/time``), for ``TimeSync``."""
        ...

    async def set_credentials(self, creds: Credentials) -> None:
        """Switch to a new key without dropping sessions (key rotation).

        Signed requests after the call use ``creds``; sessions authenticated with the old key (a WebSocket-API
        ``session.logon``) re-authenticate with the new one. Returns once nothing uses the old key any more,
        so the caller may revoke it then. ``AuthError`` (and the old key kept) if the venue refuses the new.
        """
        ...

    async def close(self) -> None: ...


@runtime_checkable
class UserDataStream(Protocol):
    """One account's pushed events on one market, as model events, gap-free.

    ``events()`` yields ``OrderEvent`` (every order update; fills also as ``OrderEvent.fill``), ``Fill``
    (each trade once), ``BalanceEvent``, ``PositionEvent``, ``AccountSettings`` (leverage or margin changes
    pushed by the venue) and ``StreamStatus``. On Binance: Spot via ``userDataStream.subscribe.signature`` on
    the WebSocket API, USD-M via a listenKey kept alive. When the subscription lapses (``listenKeyExpired``, a
    closed socket, silence while orders are open) it yields ``StreamStatus("gap")``, re-subscribes, then yields
    a REST snapshot covering the gap (open orders as ``OrderEvent``s, fills since the last one seen, balances
    and positions) and ``StreamStatus("resynced")``. Duplicates across that seam are possible: consumers drop
    them by ``Fill.key`` and the status machine.
    """

    def events(self) -> Stream[UserEvent]: ...

    async def set_credentials(self, creds: Credentials) -> None:
        """Re-subscribe with the new key (the old subscription ends after the new one is acknowledged)."""
        ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- connectors
class Connector(abc.ABC):
    """A client library's connector: builds the four facets for any exchange market it serves.

    Subclasses set ``library`` (``python-binance``, ``ccxt``: the ``library`` of ``configs/exchanges.yaml``),
    register with ``@oms.venues.registry.register``, and have a constructor without arguments. The factory
    (``oms.venues.factory``) makes the contexts from the config and calls these methods.
    """

    library: ClassVar[str]

    @abc.abstractmethod
    def capabilities(self, exchange: str, market: Market) -> Capabilities: ...

    @abc.abstractmethod
    def metadata(self, exchange: str, market: Market) -> VenueMetadata: ...

    @abc.abstractmethod
    def instrument_provider(self, ctx: VenueContext) -> InstrumentProvider: ...

    @abc.abstractmethod
    def market_data_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> MarketDataClient: ...

    @abc.abstractmethod
    def execution_client(self, ctx: VenueContext, instruments: InstrumentProvider) -> ExecutionClient: ...

    @abc.abstractmethod
    def user_data_stream(
        self, ctx: VenueContext, instruments: InstrumentProvider, execution: ExecutionClient
    ) -> UserDataStream:
        """The stream uses ``execution`` for its REST snapshot after a gap."""
        ...
