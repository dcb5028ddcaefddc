"""Liquidity that follows a replayed real price path.

``PricePath`` holds OHLC bars (prices as ints of 1e-8) and interpolates inside a bar through
O->L->H->C (up bars) or O->H->L->C (down bars). ``Replay`` maps the exchange clock to market history
(``speed`` seconds of history per second of clock), sets futures mark prices, feeds klines and lets
the ``LiquidityProvider`` requote a ladder of resting orders around the path price. Requoting can fill
user orders that now cross and trigger stops. Everything is a function of seed + data + the calls made.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from oms.archive.pricepath import PRICE_SCALE, CrossPath, PricePath

from .errors import ExchangeError
from .markets import AMOUNT_SCALE, USDM, SymbolSpec
from .types import BUY, GTC, LIMIT, SELL, OrderRequest

assert PRICE_SCALE == AMOUNT_SCALE, "price paths and the engine share the 1e-8 unit"

if TYPE_CHECKING:
    from .exchange import Exchange

MS = 1_000_000


@dataclass(frozen=True)
class LiquidityConfig:
    """The ladder: ``levels`` per side, spacing (ticks, or basis points of price when ticks is 0),
    quote notional per level (jittered up to +``jitter`` fraction, deterministic from the seed):
    ``level_notional`` in the quote currency, unless ``coin_level_notional`` names the quote (a market quoted in
    a coin: 5000 BTC a level would be nonsense)."""

    levels: int = 10
    spacing_ticks: int = 0
    spacing_bp: int = 5
    level_notional: str = "5000"
    jitter: float = 0.5
    coin_level_notional: tuple[tuple[str, str], ...] = (("BTC", "0.1"), ("ETH", "2"), ("BNB", "10"))

    def notional_for(self, quote_asset: str) -> str:
        """The quote notional of one level of a market quoted in ``quote_asset``."""
        return dict(self.coin_level_notional).get(quote_asset, self.level_notional)


@dataclass
class LiquidityProvider:
    """Keeps the liquidity account's ladder around the path price of each book."""

    exchange: Exchange
    config: LiquidityConfig = field(default_factory=LiquidityConfig)
    seed: int = 0
    centers: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def spacing(self, spec: SymbolSpec, center: int) -> int:
        """Ladder step in ticks."""
        if self.config.spacing_ticks:
            return self.config.spacing_ticks
        return max(1, center * self.config.spacing_bp // 10_000)

    def requote(self, spec: SymbolSpec, center: int) -> None:
        """Cancel the old ladder of ``spec`` and place a new one around ``center`` ticks."""
        if center <= 0 or self.centers.get(spec.key) == center:
            return
        ex = self.exchange
        acc_id = ex.LIQUIDITY_ACCOUNT
        ex.cancel_all(acc_id, spec.market, spec.symbol)
        self.centers[spec.key] = center
        step = self.spacing(spec, center)
        # fine quote units (markets.py), as ``notional_unit`` and ``min_notional_units`` are
        notional = int(Decimal(self.config.notional_for(spec.quote_asset)) * AMOUNT_SCALE) * spec.quote_scale
        for i in range(self.config.levels):
            for side, price in ((BUY, center - step * (i + 1)), (SELL, center + step * (i + 1))):
                if price < spec.min_price_ticks or price > spec.max_price_ticks:
                    continue
                jitter = 1 + self._rng.random() * self.config.jitter
                lots = int(notional * jitter) // (price * spec.notional_unit)
                min_lots = -(-spec.min_notional_units // (price * spec.notional_unit)) + 1
                lots = min(max(lots, spec.min_qty_lots, min_lots), spec.max_qty_lots)
                req = OrderRequest(
                    spec.market,
                    spec.symbol,
                    side,
                    LIMIT,
                    quantity=spec.fmt_qty(lots),
                    price=spec.fmt_price(price),
                    time_in_force=GTC,
                )
                try:
                    ex.place_order(acc_id, req)
                except ExchangeError:
                    continue  # a level outside the symbol's filters is skipped, the rest still quotes


class Replay:
    """Drives paths, marks, klines and the ladder from the exchange clock. Attach once per exchange."""

    def __init__(
        self,
        exchange: Exchange,
        paths: Mapping[str, PricePath | CrossPath],
        *,
        speed: float = 60.0,
        start_data_ms: int | None = None,
        liquidity: LiquidityConfig | None = None,
        seed: int | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("replay speed must be > 0")
        self.exchange = exchange
        self.paths = paths
        self.speed = speed
        if start_data_ms is None:
            start_data_ms = max(p.start_ms for p in paths.values())
        self.start_data_ms = start_data_ms
        self.start_ns = exchange.clock()
        self.lp = LiquidityProvider(exchange, liquidity or LiquidityConfig(), exchange.seed if seed is None else seed)
        self.targets: list[tuple[SymbolSpec, PricePath | CrossPath]] = [
            (s, paths[s.path]) for s in exchange.specs() if s.path in paths
        ]
        self.data_ms = self.start_data_ms
        exchange.replay = self
        self.advance(self.start_ns)

    def data_time(self, now_ns: int) -> int:
        """Market-history time (ms) shown at exchange time ``now_ns``."""
        return self.start_data_ms + int((now_ns - self.start_ns) / MS * self.speed)

    def advance(self, now_ns: int | None = None) -> None:
        """Move every path to ``now_ns`` (default: the clock): marks, klines, ladder, stops."""
        ex = self.exchange
        now = ex.clock() if now_ns is None else now_ns
        self.data_ms = self.data_time(now)
        ex._begin()
        try:
            for spec, path in self.targets:
                units = path.price_at(self.data_ms)
                ticks = (units + spec.price_unit // 2) // spec.price_unit
                ticks = min(max(ticks, spec.min_price_ticks), spec.max_price_ticks)
                if spec.market == USDM:
                    ex.set_mark_price(spec.symbol, ticks)
                ex.record_path_price(spec.market, spec.symbol, ticks)
                self.lp.requote(spec, ticks)
        finally:
            ex._end()
