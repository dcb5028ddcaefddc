"""Pacing reconciliation inside a share of each IP's request-weight budget.

The connectors already await ``oms.venues.ratelimit`` before every request, so nothing ever earns a 429;
but that budget lets a burst use a window to the last unit, and 200 accounts reconciling at once would do
exactly that, leaving no weight for the orders that follow. ``WeightPacer`` sits in front of every
reconciliation call: it reserves the call's expected weight and waits until the IP's windows (as the
budget counts them, the venue's own ``X-MBX-USED-WEIGHT`` counts included) hold it within ``share`` of
their limit, counting the weight of calls still in flight. It also records the peak share it saw, which is
what the benchmark reports.

Expected weights come from the venue's metadata (``VenueMetadata.weights``), looked up by the endpoints the
call may use; where none is listed, ``fallback`` is assumed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from oms.model import Market
from oms.venues.metadata import VenueMetadata
from oms.venues.ratelimit import IpBudget

# The endpoints (REST and WebSocket API) a reconciliation call may use, per market (Binance's names; the
# ccxt connector keys its weights the same way).
ENDPOINTS: dict[str, dict[Market, tuple[str, ...]]] = {
    "open_orders": {
        Market.SPOT: ("GET /api/v3/openOrders", "openOrders.status"),
        Market.USDM: ("GET /fapi/v1/openOrders",),
    },
    "open_orders_all": {  # Binance charges 80 (Spot) and 40 (USD-M) without a symbol
        Market.SPOT: ("GET /api/v3/openOrders#all",),
        Market.USDM: ("GET /fapi/v1/openOrders#all",),
    },
    "fills": {Market.SPOT: ("GET /api/v3/myTrades", "myTrades"), Market.USDM: ("GET /fapi/v1/userTrades",)},
    "balances": {
        Market.SPOT: ("GET /api/v3/account", "account.status"),
        Market.USDM: ("GET /fapi/v3/balance", "GET /fapi/v2/balance", "account.balance"),
    },
    "positions": {Market.SPOT: (), Market.USDM: ("GET /fapi/v3/positionRisk", "GET /fapi/v2/positionRisk")},
    "query": {Market.SPOT: ("GET /api/v3/order", "order.status"), Market.USDM: ("GET /fapi/v1/order",)},
}
ALL_SYMBOLS_WEIGHT = {Market.SPOT: 80, Market.USDM: 40}


def expected_weight(metadata: VenueMetadata | None, market: Market, call: str, fallback: int = 20) -> int:
    """The weight a reconciliation ``call`` is expected to cost on ``market`` (at least 1)."""
    if call == "open_orders_all":
        return ALL_SYMBOLS_WEIGHT.get(market, fallback)
    if call == "positions" and market is Market.SPOT:
        return 0  # no request: Spot has no positions
    names = ENDPOINTS.get(call, {}).get(market, ())
    weights = [metadata.weights[n].weight for n in names if metadata is not None and n in metadata.weights]
    return max(1, max(weights)) if weights else fallback


class WeightPacer:
    """Calls wait until their weight fits within ``share`` of every weight window of their IP."""

    def __init__(
        self,
        share: float = 0.8,
        *,
        now_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ):
        if not 0 < share <= 1:
            raise ValueError(f"reconciliation weight share must be in (0, 1] (got {share})")
        self.share = share
        self.now_ns = now_ns
        self.sleep = sleep
        self._reserved: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.peak: dict[str, float] = {}  # IP key -> highest used/limit seen after a call
        self.waited_s = 0.0
        self.calls = 0

    @staticmethod
    def ip_of(limiter: Any) -> IpBudget | None:
        ip = getattr(limiter, "ip", None)
        return ip if isinstance(ip, IpBudget) and ip.weight else None

    @asynccontextmanager
    async def call(self, limiter: Any, weight: int):
        """Hold ``weight`` of the IP of ``limiter`` (an ``AccountBudget``) for the duration of one call."""
        ip = self.ip_of(limiter)
        if ip is None or weight <= 0:
            self.calls += 1
            yield
            return
        key = ip.key
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # first come, first served per IP
            while True:
                wait = self._wait_ns(ip, weight)
                if wait <= 0:
                    break
                pause = min(wait / 1e9, 0.05)  # re-checked often: calls in flight may end sooner
                self.waited_s += pause
                await self.sleep(pause)
            self._reserved[key] = self._reserved.get(key, 0) + weight
        self.calls += 1
        try:
            yield
        finally:
            self._reserved[key] -= weight
            self.observe(ip)

    def _wait_ns(self, ip: IpBudget, weight: int) -> int:
        now = self.now_ns()
        reserved = self._reserved.get(ip.key, 0)
        wait = max(0, ip.backoff_until_ns - now)
        for w in ip.weight.values():
            w._roll(now)
            cap = int(w.limit * self.share)
            if weight > cap:
                raise ValueError(f"a call of weight {weight} exceeds {self.share:.0%} of {w.name} ({w.limit})")
            if w.count + reserved + weight > cap:
                wait = max(wait, w.start_ns + w.interval_ns - now + 1_000_000)  # just past the reset
        return wait

    def observe(self, ip: IpBudget) -> None:
        now = self.now_ns()
        for w in ip.weight.values():
            w._roll(now)
            share = w.count / w.limit
            if share > self.peak.get(ip.key, 0.0):
                self.peak[ip.key] = share

    @property
    def peak_share(self) -> float:
        return max(self.peak.values(), default=0.0)
