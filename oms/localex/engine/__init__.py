"""The local exchange's core: accounts, matching engine, futures, market data and price replay.

I/O-free and synchronous. The server (``oms.localex.server``) drives it; see CONTRACT.md.
"""

from .accounts import Account, sign
from .errors import ExchangeError
from .events import MD_KINDS
from .exchange import DepthSnapshot, Exchange
from .futures import FuturesAccountInfo, PositionRisk
from .liquidity import LiquidityConfig, LiquidityProvider, PricePath, Replay
from .marketdata import INTERVALS, Ticker24h
from .markets import AMOUNT_SCALE, SPOT, USDM, SymbolSpec, default_specs, fmt_amount, fmt_scaled, parse_amount
from .matching import FeeSchedule
from .types import (
    AccountEvent,
    AggTradeEvent,
    ApiKey,
    Balance,
    BalanceDeltaEvent,
    BookTickerEvent,
    DepthEvent,
    Fill,
    Kline,
    KlineEvent,
    MarkPriceEvent,
    Order,
    OrderEvent,
    OrderRequest,
    OrderResult,
    Position,
    TradeEvent,
    Transfer,
    TransferEvent,
)

__all__ = [
    "AMOUNT_SCALE", "SPOT", "USDM", "INTERVALS", "MD_KINDS", "Account", "AccountEvent", "AggTradeEvent", "ApiKey",
    "Balance", "BalanceDeltaEvent", "BookTickerEvent", "DepthEvent", "DepthSnapshot", "Exchange",
    "ExchangeError", "FeeSchedule", "Fill", "FuturesAccountInfo", "Kline", "KlineEvent", "LiquidityConfig",
    "LiquidityProvider", "MarkPriceEvent", "Order", "OrderEvent", "OrderRequest", "OrderResult", "Position",
    "PositionRisk", "PricePath", "Replay", "SymbolSpec", "Ticker24h", "TradeEvent", "Transfer",
    "TransferEvent",
    "default_specs", "fmt_amount", "fmt_scaled", "parse_amount", "sign",
]
