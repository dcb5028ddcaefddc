"""The markets the local exchange lists: data, not code.

Each row mirrors Binance's exchangeInfo for the symbol (values as Binance published them; the minimum
notional of futures BTCUSDT is 100 USDT, of spot USDT symbols 5 USDT; spot ETHBTC as Binance lists it, with a
price path derived from ETHUSDT / BTCUSDT, ``oms.archive.pricepath.CrossPath``). Add a market by adding a row; the
loader in ``markets.py`` checks every row (tick and step must be multiples of 1e-8, brackets ascending).
Leverage brackets: (notional cap in quote units, max leverage, maintenance margin rate). Open-order
limits default to Binance's: 200 open orders per account and symbol, of which 5 (spot) / 10 (futures) may
be pending stop orders (``max_num_orders``, ``max_num_algo_orders``).
"""

from __future__ import annotations

SPOT_ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
USDM_ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)

BTC_BRACKETS = (
    ("50000", 125, "0.004"),
    ("250000", 100, "0.005"),
    ("3000000", 50, "0.01"),
    ("15000000", 20, "0.025"),
    ("30000000", 10, "0.05"),
    ("80000000", 5, "0.1"),
    ("100000000", 4, "0.125"),
    ("200000000", 3, "0.15"),
    ("300000000", 2, "0.25"),
    ("500000000", 1, "0.5"),
)
ETH_BRACKETS = (
    ("10000", 100, "0.005"),
    ("100000", 75, "0.0065"),
    ("500000", 50, "0.01"),
    ("1000000", 25, "0.02"),
    ("2000000", 10, "0.05"),
    ("5000000", 5, "0.1"),
    ("10000000", 4, "0.125"),
    ("20000000", 3, "0.15"),
    ("50000000", 2, "0.25"),
    ("100000000", 1, "0.5"),
)

MARKETS: tuple[dict[str, object], ...] = (
    # ---- Spot -----------------------------------------------------------------------------------
    {
        "market": "spot",
        "symbol": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
        "tick": "0.01",
        "min_price": "0.01",
        "max_price": "1000000",
        "step": "0.00001",
        "min_qty": "0.00001",
        "max_qty": "9000",
        "market_max_qty": "100",
        "min_notional": "5",
        "max_notional": "9000000",
        "path": "BTCUSDT",
    },
    {
        "market": "spot",
        "symbol": "ETHUSDT",
        "base": "ETH",
        "quote": "USDT",
        "tick": "0.01",
        "min_price": "0.01",
        "max_price": "1000000",
        "step": "0.0001",
        "min_qty": "0.0001",
        "max_qty": "9000",
        "market_max_qty": "1000",
        "min_notional": "5",
        "max_notional": "9000000",
        "path": "ETHUSDT",
    },
    {
        "market": "spot",
        "symbol": "LTCUSDT",
        "base": "LTC",
        "quote": "USDT",
        "tick": "0.01",
        "min_price": "0.01",
        "max_price": "100000",
        "step": "0.001",
        "min_qty": "0.001",
        "max_qty": "90000",
        "market_max_qty": "10000",
        "min_notional": "5",
        "max_notional": "9000000",
        "path": "LTCUSDT",
    },
    {
        # quoted in BTC: tick x step = 1e-9 BTC, below the 1e-8 ledger unit; notionals in 1e-12 BTC
        # (``quote_decimals``, by default from markets.FINE_QUOTE_DECIMALS), settled as markets.py says
        "market": "spot",
        "symbol": "ETHBTC",
        "base": "ETH",
        "quote": "BTC",
        "tick": "0.00001",
        "min_price": "0.00001",
        "max_price": "922327",
        "step": "0.0001",
        "min_qty": "0.0001",
        "max_qty": "100000",
        "market_max_qty": "2037.6125",
        "min_notional": "0.0001",
        "max_notional": "9000000",
        "quote_decimals": 12,
        "path": "ETHBTC",
    },
    # ---- USD-M perpetual futures -----------------------------------------------------------------
    {
        "market": "usdm",
        "symbol": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
        "tick": "0.10",
        "min_price": "261.10",
        "max_price": "809484",
        "step": "0.001",
        "min_qty": "0.001",
        "max_qty": "1000",
        "market_max_qty": "120",
        "min_notional": "100",
        "max_notional": "0",
        "price_precision": 2,
        "quantity_precision": 3,
        "brackets": BTC_BRACKETS,
        "path": "BTCUSDT",
    },
    {
        "market": "usdm",
        "symbol": "ETHUSDT",
        "base": "ETH",
        "quote": "USDT",
        "tick": "0.01",
        "min_price": "39.86",
        "max_price": "306177",
        "step": "0.001",
        "min_qty": "0.001",
        "max_qty": "10000",
        "market_max_qty": "2000",
        "min_notional": "20",
        "max_notional": "0",
        "price_precision": 2,
        "quantity_precision": 3,
        "brackets": ETH_BRACKETS,
        "path": "ETHUSDT",
    },
)
