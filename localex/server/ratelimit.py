"""Request weights and order rates, counted as Binance counts them.

Weight is per IP and per market (Spot and USD-M Futures have separate budgets) in fixed one-minute
windows; order counts are per account (Spot: 10 s and 1 day; Futures: 10 s and 1 minute). Going over a
limit answers 429 with ``Retry-After``; an IP that keeps sending after ``ban_after_violations`` 429s in
one window is banned from that market (Spot or Futures, separate hosts on Binance) with 418 for
``ban_seconds``. Everything is configurable, and can be switched off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from localex.server import errors

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000
FIVE_MIN_MS = 300_000


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Limits of the local exchange; defaults are Binance's published ones."""

    enabled: bool = True
    spot_weight_per_minute: int = 6000
    futures_weight_per_minute: int = 2400
    spot_orders_per_10s: int = 100
    spot_orders_per_day: int = 200_000
    futures_orders_per_10s: int = 300
    futures_orders_per_minute: int = 1200
    ban_after_violations: int = 5
    ban_seconds: int = 120
    # WebSocket limits (Binance's "Websocket Limits"): connection attempts per IP in fixed 5-minute windows,
    # counted separately for Spot streams, futures streams and each WebSocket API; incoming messages per
    # second on one market-stream connection (Spot 5, USD-M futures 10); streams per connection.
    ws_connections_per_5min: int = 300
    spot_ws_messages_per_second: int = 5
    futures_ws_messages_per_second: int = 10
    ws_max_streams_per_connection: int = 1024
    ws_api_connect_weight: int = 2

    def ws_messages_per_second(self, market: str) -> int:
        """The incoming-message limit of one market-stream connection on ``market``."""
        return self.futures_ws_messages_per_second if market == "usdm" else self.spot_ws_messages_per_second


@dataclass(slots=True)
class _Window:
    """A fixed window counter (``start`` aligned to multiples of ``size_ms``)."""

    size_ms: int
    start: int = 0
    count: int = 0

    def roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.size_ms
        if start != self.start:
            self.start = start
            self.count = 0

    def retry_after(self, now_ms: int) -> int:
        return max(1, (self.start + self.size_ms - now_ms + 999) // 1000)


@dataclass(slots=True)
class _IpState:
    weight: dict[str, _Window] = field(default_factory=dict)
    violations: dict[str, _Window] = field(default_factory=dict)
    banned_until: dict[str, int] = field(default_factory=dict)


class RateLimiter:
    """Counts weights per IP and orders per account; raises Binance's 429/418 errors."""

    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self.config = config or RateLimitConfig()
        self._ips: dict[str, _IpState] = {}
        self._orders: dict[tuple[str, str], dict[str, _Window]] = {}
        self._connects: dict[tuple[str, str], _Window] = {}
        self.rejections_429 = 0
        self.rejections_418 = 0

    def _weight_limit(self, market: str) -> int:
        return self.config.futures_weight_per_minute if market == "usdm" else self.config.spot_weight_per_minute

    def used_weight(self, ip: str, market: str, now_ms: int) -> int:
        """Weight used by ``ip`` on ``market`` in the current minute."""
        state = self._ips.get(ip)
        if state is None or market not in state.weight:
            return 0
        window = state.weight[market]
        window.roll(now_ms)
        return window.count

    def charge_weight(self, ip: str, market: str, weight: int, now_ms: int) -> int:
        """Add ``weight`` for ``ip``; return the minute's total or raise 429/418."""
        state = self._ips.setdefault(ip, _IpState())
        window = state.weight.setdefault(market, _Window(MINUTE_MS))
        window.roll(now_ms)
        if not self.config.enabled:
            window.count += weight
            return window.count
        banned_until = state.banned_until.get(market, 0)
        if banned_until > now_ms:
            self.rejections_418 += 1
            raise errors.banned(ip, banned_until, (banned_until - now_ms + 999) // 1000)
        window.count += weight
        limit = self._weight_limit(market)
        if window.count > limit:
            violations = state.violations.setdefault(market, _Window(MINUTE_MS))
            violations.roll(now_ms)
            violations.count += 1
            if violations.count > self.config.ban_after_violations:
                state.banned_until[market] = now_ms + self.config.ban_seconds * 1000
                self.rejections_418 += 1
                raise errors.banned(ip, state.banned_until[market], self.config.ban_seconds)
            self.rejections_429 += 1
            raise errors.too_many_requests(limit, ip, retry_after=window.retry_after(now_ms))
        return window.count

    def charge_connection(self, ip: str, endpoint: str, now_ms: int) -> None:
        """Count one WebSocket connection attempt of ``ip`` to ``endpoint`` (Spot streams, futures streams, a
        WebSocket API); raise -1034 with HTTP 429 past ``ws_connections_per_5min`` in the current 5 minutes."""
        window = self._connects.setdefault((ip, endpoint), _Window(FIVE_MIN_MS))
        window.roll(now_ms)
        window.count += 1
        if self.config.enabled and window.count > self.config.ws_connections_per_5min:
            self.rejections_429 += 1
            raise errors.too_many_connection_attempts(self.config.ws_connections_per_5min, window.retry_after(now_ms))

    def _order_windows(self, account: str, market: str) -> dict[str, _Window]:
        windows = self._orders.get((account, market))
        if windows is None:
            if market == "usdm":
                windows = {"10S": _Window(TEN_S_MS), "1M": _Window(MINUTE_MS)}
            else:
                windows = {"10S": _Window(TEN_S_MS), "1D": _Window(DAY_MS)}
            self._orders[(account, market)] = windows
        return windows

    def _order_limit(self, market: str, interval: str) -> tuple[int, str]:
        c = self.config
        table = {
            ("spot", "10S"): (c.spot_orders_per_10s, "10 SECOND"),
            ("spot", "1D"): (c.spot_orders_per_day, "1 DAY"),
            ("usdm", "10S"): (c.futures_orders_per_10s, "10 SECOND"),
            ("usdm", "1M"): (c.futures_orders_per_minute, "1 MINUTE"),
        }
        return table[(market, interval)]

    def charge_order(self, account: str, market: str, now_ms: int, count: int = 1) -> dict[str, int]:
        """Count ``count`` new orders for ``account``; return counts per interval or raise -1015."""
        windows = self._order_windows(account, market)
        for window in windows.values():
            window.roll(now_ms)
        if self.config.enabled:
            for interval, window in windows.items():
                limit, label = self._order_limit(market, interval)
                if window.count + count > limit:
                    self.rejections_429 += 1
                    raise errors.too_many_orders(limit, label, window.retry_after(now_ms))
        for window in windows.values():
            window.count += count
        return {interval: window.count for interval, window in windows.items()}

    def order_counts(self, account: str, market: str, now_ms: int) -> dict[str, int]:
        """Current order counts of ``account`` per interval."""
        windows = self._order_windows(account, market)
        for window in windows.values():
            window.roll(now_ms)
        return {interval: window.count for interval, window in windows.items()}

    def exchange_info_limits(self, market: str) -> list[dict[str, object]]:
        """The ``rateLimits`` array of exchangeInfo for ``market``."""
        c = self.config
        if market == "usdm":
            return [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": c.futures_weight_per_minute,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": c.futures_orders_per_minute,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": c.futures_orders_per_10s},
            ]
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": c.spot_weight_per_minute,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": c.spot_orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": c.spot_orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ]
