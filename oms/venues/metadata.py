"""What a venue can do and what it costs, as data: capability flags, endpoint weights, limits, fee tiers.

``Capabilities`` is like ccxt's ``exchange.has``: True where the venue does it natively, so the daemon knows
what to emulate (an amend as cancel-replace, a batch as single orders, cancel-all as a loop). A connector
states its flags per market; ``Capabilities.order_types`` lists the order types the venue accepts there.

``VenueMetadata`` holds the numbers a rate limiter, a router and the onboarding flow need: the weight of each
endpoint (Binance's ``weight`` per REST path and WebSocket-API method), the venue's limits per interval, and
the fee tiers. A connector module defines one ``VenueMetadata`` per market as a module-level constant.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from oms.model.enums import Market, OrderType, TimeInForce
from oms.model.fields import DecimalStr


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """Native abilities of one venue market. False means the daemon must emulate it or refuse."""

    market: Market
    order_types: frozenset[OrderType] = frozenset({OrderType.LIMIT, OrderType.MARKET})
    time_in_force: frozenset[TimeInForce] = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})
    amend: bool = False  # change price/qty in place (Binance USD-M PUT /fapi/v1/order; Spot: qty down only)
    amend_qty_only: bool = False  # only a quantity decrease (Binance Spot order.amend.keepPriority)
    # ``amend`` done as one cancel-replace request (ccxt's Spot editOrder on Binance: POST /api/v3/order/
    # cancelReplace): the order keeps its client order id but gets a new venue order id and loses its queue place
    cancel_replace: bool = False
    batch_orders: bool = False  # several orders in one request (Binance USD-M batchOrders, up to 5)
    max_batch: int = 1
    cancel_all: bool = False  # one request cancels all open orders of a symbol
    ws_api_orders: bool = False  # order entry over a WebSocket API
    user_stream: bool = True  # pushed order/fill/balance events
    reduce_only: bool = False
    post_only: bool = True
    hedge_mode: bool = False
    leverage: bool = False
    margin_type: bool = False
    sub_account_transfer: bool = False
    sub_account_balances: bool = False  # the main key reads its sub-accounts' wallets (Binance master endpoints)
    fills_since: bool = True  # fills by time range (Binance myTrades/userTrades need a symbol)
    fetch_order_by_client_id: bool = True
    # the account's own maker/taker rates per symbol (Binance GET /api/v3/account/commission, GET
    # /fapi/v1/commissionRate; ccxt fetch_trading_fee): ExecutionClient.commission
    commission_rates: bool = False

    def supports(self, order_type: OrderType) -> bool:
        return order_type in self.order_types


class EndpointWeight(msgspec.Struct, frozen=True):
    """The request weight of one endpoint (REST ``METHOD /path`` or WebSocket-API method name).

    ``orders`` is True for endpoints that count against the order-rate limits too; ``trading`` for the other
    requests that act on or resolve orders (cancels, cancel-all, order queries): these and placements may use
    the IP's whole weight window, every other request only its background share (``oms.venues.ratelimit``).
    """

    weight: int = 1
    orders: bool = False
    trading: bool = False


class RateLimitRule(msgspec.Struct, frozen=True, kw_only=True):
    """One of the venue's limits: ``limit`` units of ``kind`` per ``interval_s``, counted per ``scope``.

    ``kind``: ``weight`` (request weight), ``orders`` (orders placed), ``connections`` (open WebSockets).
    ``scope``: ``ip`` (everyone on the address) or ``account`` (one API key's account). ``header`` names the
    response header where the venue reports the current count (``X-MBX-USED-WEIGHT-1M``).
    """

    kind: str
    interval_s: float
    limit: int
    scope: str = "account"
    header: str = ""


class FeeTier(msgspec.Struct, frozen=True, kw_only=True):
    """Maker/taker fee rates (fractions, e.g. ``"0.001"``) from a 30-day volume in the quote currency."""

    tier: int
    min_volume: DecimalStr = "0"
    maker: DecimalStr
    taker: DecimalStr


class CommissionRates(msgspec.Struct, frozen=True, kw_only=True):
    """One account's maker/taker commission on one symbol (fractions of the notional, e.g. ``"0.001"``), as the
    venue reports it (``source="venue"``) or from the metadata's fee table (``source="metadata"``)."""

    symbol: str
    maker: DecimalStr
    taker: DecimalStr
    source: str = "venue"

    @property
    def maker_ppm(self) -> int:
        return _ppm(self.maker)

    @property
    def taker_ppm(self) -> int:
        return _ppm(self.taker)


def _ppm(rate: str) -> int:
    """A fee fraction in parts per million, rounded up (a fee is never under-counted)."""
    return int((Decimal(rate) * 1_000_000).to_integral_value(rounding="ROUND_CEILING"))


class VenueMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """Per venue market: capabilities, weights of endpoints, rate-limit rules, fee tiers."""

    exchange: str
    market: Market
    capabilities: Capabilities
    weights: dict[str, EndpointWeight] = {}
    default_weight: int = 1
    rate_limits: tuple[RateLimitRule, ...] = ()
    fee_tiers: tuple[FeeTier, ...] = ()
    recv_window_ms: int = 5000

    def weight(self, endpoint: str) -> EndpointWeight:
        """The weight of ``endpoint`` (``"POST /api/v3/order"`` or ``"order.place"``); default if unlisted."""
        return self.weights.get(endpoint) or EndpointWeight(self.default_weight)

    def fee(self, volume: str = "0") -> FeeTier | None:
        """The fee tier for a 30-day volume (the highest whose ``min_volume`` it reaches)."""
        best = None
        for tier in sorted(self.fee_tiers, key=lambda t: Decimal(t.min_volume)):
            if Decimal(volume) >= Decimal(tier.min_volume):
                best = tier
        return best
