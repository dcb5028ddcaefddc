"""Binance wire payloads built from engine objects; field names and string formats mirror Binance.

One function per message shape (REST bodies, stream events, user-data events). Prices and quantities
are decimal strings formatted by the symbol's spec; times are milliseconds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from localex.engine.event_types import (
    AccountEvent,
    AggTradeEvent,
    BookTickerEvent,
    DepthEvent,
    KlineEvent,
    OrderEvent,
    TradeEvent,
)
from localex.engine.markets import AMOUNT_SCALE, SymbolSpec, fmt_amount
from localex.engine.types import Balance, Fill, Kline, Order, Position

if TYPE_CHECKING:
    from localex.engine.marketdata import Ticker24h

MS = 1_000_000


def ms(ns: int) -> int:
    """Nanoseconds to Binance milliseconds."""
    return ns // MS


def dec_str(d: Decimal, places: int = 8) -> str:
    """A Decimal as a fixed-point string with ``places`` decimals (truncated toward zero)."""
    q = Decimal(1).scaleb(-places)
    value = d.quantize(q, rounding="ROUND_DOWN") if places > 0 else d.to_integral_value("ROUND_DOWN")
    return f"{value:f}"  # never exponent notation ("0E-8"): Binance prints plain decimals


def _tif(order: Order) -> str:
    """Spot order bodies carry ``timeInForce`` even for MARKET orders, where Binance prints ``GTC``."""
    return order.time_in_force or "GTC"


def _working_time(order: Order) -> int:
    return -1 if order.working_ns < 0 else ms(order.working_ns or order.time_ns)


# ---- spot orders --------------------------------------------------------------------------------------
def spot_order(order: Order, spec: SymbolSpec) -> dict[str, object]:
    """GET /api/v3/order, openOrders, allOrders row."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": spec.fmt_price(order.price),
        "origQty": spec.fmt_qty(order.orig_qty),
        "executedQty": spec.fmt_qty(order.executed_qty),
        "cummulativeQuoteQty": spec.fmt_amount(order.cum_quote),
        "status": order.status,
        "timeInForce": _tif(order),
        "type": order.type,
        "side": order.side,
        "stopPrice": spec.fmt_price(order.stop_price),
        "icebergQty": spec.fmt_qty(0),
        "time": ms(order.time_ns),
        "updateTime": ms(order.update_ns),
        "isWorking": order.is_working,
        "workingTime": _working_time(order),
        "origQuoteOrderQty": spec.fmt_amount(order.quote_order_qty),
        "selfTradePreventionMode": order.self_trade_prevention_mode,
    }


def spot_fill_short(fill: Fill, spec: SymbolSpec) -> dict[str, object]:
    """One entry of a FULL new-order response's ``fills``."""
    return {
        "price": spec.fmt_price(fill.price),
        "qty": spec.fmt_qty(fill.qty),
        "commission": spec.fmt_amount(fill.commission),
        "commissionAsset": fill.commission_asset,
        "tradeId": fill.trade_id,
    }


def spot_new_order(order: Order, fills: list[Fill], spec: SymbolSpec, resp_type: str) -> dict[str, object]:
    """POST /api/v3/order response in ACK, RESULT or FULL form."""
    ack: dict[str, object] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": ms(order.time_ns),
    }
    if resp_type == "ACK":
        return ack
    ack.update(
        {
            "price": spec.fmt_price(order.price),
            "origQty": spec.fmt_qty(order.orig_qty),
            "executedQty": spec.fmt_qty(order.executed_qty),
            "origQuoteOrderQty": spec.fmt_amount(order.quote_order_qty),
            "cummulativeQuoteQty": spec.fmt_amount(order.cum_quote),
            "status": order.status,
            "timeInForce": _tif(order),
            "type": order.type,
            "side": order.side,
            "workingTime": _working_time(order),
            "selfTradePreventionMode": order.self_trade_prevention_mode,
        }
    )
    if order.stop_price:
        ack["stopPrice"] = spec.fmt_price(order.stop_price)
    if resp_type == "FULL":
        ack["fills"] = [spot_fill_short(f, spec) for f in fills]
    return ack


def spot_cancel(
    order: Order, spec: SymbolSpec, orig_client_id: str, new_client_id: str, now_ms: int
) -> dict[str, object]:
    """DELETE /api/v3/order response (and rows of DELETE /api/v3/openOrders)."""
    return {
        "symbol": order.symbol,
        "origClientOrderId": orig_client_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": new_client_id,
        "transactTime": now_ms,
        "price": spec.fmt_price(order.price),
        "origQty": spec.fmt_qty(order.orig_qty),
        "executedQty": spec.fmt_qty(order.executed_qty),
        "origQuoteOrderQty": spec.fmt_amount(order.quote_order_qty),
        "cummulativeQuoteQty": spec.fmt_amount(order.cum_quote),
        "status": order.status,
        "timeInForce": _tif(order),
        "type": order.type,
        "side": order.side,
        "selfTradePreventionMode": order.self_trade_prevention_mode,
    }


def spot_my_trade(fill: Fill, spec: SymbolSpec) -> dict[str, object]:
    """GET /api/v3/myTrades row."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": spec.fmt_price(fill.price),
        "qty": spec.fmt_qty(fill.qty),
        "quoteQty": spec.fmt_amount(fill.quote_qty),
        "commission": spec.fmt_amount(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": ms(fill.time_ns),
        "isBuyer": fill.side == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def spot_balance(balance: Balance) -> dict[str, str]:
    """One ``balances`` row of GET /api/v3/account."""
    return {"asset": balance.asset, "free": fmt_amount(balance.free), "locked": fmt_amount(balance.locked)}


# ---- futures orders -------------------------------------------------------------------------------------
def futures_order(order: Order, spec: SymbolSpec, with_time: bool = True) -> dict[str, object]:
    """GET/POST/DELETE /fapi/v1/order body (``time`` only on queries)."""
    body: dict[str, object] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": spec.fmt_price(order.price),
        "avgPrice": spec.fmt_avg_price(order.cum_quote, order.executed_qty),
        "origQty": spec.fmt_qty(order.orig_qty),
        "executedQty": spec.fmt_qty(order.executed_qty),
        "cumQty": spec.fmt_qty(order.executed_qty),
        "cumQuote": spec.fmt_amount(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": order.position_side,
        "stopPrice": spec.fmt_price(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": order.orig_type or order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": order.self_trade_prevention_mode,
        "goodTillDate": 0,
        "updateTime": ms(order.update_ns),
    }
    if order.orig_type == "TRAILING_STOP_MARKET" or order.type == "TRAILING_STOP_MARKET":
        body["activatePrice"] = spec.fmt_price(order.activation_price)
        body["priceRate"] = order.callback_rate
    if with_time:
        body["time"] = ms(order.time_ns)
    return body


def futures_user_trade(fill: Fill, spec: SymbolSpec) -> dict[str, object]:
    """GET /fapi/v1/userTrades row."""
    return {
        "buyer": fill.side == "BUY",
        "commission": spec.fmt_amount(fill.commission),
        "commissionAsset": fill.commission_asset,
        "id": fill.trade_id,
        "maker": fill.is_maker,
        "orderId": fill.order_id,
        "price": spec.fmt_price(fill.price),
        "qty": spec.fmt_qty(fill.qty),
        "quoteQty": spec.fmt_amount(fill.quote_qty),
        "realizedPnl": spec.fmt_amount(fill.realized_pnl),
        "side": fill.side,
        "positionSide": fill.position_side,
        "symbol": fill.symbol,
        "time": ms(fill.time_ns),
    }


# ---- public market data -----------------------------------------------------------------------------------
def levels(spec: SymbolSpec, rows: list[tuple[int, int]]) -> list[list[str]]:
    """Book levels as ``[["price", "qty"], ...]``."""
    return [[spec.fmt_price(p), spec.fmt_qty(q)] for p, q in rows]


def kline_row(k: Kline, spec: SymbolSpec) -> list[object]:
    """One row of GET /api/v3/klines."""
    return [
        k.open_time_ms,
        spec.fmt_price(k.open),
        spec.fmt_price(k.high),
        spec.fmt_price(k.low),
        spec.fmt_price(k.close),
        spec.fmt_qty(k.volume),
        k.close_time_ms,
        spec.fmt_amount(k.quote_volume),
        k.trades,
        spec.fmt_qty(k.taker_buy_volume),
        spec.fmt_amount(k.taker_buy_quote_volume),
        "0",
    ]


def trade_row(t: TradeEvent, spec: SymbolSpec) -> dict[str, object]:
    """One row of GET /api/v3/trades (and /fapi/v1/trades)."""
    notional = spec.price_of(t.price) * spec.qty_of(t.qty)
    row: dict[str, object] = {
        "id": t.trade_id,
        "price": spec.fmt_price(t.price),
        "qty": spec.fmt_qty(t.qty),
        "quoteQty": dec_str(notional),
        "time": ms(t.time_ns),
        "isBuyerMaker": t.buyer_is_maker,
    }
    if spec.market == "spot":
        row["isBestMatch"] = True
    return row


def trade_event(t: TradeEvent, spec: SymbolSpec) -> dict[str, object]:
    """``<symbol>@trade`` stream payload."""
    e: dict[str, object] = {
        "e": "trade",
        "E": ms(t.time_ns),
        "T": ms(t.time_ns),
        "s": t.symbol,
        "t": t.trade_id,
        "p": spec.fmt_price(t.price),
        "q": spec.fmt_qty(t.qty),
        "m": t.buyer_is_maker,
    }
    if spec.market == "spot":
        e["M"] = True
    else:
        e["X"] = "MARKET"
    return e


def agg_trade_event(t: AggTradeEvent, spec: SymbolSpec) -> dict[str, object]:
    """``<symbol>@aggTrade`` stream payload."""
    e: dict[str, object] = {
        "e": "aggTrade",
        "E": ms(t.time_ns),
        "s": t.symbol,
        "a": t.agg_id,
        "p": spec.fmt_price(t.price),
        "q": spec.fmt_qty(t.qty),
        "f": t.first_trade_id,
        "l": t.last_trade_id,
        "T": ms(t.time_ns),
        "m": t.buyer_is_maker,
    }
    if spec.market == "spot":
        e["M"] = True
    return e


def agg_trade_row(t: AggTradeEvent, spec: SymbolSpec) -> dict[str, object]:
    """One row of GET /api/v3/aggTrades."""
    row: dict[str, object] = {
        "a": t.agg_id,
        "p": spec.fmt_price(t.price),
        "q": spec.fmt_qty(t.qty),
        "f": t.first_trade_id,
        "l": t.last_trade_id,
        "T": ms(t.time_ns),
        "m": t.buyer_is_maker,
    }
    if spec.market == "spot":  # USD-M aggTrades rows have no "M" (best-match) field
        row["M"] = True
    return row


def depth_event(d: DepthEvent, spec: SymbolSpec) -> dict[str, object]:
    """``<symbol>@depth`` diff (Spot: U/u; futures also pu and T)."""
    e: dict[str, object] = {"e": "depthUpdate", "E": ms(d.time_ns)}
    if spec.market != "spot":
        e["T"] = ms(d.time_ns)
    e.update({"s": d.symbol, "U": d.first_update_id, "u": d.last_update_id})
    if spec.market != "spot":
        e["pu"] = d.prev_last_update_id
    e["b"] = levels(spec, d.bids)
    e["a"] = levels(spec, d.asks)
    return e


def book_ticker_event(b: BookTickerEvent, spec: SymbolSpec) -> dict[str, object]:
    """``<symbol>@bookTicker`` payload."""
    body = {
        "u": b.update_id,
        "s": b.symbol,
        "b": spec.fmt_price(b.bid_price),
        "B": spec.fmt_qty(b.bid_qty),
        "a": spec.fmt_price(b.ask_price),
        "A": spec.fmt_qty(b.ask_qty),
    }
    if spec.market == "spot":
        return body
    return {"e": "bookTicker", "E": ms(b.time_ns), "T": ms(b.time_ns), **body}


def book_ticker_row(b: BookTickerEvent, spec: SymbolSpec) -> dict[str, object]:
    """GET /api/v3/ticker/bookTicker row (USD-M: ``lastUpdateId`` first and ``time`` last, as documented)."""
    row: dict[str, object] = {} if spec.market == "spot" else {"lastUpdateId": b.update_id}
    row.update(
        {
            "symbol": b.symbol,
            "bidPrice": spec.fmt_price(b.bid_price),
            "bidQty": spec.fmt_qty(b.bid_qty),
            "askPrice": spec.fmt_price(b.ask_price),
            "askQty": spec.fmt_qty(b.ask_qty),
        }
    )
    if spec.market != "spot":
        row["time"] = ms(b.time_ns)
    return row


def kline_event(k: KlineEvent, spec: SymbolSpec) -> dict[str, object]:
    """``<symbol>@kline_<interval>`` payload."""
    c = k.kline
    return {
        "e": "kline",
        "E": ms(k.time_ns),
        "s": k.symbol,
        "k": {
            "t": c.open_time_ms,
            "T": c.close_time_ms,
            "s": k.symbol,
            "i": k.interval,
            "f": c.first_trade_id,
            "L": c.last_trade_id,
            "o": spec.fmt_price(c.open),
            "c": spec.fmt_price(c.close),
            "h": spec.fmt_price(c.high),
            "l": spec.fmt_price(c.low),
            "v": spec.fmt_qty(c.volume),
            "n": c.trades,
            "x": k.closed,
            "q": spec.fmt_amount(c.quote_volume),
            "V": spec.fmt_qty(c.taker_buy_volume),
            "Q": spec.fmt_amount(c.taker_buy_quote_volume),
            "B": "0",
        },
    }


def ticker_stats(t: Ticker24h, spec: SymbolSpec) -> tuple[str, str, str]:
    """``(price change, change percent, weighted average price)`` of a 24h ticker, as GET /ticker/24hr shows them.

    Spot prints the change with 8 decimals; USD-M prints prices at the symbol's pricePrecision. The REST
    ticker and the ``@ticker`` streams both use this, so they cannot drift apart.
    """
    change = spec.price_of(t.last) - spec.price_of(t.open_price)
    pct = (change / spec.price_of(t.open_price) * 100) if t.open_price else Decimal(0)
    avg = spec.fmt_avg_price(t.quote_volume, t.volume) if t.volume else spec.fmt_price(0)
    if spec.is_futures:
        return dec_str(change, spec.price_precision), dec_str(pct, 3), dec_str(Decimal(avg), spec.price_precision)
    return dec_str(change, 8), dec_str(pct, 3), avg


def ticker_event(
    t: Ticker24h, spec: SymbolSpec, book: BookTickerEvent, last_qty: int, now_ms: int
) -> dict[str, object]:
    """``<symbol>@ticker`` / ``!ticker@arr`` payload (``24hrTicker``); futures carry no x/b/B/a/A."""
    change, pct, avg = ticker_stats(t, spec)
    e: dict[str, object] = {"e": "24hrTicker", "E": now_ms, "s": spec.symbol, "p": change, "P": pct, "w": avg}
    if spec.market == "spot":
        e["x"] = spec.fmt_price(t.prev_close)
    e.update({"c": spec.fmt_price(t.last), "Q": spec.fmt_qty(last_qty)})
    if spec.market == "spot":
        e.update(
            {
                "b": spec.fmt_price(book.bid_price),
                "B": spec.fmt_qty(book.bid_qty),
                "a": spec.fmt_price(book.ask_price),
                "A": spec.fmt_qty(book.ask_qty),
            }
        )
    e.update(
        {
            "o": spec.fmt_price(t.open_price),
            "h": spec.fmt_price(t.high),
            "l": spec.fmt_price(t.low),
            "v": spec.fmt_qty(t.volume),
            "q": spec.fmt_amount(t.quote_volume),
            "O": t.open_time_ms,
            "C": t.close_time_ms,
            "F": t.first_id,
            "L": t.last_id,
            "n": t.count,
        }
    )
    return e


def mark_price_event(
    spec: SymbolSpec, mark: int, funding_rate: str, next_funding_ms: int, now_ms: int
) -> dict[str, object]:
    """``<symbol>@markPrice[@1s]`` / ``!markPrice@arr[@1s]`` payload (``markPriceUpdate``, 8 decimals as Binance
    prints them; index and estimated settle price are the mark here, as in GET /fapi/v1/premiumIndex)."""
    p = dec_str(spec.price_of(mark), 8)
    return {
        "e": "markPriceUpdate",
        "E": now_ms,
        "s": spec.symbol,
        "p": p,
        "i": p,
        "P": p,
        "r": funding_rate,
        "T": next_funding_ms,
    }


def mini_ticker_event(t: Ticker24h, spec: SymbolSpec, now_ms: int) -> dict[str, object]:
    """``<symbol>@miniTicker`` / ``!miniTicker@arr`` payload (``24hrMiniTicker``, same for Spot and futures)."""
    return {
        "e": "24hrMiniTicker",
        "E": now_ms,
        "s": spec.symbol,
        "c": spec.fmt_price(t.last),
        "o": spec.fmt_price(t.open_price),
        "h": spec.fmt_price(t.high),
        "l": spec.fmt_price(t.low),
        "v": spec.fmt_qty(t.volume),
        "q": spec.fmt_amount(t.quote_volume),
    }


# ---- user data ------------------------------------------------------------------------------------------
def execution_report(ev: OrderEvent, spec: SymbolSpec, cancel_client_id: str | None = None) -> dict[str, object]:
    """Spot ``executionReport``. A cancel's ``c`` is the cancel request's own client order id
    (``cancel_client_id``: its ``newClientOrderId`` or a generated one) and ``C`` the order's, as on Binance;
    ``f`` is GTC for a MARKET order, as Binance prints it."""
    o, f = ev.order, ev.fill
    cancelled = cancel_client_id is not None
    return {
        "e": "executionReport",
        "E": ms(ev.time_ns),
        "s": o.symbol,
        "c": cancel_client_id if cancelled else o.client_order_id,
        "S": o.side,
        "o": o.type,
        "f": _tif(o),
        "q": spec.fmt_qty(o.orig_qty),
        "p": spec.fmt_price(o.price),
        "P": spec.fmt_price(o.stop_price),
        "F": spec.fmt_qty(0),
        "g": -1,
        "C": o.client_order_id if cancelled else "",
        "x": ev.exec_type,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": spec.fmt_qty(f.qty if f else 0),
        "z": spec.fmt_qty(o.executed_qty),
        "L": spec.fmt_price(f.price if f else 0),
        "n": spec.fmt_amount(f.commission if f else 0),
        "N": f.commission_asset if f else None,
        "T": ms(ev.time_ns),
        "t": f.trade_id if f else -1,
        "I": 0,
        "w": o.is_open and o.is_working,
        "m": f.is_maker if f else False,
        "M": False,
        "O": ms(o.time_ns),
        "Z": spec.fmt_amount(o.cum_quote),
        "Y": spec.fmt_amount(f.quote_qty if f else 0),
        "Q": spec.fmt_amount(o.quote_order_qty),
        "W": _working_time(o),
        "V": o.self_trade_prevention_mode,
    }


def order_trade_update(ev: OrderEvent, spec: SymbolSpec) -> dict[str, object]:
    """Futures ``ORDER_TRADE_UPDATE``."""
    o, f = ev.order, ev.fill
    t = ms(ev.time_ns)
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": t,
        "T": t,
        "o": {
            "s": o.symbol,
            "c": o.client_order_id,
            "S": o.side,
            "o": o.type,
            "f": _tif(o),
            "q": spec.fmt_qty(o.orig_qty),
            "p": spec.fmt_price(o.price),
            "ap": spec.fmt_avg_price(o.cum_quote, o.executed_qty),
            "sp": spec.fmt_price(o.stop_price),
            "x": ev.exec_type,
            "X": o.status,
            "i": o.order_id,
            "l": spec.fmt_qty(f.qty if f else 0),
            "z": spec.fmt_qty(o.executed_qty),
            "L": spec.fmt_price(f.price if f else 0),
            "N": f.commission_asset if f else spec.quote_asset,
            "n": spec.fmt_amount(f.commission if f else 0),
            "T": t,
            "t": f.trade_id if f else 0,
            "b": "0",
            "a": "0",
            "m": f.is_maker if f else False,
            "R": o.reduce_only,
            "wt": o.working_type,
            "ot": o.orig_type or o.type,
            "ps": o.position_side,
            "cp": o.close_position,
            "rp": spec.fmt_amount(f.realized_pnl if f else 0),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": o.self_trade_prevention_mode,
            "pm": "NONE",
            "gtd": 0,
        },
    }


def outbound_account_position(ev: AccountEvent) -> dict[str, object]:
    """Spot ``outboundAccountPosition``."""
    t = ms(ev.time_ns)
    return {
        "e": "outboundAccountPosition",
        "E": t,
        "u": t,
        "B": [{"a": b.asset, "f": fmt_amount(b.free), "l": fmt_amount(b.locked)} for b in ev.balances],
    }


def position_fields(p: Position, spec: SymbolSpec, mark_ticks: int, margin_type: str) -> dict[str, object]:
    """``P`` row of ACCOUNT_UPDATE."""
    qty = spec.qty_of(p.qty)
    entry = spec.fmt_avg_price(abs(p.cost), abs(p.qty)) if p.qty else "0"
    upnl = spec.price_of(mark_ticks) * qty - Decimal(p.cost) / AMOUNT_SCALE if p.qty else Decimal(0)
    return {
        "s": p.symbol,
        "pa": spec.fmt_qty(p.qty) if p.qty >= 0 else "-" + spec.fmt_qty(-p.qty),
        "ep": entry,
        "bep": entry,
        "cr": "0",
        "up": dec_str(upnl),
        "mt": "isolated" if margin_type == "ISOLATED" else "cross",
        "iw": fmt_amount(p.isolated_margin),
        "ps": p.position_side,
    }


def account_update(ev: AccountEvent, positions: list[dict[str, object]]) -> dict[str, object]:
    """Futures ``ACCOUNT_UPDATE`` (positions already formatted with :func:`position_fields`)."""
    t = ms(ev.time_ns)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": t,
        "T": t,
        "a": {
            "m": ev.reason,
            "B": [
                {
                    "a": b.asset,
                    "wb": fmt_amount(b.total),
                    "cw": fmt_amount(b.total),
                    "bc": fmt_signed(ev.wallet_deltas.get(b.asset, 0)),
                }
                for b in ev.balances
            ],
            "P": positions,
        },
    }


def fmt_signed(units: int) -> str:
    """A signed 1e-8 amount as a decimal string."""
    return fmt_amount(units) if units >= 0 else "-" + fmt_amount(-units)


def balance_update(asset: str, delta: int, time_ns: int) -> dict[str, object]:
    """Spot ``balanceUpdate``."""
    t = ms(time_ns)
    return {"e": "balanceUpdate", "E": t, "a": asset, "d": fmt_signed(delta), "T": t}
