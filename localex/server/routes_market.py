"""Public market-data endpoints, Spot (``/api/v3``) and USD-M Futures (``/fapi/v1``)."""

from __future__ import annotations

import re
import time

from localex.engine.markets import SymbolSpec
from localex.server import errors, wire
from localex.server.http import Call, Endpoint
from localex.server.params import Params

TIME_ZONE_RE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
INTERVALS = frozenset(("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"))
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
SPOT_STP = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
SYMBOL_STATUSES = frozenset(("TRADING", "HALT", "BREAK"))
TICKER_TYPES = frozenset(("FULL", "MINI"))
MINI_TICKER_KEYS = (
    "symbol",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
)
ONBOARD_MS = 1569398400000
PERPETUAL_DELIVERY_MS = 4133404800000


def _spec(call: Call, market: str, symbol: str) -> SymbolSpec:
    return call.state.exchange.spec(market, symbol)


def _status_filter(params: Params) -> str | None:
    """Spot ``symbolStatus`` (TRADING, HALT, BREAK); every listed symbol here is TRADING."""
    return params.opt_enum("symbolStatus", SYMBOL_STATUSES, errors.BinanceError(-1122, "Invalid symbolStatus.", 400))


def _single_status(status: str | None) -> None:
    if status not in (None, "TRADING"):
        raise errors.BinanceError(-1220, "The symbol's status does not match the requested symbolStatus.", 400)


def _symbols(call: Call, market: str, params: Params) -> list[SymbolSpec]:
    single = params.opt_symbol()
    many = params.opt_symbols()
    status = _status_filter(params) if market == "spot" else None
    if single is not None:
        spec = _spec(call, market, single)
        _single_status(status)
        return [spec]
    if many is not None:
        specs = [_spec(call, market, s) for s in many]
    else:
        specs = list(call.state.exchange.specs(market))
    return specs if status in (None, "TRADING") else []


def spot_symbol_info(spec: SymbolSpec, permission_sets: bool = True) -> dict[str, object]:
    """One ``symbols`` entry of GET /api/v3/exchangeInfo."""
    f = spec.fmt_filter
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": spec.base_asset_precision,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": spec.quote_precision,
        "quoteAssetPrecision": spec.quote_precision,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(spec.order_types),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f(spec.min_price),
                "maxPrice": f(spec.max_price),
                "tickSize": f(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f(spec.min_qty),
                "maxQty": f(spec.max_qty),
                "stepSize": f(spec.step_size),
            },
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": f(spec.min_notional),
                "applyToMarket": True,
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": f(spec.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": f(spec.min_qty),
                "maxQty": f(spec.market_max_qty),
                "stepSize": f(spec.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": spec.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": spec.max_num_algo_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]] if permission_sets else [],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": SPOT_STP,
    }


def futures_symbol_info(spec: SymbolSpec) -> dict[str, object]:
    """One ``symbols`` entry of GET /fapi/v1/exchangeInfo."""
    f = spec.fmt_filter
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": ONBOARD_MS,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.margin_asset,
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.quantity_precision,
        "baseAssetPrecision": spec.base_asset_precision,
        "quotePrecision": spec.quote_precision,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f(spec.min_price),
                "maxPrice": f(spec.max_price),
                "tickSize": f(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f(spec.min_qty),
                "maxQty": f(spec.max_qty),
                "stepSize": f(spec.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": f(spec.min_qty),
                "maxQty": f(spec.market_max_qty),
                "stepSize": f(spec.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.max_num_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": f(spec.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": f"{spec.percent_up_bp / 10000:.4f}",
                "multiplierDown": f"{spec.percent_down_bp / 10000:.4f}",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": list(spec.order_types),
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "permissionSets": ["GRID", "COPY"],
    }


async def ping(call: Call) -> object:
    """GET /api/v3/ping, /fapi/v1/ping."""
    return {}


async def server_time(call: Call) -> object:
    """GET /api/v3/time, /fapi/v1/time."""
    return {"serverTime": time.time_ns() // 1_000_000}


async def spot_exchange_info(call: Call) -> object:
    """GET /api/v3/exchangeInfo."""
    p = call.params
    specs = _symbols(call, "spot", p)
    permissions = p.opt_str("permissions")
    if permissions is not None:  # one name or a JSON list of names; every symbol here is SPOT only
        wanted = p.opt_symbols("permissions") if permissions.startswith("[") else [permissions]
        if wanted is not None and "SPOT" not in wanted:
            specs = []
    show_sets = p.opt_bool("showPermissionSets")
    return {
        "timezone": "UTC",
        "serverTime": call.now_ms,
        "rateLimits": call.state.limiter.exchange_info_limits("spot"),
        "exchangeFilters": [],
        "symbols": [spot_symbol_info(s, show_sets is not False) for s in specs],
    }


async def futures_exchange_info(call: Call) -> object:
    """GET /fapi/v1/exchangeInfo."""
    specs = list(call.state.exchange.specs("usdm"))
    margin_assets = sorted({s.margin_asset for s in specs})
    return {
        "timezone": "UTC",
        "serverTime": call.now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": call.state.limiter.exchange_info_limits("usdm"),
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in margin_assets],
        "symbols": [futures_symbol_info(s) for s in specs],
    }


def _depth_limit(params: Params) -> int:
    limit = params.opt_int("limit", 1, 5000) or 100
    return limit


def spot_depth_weight(params: Params) -> int:
    """Spot depth weight by limit."""
    try:
        limit = _depth_limit(params)
    except errors.BinanceError:
        return 1
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def futures_depth_weight(params: Params) -> int:
    """Futures depth weight by limit."""
    try:
        limit = _depth_limit(params)
    except errors.BinanceError:
        return 1
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _depth(call: Call, market: str) -> dict[str, object]:
    symbol = call.params.symbol()
    spec = _spec(call, market, symbol)
    if market == "spot":
        _single_status(_status_filter(call.params))
    limit = _depth_limit(call.params)
    snap = call.state.exchange.depth(market, symbol, limit)
    body: dict[str, object] = {"lastUpdateId": snap.last_update_id}
    if market == "usdm":
        body["E"] = call.now_ms
        body["T"] = call.now_ms
    body["bids"] = wire.levels(spec, snap.bids)
    body["asks"] = wire.levels(spec, snap.asks)
    return body


async def spot_depth(call: Call) -> object:
    """GET /api/v3/depth."""
    return _depth(call, "spot")


async def futures_depth(call: Call) -> object:
    """GET /fapi/v1/depth."""
    return _depth(call, "usdm")


def _trades(call: Call, market: str) -> list[dict[str, object]]:
    symbol = call.params.symbol()
    limit = call.params.opt_int("limit", 1, 1000) or 500
    spec = _spec(call, market, symbol)
    return [wire.trade_row(t, spec) for t in call.state.exchange.recent_trades(market, symbol, limit)]


async def spot_trades(call: Call) -> object:
    """GET /api/v3/trades."""
    return _trades(call, "spot")


async def futures_trades(call: Call) -> object:
    """GET /fapi/v1/trades."""
    return _trades(call, "usdm")


def _agg_trades(call: Call, market: str) -> list[dict[str, object]]:
    p = call.params
    symbol = p.symbol()
    limit = p.opt_int("limit", 1, 1000) or 500
    from_id, start, end = p.opt_int("fromId", 0), p.opt_int("startTime", 0), p.opt_int("endTime", 0)
    if from_id is not None and (start is not None or end is not None):
        raise errors.BinanceError(-1128, "Combination of optional parameters invalid.", 400)
    spec = _spec(call, market, symbol)
    rows = call.state.exchange.agg_trades(
        market,
        symbol,
        from_id=from_id,
        start_ns=None if start is None else start * 1_000_000,
        end_ns=None if end is None else end * 1_000_000,
        limit=limit,
    )
    return [wire.agg_trade_row(t, spec) for t in rows]


async def spot_agg_trades(call: Call) -> object:
    """GET /api/v3/aggTrades."""
    return _agg_trades(call, "spot")


async def futures_agg_trades(call: Call) -> object:
    """GET /fapi/v1/aggTrades."""
    return _agg_trades(call, "usdm")


def _klines(call: Call, market: str, max_limit: int) -> list[list[object]]:
    p = call.params
    symbol = p.symbol()
    interval = p.enum("interval", INTERVALS, errors.invalid_interval())
    limit = p.opt_int("limit", 1, max_limit) or 500
    if market == "spot":
        _utc_only(p.opt_str("timeZone"))
    spec = _spec(call, market, symbol)
    rows = call.state.exchange.klines(
        market, symbol, interval, p.opt_int("startTime", 0), p.opt_int("endTime", 0), limit
    )
    return [wire.kline_row(k, spec) for k in rows]


def _utc_only(zone: str | None) -> None:
    """Spot ``timeZone`` (hours or hours:minutes, -12:00..+14:00); only a zero offset is served here."""
    if zone is None:
        return
    m = TIME_ZONE_RE.match(zone)
    if m is None:
        raise errors.bad_param("timeZone")
    if int(m.group(2)) != 0 or int(m.group(3) or 0) != 0:  # the engine's candles are UTC-aligned
        raise errors.bad_param("timeZone")


async def spot_klines(call: Call) -> object:
    """GET /api/v3/klines."""
    return _klines(call, "spot", 1000)


async def futures_klines(call: Call) -> object:
    """GET /fapi/v1/klines."""
    return _klines(call, "usdm", 1500)


def _one_or_many(call: Call, market: str, row) -> object:
    specs = _symbols(call, market, call.params)
    rows = [row(s) for s in specs]
    return rows[0] if call.params.opt_symbol() is not None else rows


def _book_ticker(call: Call, market: str) -> object:
    ex = call.state.exchange
    return _one_or_many(call, market, lambda s: wire.book_ticker_row(ex.book_ticker(market, s.symbol), s))


async def spot_book_ticker(call: Call) -> object:
    """GET /api/v3/ticker/bookTicker."""
    return _book_ticker(call, "spot")


async def futures_book_ticker(call: Call) -> object:
    """GET /fapi/v1/ticker/bookTicker."""
    return _book_ticker(call, "usdm")


def _price(call: Call, market: str) -> object:
    ex = call.state.exchange

    def row(s: SymbolSpec) -> dict[str, object]:
        body: dict[str, object] = {"symbol": s.symbol, "price": s.fmt_price(ex.last_price(market, s.symbol))}
        if market == "usdm":
            body["time"] = call.now_ms
        return body

    return _one_or_many(call, market, row)


async def spot_price(call: Call) -> object:
    """GET /api/v3/ticker/price."""
    return _price(call, "spot")


async def futures_price(call: Call) -> object:
    """GET /fapi/v1/ticker/price and /fapi/v2/ticker/price."""
    return _price(call, "usdm")


def _ticker_24h(call: Call, market: str) -> object:
    ex = call.state.exchange
    kind = (
        call.params.opt_enum("type", TICKER_TYPES, errors.BinanceError(-1139, "Invalid ticker type.", 400))
        if market == "spot"
        else None
    )

    def row(s: SymbolSpec) -> dict[str, object]:
        t = ex.ticker_24h(market, s.symbol)
        change, pct, avg = wire.ticker_stats(t, s)
        last_trades = ex.recent_trades(market, s.symbol, 1)
        last_qty = s.fmt_qty(last_trades[-1].qty if last_trades else 0)
        body: dict[str, object] = {
            "symbol": s.symbol,
            "priceChange": change,
            "priceChangePercent": pct,
            "weightedAvgPrice": avg,
        }
        if market == "spot":  # Binance's key order (rest-api.md "24hr ticker price change statistics")
            bt = ex.book_ticker(market, s.symbol)
            body.update(
                {
                    "prevClosePrice": s.fmt_price(t.prev_close),
                    "lastPrice": s.fmt_price(t.last),
                    "lastQty": last_qty,
                    "bidPrice": s.fmt_price(bt.bid_price),
                    "bidQty": s.fmt_qty(bt.bid_qty),
                    "askPrice": s.fmt_price(bt.ask_price),
                    "askQty": s.fmt_qty(bt.ask_qty),
                }
            )
        else:
            body.update({"lastPrice": s.fmt_price(t.last), "lastQty": last_qty})
        body.update(
            {
                "openPrice": s.fmt_price(t.open_price),
                "highPrice": s.fmt_price(t.high),
                "lowPrice": s.fmt_price(t.low),
                "volume": s.fmt_qty(t.volume),
                "quoteVolume": s.fmt_amount(t.quote_volume),
                "openTime": t.open_time_ms,
                "closeTime": t.close_time_ms,
                "firstId": t.first_id,
                "lastId": t.last_id,
                "count": t.count,
            }
        )
        if kind == "MINI":
            return {k: body[k] for k in MINI_TICKER_KEYS}
        return body

    return _one_or_many(call, market, row)


async def spot_ticker_24h(call: Call) -> object:
    """GET /api/v3/ticker/24hr."""
    return _ticker_24h(call, "spot")


async def futures_ticker_24h(call: Call) -> object:
    """GET /fapi/v1/ticker/24hr."""
    return _ticker_24h(call, "usdm")


async def premium_index(call: Call) -> object:
    """GET /fapi/v1/premiumIndex (mark price and funding)."""
    ex = call.state.exchange

    def row(s: SymbolSpec) -> dict[str, object]:
        rate, next_ms = ex.funding_info(s.symbol)
        mark = wire.dec_str(s.price_of(ex.mark_price(s.symbol)), 8)  # Binance prints 8 decimals here
        return {
            "symbol": s.symbol,
            "markPrice": mark,
            "indexPrice": mark,
            "estimatedSettlePrice": mark,
            "lastFundingRate": rate,
            "interestRate": "0.00010000",
            "nextFundingTime": next_ms,
            "time": call.now_ms,
        }

    return _one_or_many(call, "usdm", row)


def _symbol_weight(single: int, every: int):
    return lambda p: single if p.opt_str("symbol") else every


# Spot parameters per endpoint as Binance documents them (binance-spot-api-docs rest-api.md): anything else is
# answered -1104. USD-M endpoints leave ``params`` unset: the futures gateway is not known to reject unknown names.
NO_PARAMS: frozenset[str] = frozenset()
SYMBOLS_STATUS = frozenset(("symbol", "symbols", "symbolStatus"))
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v3/ping", "spot", ping, params=NO_PARAMS),
    Endpoint("GET", "/api/v3/time", "spot", server_time, params=NO_PARAMS),
    Endpoint(
        "GET",
        "/api/v3/exchangeInfo",
        "spot",
        spot_exchange_info,
        20,
        params=SYMBOLS_STATUS | {"permissions", "showPermissionSets"},
    ),
    Endpoint(
        "GET",
        "/api/v3/depth",
        "spot",
        spot_depth,
        spot_depth_weight,
        params=frozenset(("symbol", "limit", "symbolStatus")),
    ),
    Endpoint("GET", "/api/v3/trades", "spot", spot_trades, 25, params=frozenset(("symbol", "limit"))),
    Endpoint(
        "GET",
        "/api/v3/aggTrades",
        "spot",
        spot_agg_trades,
        4,
        params=frozenset(("symbol", "fromId", "startTime", "endTime", "limit")),
    ),
    Endpoint(
        "GET",
        "/api/v3/klines",
        "spot",
        spot_klines,
        2,
        params=frozenset(("symbol", "interval", "startTime", "endTime", "timeZone", "limit")),
    ),
    Endpoint("GET", "/api/v3/ticker/bookTicker", "spot", spot_book_ticker, _symbol_weight(2, 4), params=SYMBOLS_STATUS),
    Endpoint("GET", "/api/v3/ticker/price", "spot", spot_price, _symbol_weight(2, 4), params=SYMBOLS_STATUS),
    Endpoint(
        "GET", "/api/v3/ticker/24hr", "spot", spot_ticker_24h, _symbol_weight(2, 80), params=SYMBOLS_STATUS | {"type"}
    ),
    Endpoint("GET", "/fapi/v1/ping", "usdm", ping),
    Endpoint("GET", "/fapi/v1/time", "usdm", server_time),
    Endpoint("GET", "/fapi/v1/exchangeInfo", "usdm", futures_exchange_info),
    Endpoint("GET", "/fapi/v1/depth", "usdm", futures_depth, futures_depth_weight),
    Endpoint("GET", "/fapi/v1/trades", "usdm", futures_trades, 5),
    Endpoint("GET", "/fapi/v1/aggTrades", "usdm", futures_agg_trades, 20),
    Endpoint("GET", "/fapi/v1/klines", "usdm", futures_klines, 5),
    Endpoint("GET", "/fapi/v1/ticker/bookTicker", "usdm", futures_book_ticker, _symbol_weight(2, 5)),
    Endpoint("GET", "/fapi/v1/ticker/price", "usdm", futures_price, _symbol_weight(1, 2)),
    Endpoint("GET", "/fapi/v2/ticker/price", "usdm", futures_price, _symbol_weight(1, 2)),
    Endpoint("GET", "/fapi/v1/ticker/24hr", "usdm", futures_ticker_24h, _symbol_weight(1, 40)),
    Endpoint("GET", "/fapi/v1/premiumIndex", "usdm", premium_index, 1),
]
