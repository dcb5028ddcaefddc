"""One traded account inside the daemon: its venue clients per market, its lease, its user streams.

An ``AccountSession`` is built by the daemon for each account it owns. ``start()`` takes the account's lease
(``oms.bus.AccountLease``: a second daemon for the same account gets ``LeaseHeld`` and does not trade it),
builds the clients of every enabled market through the venue factory (credentials from the key store),
loads the balances into the kernel state, and subscribes the user data streams. ``consume(market)`` is the
per-market task feeding the stream's events to the daemon's handler; ``trading`` is False until the daemon
has reconciled the account (and again after every gap until it has reconciled once more).

Health facts (connected, last message age, rate-limit headroom) are read from here by ``stream.health``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from oms.bus import AccountLease, LeaseHeld, LeaseLost
from oms.model import AccountId, Balance, Fill, InstrumentId, Market, Side
from oms.venues.factory import AccountClients, VenueFactory
from oms.venues.interface import StreamStatus, UserEvent

log = logging.getLogger("stream.accounts")

EventHandler = Callable[["AccountSession", Market, UserEvent], Awaitable[None]]


@dataclass
class MarketLink:
    """One market of the account: its clients and the liveness of its user stream."""

    clients: AccountClients
    connected: bool = False
    last_message_ns: int = 0
    gaps: int = 0
    task: asyncio.Task | None = None


@dataclass
class AccountSession:
    account: AccountId
    number: int  # kernel account number
    markets: tuple[Market, ...]
    lease: AccountLease | None = None
    links: dict[Market, MarketLink] = field(default_factory=dict)
    balances: dict[tuple[Market, str], Balance] = field(default_factory=dict)
    trading: bool = False  # False until reconciled (at start and after every gap)
    refused: str = ""  # why the daemon does not trade it (lease held elsewhere, start failed)
    trading_state: str = "active"  # active | reduce_only | halted (kill switch or config)
    # Spot fills not yet in a balance update: Binance sends a fill's executionReport before the
    # outboundAccountPosition with the new balances, and a strategy may act in between (``free``)
    unsettled: dict[tuple[Market, str], Decimal] = field(default_factory=dict)
    _unsettled_trades: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return str(self.account)

    # ------------------------------------------------------------------ lifecycle
    async def take_lease(self, lease: AccountLease) -> None:
        """Acquire the account's lease; raises ``LeaseHeld`` naming the holder."""
        await lease.acquire()
        self.lease = lease

    async def connect(self, factory: VenueFactory) -> None:
        """Build the clients of every enabled market (keys from the factory's key provider)."""
        for market in self.markets:
            clients = await factory.account_clients(self.account.exchange, self.account.name, market)
            self.links[market] = MarketLink(clients)

    # ------------------------------------------------------------------ balances
    def set_balances(self, market: Market, balances: list[Balance], *, replace: bool = False) -> None:
        """The venue's balances (a stream's update, or the whole list with ``replace``): they include every fill
        before them, so the assets they name are settled."""
        if replace:
            for key in [k for k in self.balances if k[0] is market]:
                del self.balances[key]
            for key in [k for k in self.unsettled if k[0] is market]:
                del self.unsettled[key]
        for b in balances:
            self.balances[(market, b.asset)] = b
            self.unsettled.pop((market, b.asset), None)
        if not self.unsettled:
            self._unsettled_trades.clear()

    def book_fill(self, market: Market, fill: Fill) -> None:
        """A Spot fill's effect on the free balances until the venue's balance update arrives (each trade
        once: a replayed fill changes nothing)."""
        if market is not Market.SPOT or fill.key in self._unsettled_trades:
            return
        self._unsettled_trades.add(fill.key)
        ins = InstrumentId.parse(fill.symbol)
        qty, notional = Decimal(fill.qty), Decimal(fill.qty) * Decimal(fill.price)
        sign = 1 if fill.side is Side.BUY else -1
        for asset, delta in ((ins.base, sign * qty), (ins.quote, -sign * notional)):
            self.unsettled[(market, asset)] = self.unsettled.get((market, asset), Decimal(0)) + delta
        if fill.commission_asset and Decimal(fill.commission):
            key = (market, fill.commission_asset)
            self.unsettled[key] = self.unsettled.get(key, Decimal(0)) - Decimal(fill.commission)

    def free(self, market: Market, asset: str) -> Decimal | None:
        """The free balance of ``asset``: its last balance plus the fills since, what they brought in added and
        what they spent taken off (which a resting order had locked already: an estimate that errs low, never
        high). None when the venue never reported the asset and no fill moved it."""
        bal = self.balances.get((market, asset))
        pending = self.unsettled.get((market, asset))
        if bal is None and pending is None:
            return None
        return (Decimal(bal.free) if bal is not None else Decimal(0)) + (pending or Decimal(0))

    def subscribe(self, handler: EventHandler) -> None:
        """Start one consumer task per market (the subscription starts at once; see ``ready``)."""
        for market, link in self.links.items():
            stream = link.clients.user_data.events()
            link.task = asyncio.get_running_loop().create_task(
                self._consume(market, link, stream, handler), name=f"user stream {self.account} {market.value}"
            )

    async def ready(self, timeout_s: float = 30.0) -> None:
        for market, link in self.links.items():
            try:
                await asyncio.wait_for(link.clients.user_data.events().ready(), timeout_s)
            except TimeoutError:
                why = f"the {market.value} user stream was not subscribed within {timeout_s:g} s"
                raise TimeoutError(why) from None
            link.connected = True
            link.last_message_ns = time.time_ns()

    async def _consume(self, market: Market, link: MarketLink, stream, handler: EventHandler) -> None:
        try:
            async for ev in stream:
                link.last_message_ns = time.time_ns()
                if isinstance(ev, StreamStatus):
                    if ev.kind == "gap":
                        link.connected = False
                        link.gaps += 1
                    elif ev.kind in ("connected", "resynced"):
                        link.connected = True
                try:
                    await handler(self, market, ev)
                except Exception:  # one bad event must not end the account's stream
                    log.exception("account %s %s: handling %s failed", self.account, market.value, type(ev).__name__)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            link.connected = False
            self.trading = False
            self.refused = f"user stream ended: {type(exc).__name__}: {exc}"
            log.error("account %s %s: user stream ended for good (%s); not trading it", self.account, market.value, exc)

    async def keep_lease(self, interval_s: float, on_lost: Callable[[AccountSession, str], Awaitable[None]]) -> None:
        """Refresh the lease every ``interval_s`` until cancelled; ``on_lost`` when another daemon took it."""
        while self.lease is not None:
            await asyncio.sleep(interval_s)
            try:
                await self.lease.refresh()
            except LeaseLost as exc:
                try:  # expired (NATS was away longer than the TTL) and nobody took it: take it again
                    await self.lease.acquire()
                    log.warning("account %s: lease had expired; taken again", self.account)
                    continue
                except LeaseHeld:
                    pass
                except Exception as retry_exc:
                    log.warning("account %s: lease lost and not re-taken (%s)", self.account, retry_exc)
                await on_lost(self, str(exc))
                return
            except Exception as exc:  # NATS down: the lease lives until its TTL; try again
                log.warning(
                    "account %s: lease refresh failed (%s: %s); retrying", self.account, type(exc).__name__, exc
                )

    async def close(self) -> None:
        for link in self.links.values():
            if link.task is not None:
                link.task.cancel()
                try:
                    await link.task
                except (asyncio.CancelledError, Exception):
                    pass
        if self.lease is not None:
            try:
                await self.lease.release()
            except Exception as exc:
                log.warning("account %s: lease release failed: %s", self.account, exc)
            self.lease = None

    # ------------------------------------------------------------------ lookups
    def clients_for(self, symbol: str) -> AccountClients:
        market = InstrumentId.parse(symbol).market
        link = self.links.get(market)
        if link is None:
            raise KeyError(f"{self.account} does not trade the {market.value} market (symbol {symbol})")
        return link.clients

    @property
    def connected(self) -> bool:
        return bool(self.links) and all(link.connected for link in self.links.values())

    def last_message_age_s(self, now_ns: int | None = None) -> float | None:
        stamps = [link.last_message_ns for link in self.links.values() if link.last_message_ns]
        if not stamps:
            return None
        return ((now_ns or time.time_ns()) - min(stamps)) / 1e9

    def weight(self) -> tuple[int, int]:
        """(weight used this minute, weight limit) summed over the account's markets."""
        used = limit = 0
        for link in self.links.values():
            limiter = link.clients.context.limiter
            windows = getattr(limiter, "weight", {})
            w = windows.get(60) if isinstance(windows, dict) else None
            if w is not None:
                limiter.used()  # rolls the windows to now
                used += int(w.count)
                limit += int(w.limit)
        return used, limit
