"""The local exchange's core: accounts, matching engine, futures, market data and price replay.

I/O-free and synchronous. The server (``localex.server``) drives it; see CONTRACT.md.
Its hot modules run compiled by mypyc when a build matching the sources exists (``_native``, ``build``):
``ENGINE`` says which implementation this process runs ("compiled" or "python") and ``ENGINE_REASON`` why.
"""

from . import _native

ENGINE, ENGINE_REASON = _native.install()  # before the engine's modules are imported

# ruff: noqa: E402 - the imports below must come after the implementation is chosen

from .accounts import Account, sign
from .errors import ExchangeError
from .event_types import (
    AccountEvent,
    AggTradeEvent,
    BalanceDeltaEvent,
    BookTickerEvent,
    DepthEvent,
    KlineEvent,
    MarkPriceEvent,
    OrderEvent,
    TradeEvent,
    TransferEvent,
)
from .events import MD_KINDS
from .exchange import DepthSnapshot, Exchange
from .futures import FuturesAccountInfo, PositionRisk
from .liquidity import LiquidityConfig, LiquidityProvider, PricePath, Replay
from .marketdata import INTERVALS, Ticker24h
from .markets import AMOUNT_SCALE, SPOT, USDM, SymbolSpec, default_specs, fmt_amount, fmt_scaled, parse_amount
from .matching import FeeSchedule
from .types import ApiKey, Balance, Fill, Income, Kline, Order, OrderRequest, OrderResult, Position, Transfer

__all__ = [
    "ENGINE",
    "ENGINE_REASON",
    "AMOUNT_SCALE",
    "SPOT",
    "USDM",
    "INTERVALS",
    "MD_KINDS",
    "Account",
    "AccountEvent",
    "AggTradeEvent",
    "ApiKey",
    "Balance",
    "BalanceDeltaEvent",
    "BookTickerEvent",
    "DepthEvent",
    "DepthSnapshot",
    "Exchange",
    "ExchangeError",
    "FeeSchedule",
    "Fill",
    "Income",
    "FuturesAccountInfo",
    "Kline",
    "KlineEvent",
    "LiquidityConfig",
    "LiquidityProvider",
    "MarkPriceEvent",
    "Order",
    "OrderEvent",
    "OrderRequest",
    "OrderResult",
    "Position",
    "PositionRisk",
    "PricePath",
    "Replay",
    "SymbolSpec",
    "Ticker24h",
    "TradeEvent",
    "Transfer",
    "TransferEvent",
    "default_specs",
    "fmt_amount",
    "fmt_scaled",
    "parse_amount",
    "sign",
]
