"""Rate-limit budgets per account and per IP that callers await instead of earning a 429.

Binance counts request weight per IP (``X-MBX-USED-WEIGHT-1M``), orders per account
(``X-MBX-ORDER-COUNT-10S``, ``-1D``; futures ``-1M``), and allows a few WebSocket connections per account.
The budgets here mirror that:

* ``IpBudget`` (one per exchange market and outbound address, shared by all its accounts): request-weight
  windows and the back-off after a 429/418 (``Retry-After``), which stops every account on the IP.
* ``AccountBudget`` (one per account and market; implements ``oms.venues.RequestBudget``): the account's own
  weight share (``configs/exchanges.yaml`` ``*_weight_per_minute``), orders per 10 s and per day, and its
  WebSocket connection slots; every ``acquire`` also charges the IP.

Windows are fixed and aligned to the epoch like the venue's (a minute starts at :00, a day at 00:00 UTC).
The venue's own counts win: a header or a WebSocket-API ``rateLimits`` entry raises our count to the venue's
(never lowers it: requests in flight are ours, not yet the venue's) and adopts a lower limit. Waiters queue
in order per account; a request that cannot fit within ``max_wait_s`` raises ``RateLimited`` rather than
waiting forever, and one larger than a window's whole limit raises ``ValueError``.

``RateLimits`` is the hub that hands out the budgets (``account(...)``), so that accounts on one IP share it.
Time and sleep are injectable (``now_ns``, ``sleep``) for tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from oms.venues.errors import RateLimited
from oms.venues.metadata import RateLimitRule, VenueMetadata

NowNs = Callable[[], int]
Sleep = Callable[[float], Awaitable[Any]]
_UNITS = {"S": 1, "SECOND": 1, "M": 60, "MINUTE": 60, "H": 3600, "HOUR": 3600, "D": 86400, "DAY": 86400}
# Share of each IP weight window that requests other than trading ones may fill (see ``IpBudget``).
BACKGROUND_SHARE = 0.8
_HEADER = re.compile(r"^x-(?:mbx|sapi)-(used-ip-weight|used-uid-weight|used-weight|order-count)-(\d+)([smhd])$")


class Window:
    """``limit`` units per fixed window of ``interval_s``, aligned to the epoch."""

    __slots__ = ("name", "interval_ns", "limit", "count", "start_ns")

    def __init__(self, name: str, interval_s: float, limit: int):
        if limit <= 0 or interval_s <= 0:
            raise ValueError(f"rate window {name}: limit and interval must be positive")
        self.name = name
        self.interval_ns = int(interval_s * 1e9)
        self.limit = int(limit)
        self.count = 0
        self.start_ns = 0

    def _roll(self, now: int) -> None:
        start = now - now % self.interval_ns
        if start != self.start_ns:
            self.start_ns, self.count = start, 0

    def wait_ns(self, cost: int, now: int, share: float = 1.0) -> int:
        """0 if ``cost`` fits now within ``share`` of the limit, else the ns until this window resets (a cost
        larger than the share fits only in an empty window)."""
        if cost <= 0:
            return 0
        if cost > self.limit:
            raise ValueError(f"a request of {cost} exceeds the whole {self.name} limit of {self.limit}")
        self._roll(now)
        cap = self.limit if share >= 1.0 else int(self.limit * share)
        fits = self.count + cost <= cap or (self.count == 0 and cost <= self.limit)
        return 0 if fits else self.start_ns + self.interval_ns - now

    def charge(self, cost: int, now: int) -> None:
        self._roll(now)
        self.count += cost

    def adopt(self, count: int, now: int, limit: int | None = None) -> None:
        """The venue's count (and limit) for the current window."""
        self._roll(now)
        self.count = max(self.count, int(count))
        if limit is not None and 0 < int(limit) < self.limit:
            self.limit = int(limit)

    @property
    def used(self) -> int:
        return self.count


def _interval_s(num: int | str, unit: str) -> int:
    return int(num) * _UNITS[unit.upper()]


class IpBudget:
    """Request weight per IP and the IP-wide back-off after a 429/418.

    Trading requests (placements, cancels, amends, order queries: ``trading``) may use the whole window;
    every other request (reads, snapshots, subscriptions, reconciliation, silence checks) waits until it fits
    within ``background_share`` of it, so the rest is always there for orders: 200 accounts starting at
    once fill at most that share of the IP's minute (``tests/bench/test_daemon_accounts_bench.py``).
    """

    def __init__(
        self,
        key: str,
        rules: Sequence[RateLimitRule] = (),
        *,
        now_ns: NowNs = time.time_ns,
        background_share: float = BACKGROUND_SHARE,
    ):
        if not 0 < background_share <= 1:
            raise ValueError(f"{key}: the background share of the IP weight must be in (0, 1] (got {background_share})")
        self.key = key
        self.now_ns = now_ns
        self.background_share = background_share
        self.weight = {
            int(r.interval_s): Window(f"{key} weight/{r.interval_s:g}s", r.interval_s, r.limit)
            for r in rules
            if r.kind == "weight" and r.scope == "ip"
        }
        self.backoff_until_ns = 0
        self.backoffs = 0

    def wait_ns(self, weight: int, now: int, trading: bool = True) -> int:
        share = 1.0 if trading else self.background_share
        waits = [w.wait_ns(weight, now, share) for w in self.weight.values()]
        return max([self.backoff_until_ns - now, *waits, 0])

    def charge(self, weight: int, now: int) -> None:
        for w in self.weight.values():
            w.charge(weight, now)

    def back_off(self, retry_after_s: float) -> None:
        until = self.now_ns() + int(max(retry_after_s, 0.0) * 1e9)
        self.backoff_until_ns = max(self.backoff_until_ns, until)
        self.backoffs += 1


@dataclass(frozen=True)
class AccountLimits:
    """One account's budget on one market (from ``configs/exchanges.yaml`` ``RateBudget``)."""

    weight_per_minute: int
    orders_per_10s: int
    orders_per_day: int
    ws_connections: int = 5


class AccountBudget:
    """One account's budget on one market; implements ``oms.venues.RequestBudget``."""

    def __init__(
        self,
        account: str,
        limits: AccountLimits,
        ip: IpBudget,
        metadata: VenueMetadata | None = None,
        *,
        max_wait_s: float = 120.0,
        now_ns: NowNs = time.time_ns,
        sleep: Sleep = asyncio.sleep,
    ):
        self.account = account
        self.ip = ip
        self.metadata = metadata
        self.max_wait_s = max_wait_s
        self.now_ns = now_ns
        self.sleep = sleep
        self.weight = {60: Window(f"{account} weight/1m", 60, limits.weight_per_minute)}
        self.orders = {
            10: Window(f"{account} orders/10s", 10, limits.orders_per_10s),
            86400: Window(f"{account} orders/1d", 86400, limits.orders_per_day),
        }
        for rule in metadata.rate_limits if metadata else ():
            if rule.scope == "account" and rule.kind in ("weight", "orders"):
                windows = self.weight if rule.kind == "weight" else self.orders
                key = int(rule.interval_s)
                if key in windows:
                    windows[key].limit = min(windows[key].limit, rule.limit)
                else:
                    windows[key] = Window(f"{account} {rule.kind}/{rule.interval_s:g}s", rule.interval_s, rule.limit)
        self.ws_limit = limits.ws_connections
        self.ws_open = 0
        self._ws_free = asyncio.Condition()
        # waiters queue in order per account, trading requests in a queue of their own: a cancel never waits
        # behind a read that waits for the background share
        self._locks = {True: asyncio.Lock(), False: asyncio.Lock()}
        self.waited_s = 0.0
        self.requests = 0
        self.spent = 0  # weight charged since the start, all windows aside (what a start or a task cost)

    # --- RequestBudget ------------------------------------------------------------------------------------
    async def acquire(
        self, endpoint: str, *, weight: int | None = None, orders: int = 0, trading: bool | None = None
    ) -> None:
        listed = self.metadata.weight(endpoint) if self.metadata else None
        if weight is None:
            weight = listed.weight if listed else 1
        if trading is None:
            trading = orders > 0 or (listed is not None and (listed.orders or listed.trading))
        async with self._locks[trading]:
            while True:
                now = self.now_ns()
                wait = max(
                    self.ip.wait_ns(weight, now, trading),
                    *(w.wait_ns(weight, now) for w in self.weight.values()),
                    *(w.wait_ns(orders, now) for w in self.orders.values()),
                )
                if wait <= 0:
                    self.ip.charge(weight, now)
                    for w in self.weight.values():
                        w.charge(weight, now)
                    for w in self.orders.values():
                        w.charge(orders, now)
                    self.requests += 1
                    self.spent += weight
                    return
                if wait > self.max_wait_s * 1e9:
                    raise RateLimited(
                        f"{endpoint} would wait {wait / 1e9:.1f} s for budget (more than {self.max_wait_s:g} s)",
                        retry_after_s=wait / 1e9,
                        status=0,
                        account=self.account,
                        action="call",
                    )
                self.waited_s += wait / 1e9
                await self.sleep(wait / 1e9)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        now = self.now_ns()
        for name, value in headers.items():
            m = _HEADER.match(name.lower())
            if not m:
                continue
            try:
                count = int(value)
            except (TypeError, ValueError):
                continue
            kind, interval = m.group(1), _interval_s(m.group(2), m.group(3))
            if kind == "order-count":
                self._adopt(self.orders, interval, count, now)
            else:  # request weight is counted per IP: it is not this account's own share
                self._adopt(self.ip.weight, interval, count, now)

    def observe_rate_limits(self, rate_limits: Sequence[Mapping[str, Any]]) -> None:
        now = self.now_ns()
        for rl in rate_limits:
            try:
                kind = str(rl["rateLimitType"]).upper()
                interval = _interval_s(rl.get("intervalNum", 1), str(rl["interval"]))
                count, limit = int(rl["count"]), rl.get("limit")
            except (KeyError, TypeError, ValueError):
                continue
            if kind == "ORDERS":
                self._adopt(self.orders, interval, count, now, limit)
            elif kind == "REQUEST_WEIGHT":
                self._adopt(self.ip.weight, interval, count, now, limit)

    def on_rate_limited(self, status: int, retry_after_s: float) -> None:
        self.ip.back_off(retry_after_s)

    @asynccontextmanager
    async def connection(self):
        async with self._ws_free:
            await self._ws_free.wait_for(lambda: self.ws_open < self.ws_limit)
            self.ws_open += 1
        try:
            yield self
        finally:
            async with self._ws_free:
                self.ws_open -= 1
                self._ws_free.notify()

    # --- inspection ----------------------------------------------------------------------------------------
    def order_headroom(self) -> int:
        """Orders the account may still send now: the least room left in its orders windows."""
        now = self.now_ns()
        room = []
        for w in self.orders.values():
            w._roll(now)
            room.append(w.limit - w.count)
        return max(0, min(room)) if room else 1 << 30

    def used(self) -> dict[str, int]:
        """Current counts by window name (account and IP), for metrics and tests."""
        now = self.now_ns()
        out = {}
        for w in (*self.weight.values(), *self.orders.values(), *self.ip.weight.values()):
            w._roll(now)
            out[w.name] = w.count
        return out

    def _adopt(
        self,
        windows: dict[int, Window],
        interval: int,
        count: int,
        now: int,
        limit: Any = None,
    ) -> None:
        w = windows.get(interval)
        if w is None:
            if not limit:
                return
            w = windows[interval] = Window(f"{self.account} venue/{interval}s", interval, int(limit))
        w.adopt(count, now, int(limit) if limit else None)


class RateLimits:
    """The hub: one ``IpBudget`` per (exchange, market, address), one ``AccountBudget`` per account and market."""

    def __init__(
        self,
        *,
        now_ns: NowNs = time.time_ns,
        sleep: Sleep = asyncio.sleep,
        max_wait_s: float = 120.0,
        background_share: float = BACKGROUND_SHARE,
    ):
        if not 0 < background_share <= 1:
            raise ValueError(f"the background share of the IP weight must be in (0, 1] (got {background_share})")
        self.background_share = background_share
        self.now_ns = now_ns
        self.sleep = sleep
        self.max_wait_s = max_wait_s
        self.ips: dict[str, IpBudget] = {}
        self.accounts: dict[tuple[str, str], AccountBudget] = {}

    def ip(
        self, exchange: str, market: str, metadata: VenueMetadata | None = None, address: str = "default"
    ) -> IpBudget:
        key = f"{exchange}/{market}@{address}"
        if key not in self.ips:
            rules = metadata.rate_limits if metadata else ()
            self.ips[key] = IpBudget(key, rules, now_ns=self.now_ns, background_share=self.background_share)
        return self.ips[key]

    def account(
        self,
        account: str,
        market: str,
        limits: AccountLimits,
        metadata: VenueMetadata | None = None,
        address: str = "default",
    ) -> AccountBudget:
        """The budget of ``account`` (``exchange/name``) on ``market``, created on first use."""
        key = (account, market)
        if key not in self.accounts:
            exchange = account.split("/", 1)[0]
            self.accounts[key] = AccountBudget(
                account,
                limits,
                self.ip(exchange, market, metadata, address),
                metadata,
                max_wait_s=self.max_wait_s,
                now_ns=self.now_ns,
                sleep=self.sleep,
            )
        return self.accounts[key]
