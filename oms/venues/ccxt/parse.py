"""ccxt's unified structures -> the model, and the model's commands -> ccxt's unified arguments.

Only ccxt's unified fields are read (never ``info``, the exchange's raw payload), so one parser serves every
exchange ccxt supports. ccxt gives numbers as binary floats parsed from the venue's decimal strings; each is
turned back into its shortest decimal string (``repr`` round-trips, and a venue's decimals have far fewer
than 15 significant digits), and prices and quantities are then checked against the instrument: a value
with more decimals than its tick or lot step raises ``BadValue`` naming symbol, field and value, which the
stream loops count and drop.

Every parser raises ``BadValue`` (a ``ValueError``) for a structure it cannot turn into a model message.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from oms.model import (
    Balance,
    BookSnapshot,
    DepthDiff,
    Fill,
    Instrument,
    InstrumentId,
    InstrumentKind,
    InstrumentSpec,
    Kline,
    LiquiditySide,
    MarginType,
    Market,
    MarkPrice,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Position,
    PositionSide,
    Quote,
    Side,
    TimeInForce,
    Trade,
)
from oms.model.units import canonical

MS = 1_000_000  # ns per ms
_INF = float("inf")

_STATUS = {
    "open": OrderStatus.NEW,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "canceling": OrderStatus.PENDING_CANCEL,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PO": TimeInForce.GTX,
    "GTX": TimeInForce.GTX,
    "GTD": TimeInForce.GTD,
}
_TIF_OUT = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.GTD: "GTD"}


class BadValue(ValueError):
    """A ccxt structure that cannot become a model message (missing field, bad number, unknown symbol)."""


def dec(value: Any, what: str) -> str:
    """A ccxt number (float, int or numeric string) as its canonical decimal string."""
    if isinstance(value, float):
        if value != value or value in (_INF, -_INF):
            raise BadValue(f"{what}: {value!r} is not a finite number")
        text = repr(value)  # the shortest string that reads back as this float: the venue's decimals
        if "e" in text:
            return canonical(Decimal(text))
        if text.endswith(".0"):
            text = text[:-2]
        return "0" if text == "-0" else text
    if value is None or isinstance(value, bool):
        raise BadValue(f"{what}: missing (got {value!r})")
    if isinstance(value, int):
        return str(value)
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise BadValue(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise BadValue(f"{what}: {value!r} is not a finite number")
    return canonical(d)


def opt_dec(value: Any, what: str) -> str | None:
    return None if value is None else dec(value, what)


def _ns(ms: Any) -> int:
    return int(ms) * MS if isinstance(ms, int | float) and ms > 0 else 0


def checked(inst: Instrument, value: Any, field: str, *, price: bool) -> str:
    """``value`` as a decimal string that is a whole number of the instrument's price or quantity units."""
    text = dec(value, f"{inst.symbol} {field}")
    try:
        inst.price(text, field) if price else inst.qty(text, field)
    except ValueError as exc:
        raise BadValue(str(exc)) from None
    return text


# --- instruments ------------------------------------------------------------------------------------


def _tick(value: Any, mode: int, what: str) -> str:
    if value is None:
        raise BadValue(f"{what}: ccxt has no precision")
    if mode == TICK_SIZE:
        return dec(value, what)
    if mode == DECIMAL_PLACES:
        return canonical(Decimal(1).scaleb(-int(value)))
    raise BadValue(f"{what}: precision mode {mode} (significant digits) has no fixed tick")


def _limit(limits: Mapping[str, Any], key: str, bound: str, what: str) -> str:
    value = (limits.get(key) or {}).get(bound)
    return "0" if value is None else dec(value, what)


def instrument_spec(exchange: str, market: Mapping[str, Any], precision_mode: int) -> InstrumentSpec:
    """One ccxt market -> an ``InstrumentSpec`` (Spot and linear perpetuals only; others raise ``BadValue``)."""
    symbol = market.get("symbol")
    if market.get("spot"):
        kind = InstrumentKind.SPOT
    elif market.get("swap") and market.get("linear"):
        kind = InstrumentKind.PERP
    else:
        raise BadValue(f"{symbol}: only spot and linear perpetual markets are supported ({market.get('type')})")
    try:
        InstrumentId.parse(str(symbol))
    except ValueError as exc:
        raise BadValue(str(exc)) from None
    precision, limits = market.get("precision") or {}, market.get("limits") or {}
    tick = _tick(precision.get("price"), precision_mode, f"{symbol} price precision")
    step = _tick(precision.get("amount"), precision_mode, f"{symbol} amount precision")
    return InstrumentSpec(
        symbol=str(symbol),
        kind=kind,
        tick_size=tick,
        step_size=step,
        min_qty=_limit(limits, "amount", "min", f"{symbol} min amount"),
        max_qty=_limit(limits, "amount", "max", f"{symbol} max amount"),
        min_price=_limit(limits, "price", "min", f"{symbol} min price"),
        max_price=_limit(limits, "price", "max", f"{symbol} max price"),
        min_notional=_limit(limits, "cost", "min", f"{symbol} min cost"),
        max_notional=_limit(limits, "cost", "max", f"{symbol} max cost"),
        contract_size=dec(market.get("contractSize") or 1, f"{symbol} contract size"),
        trading=market.get("active") is not False,
        exchange=exchange,
        venue_symbol=str(market.get("id")),
        base_asset=str(market.get("base")),
        quote_asset=str(market.get("quote")),
        settle_asset=str(market.get("settle") or "") if kind is InstrumentKind.PERP else "",
    )


# --- market data ------------------------------------------------------------------------------------


def trade(exchange: str, inst: Instrument, t: Mapping[str, Any], recv_ns: int = 0) -> Trade:
    side = t.get("side")
    if side not in ("buy", "sell"):
        raise BadValue(f"{inst.symbol} trade {t.get('id')}: side {side!r}")
    return Trade(
        exchange=exchange,
        symbol=inst.symbol,
        trade_id=str(t.get("id")),
        price=checked(inst, t.get("price"), "trade price", price=True),
        qty=checked(inst, t.get("amount"), "trade amount", price=False),
        taker_side=Side(side),
        event_ns=_ns(t.get("timestamp")),
        recv_ns=recv_ns,
    )


def quote(exchange: str, inst: Instrument, t: Mapping[str, Any], recv_ns: int = 0) -> Quote:
    """A ccxt ticker (``watch_bids_asks``/``watch_ticker``) -> best bid and ask."""
    return Quote(
        exchange=exchange,
        symbol=inst.symbol,
        bid_price=checked(inst, t.get("bid"), "bid", price=True),
        bid_qty=checked(inst, t.get("bidVolume") or 0, "bid volume", price=False),
        ask_price=checked(inst, t.get("ask"), "ask", price=True),
        ask_qty=checked(inst, t.get("askVolume") or 0, "ask volume", price=False),
        event_ns=_ns(t.get("timestamp")),
        recv_ns=recv_ns,
    )


def levels(inst: Instrument, side: Any, depth: int, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for row in list(side)[:depth]:
        out.append(
            (checked(inst, row[0], f"{what} price", price=True), checked(inst, row[1], f"{what} qty", price=False))
        )
    return tuple(out)


def snapshot(exchange: str, inst: Instrument, book: Mapping[str, Any], depth: int, recv_ns: int = 0) -> BookSnapshot:
    nonce = book.get("nonce")
    return BookSnapshot(
        exchange=exchange,
        symbol=inst.symbol,
        last_update_id=int(nonce) if nonce is not None else 0,
        bids=levels(inst, book.get("bids") or (), depth, "bid"),
        asks=levels(inst, book.get("asks") or (), depth, "ask"),
        event_ns=_ns(book.get("timestamp")),
        recv_ns=recv_ns,
    )


def diff_levels(before: tuple[tuple[str, str], ...], after: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The level updates that turn ``before`` into ``after`` (quantity ``"0"``: the level is gone)."""
    old = dict(before)
    new = dict(after)
    changes = [(p, q) for p, q in after if old.get(p) != q]
    changes.extend((p, "0") for p in old if p not in new)
    return tuple(changes)


def depth_diff(exchange: str, prev: BookSnapshot, now: BookSnapshot) -> DepthDiff:
    """The diff from one observed book state to the next, numbered so the book kernel's Spot rule checks it:
    ``first_update_id = prev.last_update_id + 1`` and ``last_update_id`` the new state's nonce."""
    return DepthDiff(
        exchange=exchange,
        symbol=now.symbol,
        first_update_id=prev.last_update_id + 1,
        last_update_id=now.last_update_id,
        bids=diff_levels(prev.bids, now.bids),
        asks=diff_levels(prev.asks, now.asks),
        event_ns=now.event_ns,
        recv_ns=now.recv_ns,
    )


def kline(exchange: str, inst: Instrument, interval_ms: int, interval: str, row: Any, closed: bool) -> Kline:
    """A ccxt OHLCV row ``[ms, open, high, low, close, volume]``."""
    if not isinstance(row, list | tuple) or len(row) < 6:
        raise BadValue(f"{inst.symbol} {interval} kline: not an OHLCV row: {row!r}")
    what = f"{inst.symbol} {interval} kline"
    open_ns = _ns(row[0])
    return Kline(
        exchange=exchange,
        symbol=inst.symbol,
        interval=interval,
        open_ns=open_ns,
        close_ns=open_ns + interval_ms * MS - 1,
        open=checked(inst, row[1], f"{what} open", price=True),
        high=checked(inst, row[2], f"{what} high", price=True),
        low=checked(inst, row[3], f"{what} low", price=True),
        close=checked(inst, row[4], f"{what} close", price=True),
        volume=dec(row[5], f"{what} volume"),
        closed=closed,
        event_ns=open_ns,
    )


def mark_price(
    exchange: str,
    inst: Instrument,
    t: Mapping[str, Any],
    funding: Mapping[str, Any] | None = None,
    recv_ns: int = 0,
) -> MarkPrice:
    """A ccxt mark-price ticker (``watch_mark_price``) or funding-rate structure (``fetch_funding_rate``)."""
    mark = t.get("markPrice")
    if mark is None:
        raise BadValue(f"{inst.symbol} mark price: missing")
    funding = funding if funding is not None else t
    return MarkPrice(
        exchange=exchange,
        symbol=inst.symbol,
        mark_price=dec(mark, f"{inst.symbol} mark price"),
        index_price=opt_dec(t.get("indexPrice"), f"{inst.symbol} index price"),
        funding_rate=opt_dec(funding.get("fundingRate"), f"{inst.symbol} funding rate"),
        next_funding_ns=_ns(funding.get("fundingTimestamp") or funding.get("nextFundingTimestamp")),
        event_ns=_ns(t.get("timestamp")),
        recv_ns=recv_ns,
    )


# --- orders and fills -------------------------------------------------------------------------------


def order_type(o: Mapping[str, Any]) -> OrderType:
    """The model's order type from ccxt's (lower-cased venue name plus the unified trigger fields)."""
    t = str(o.get("type") or "").lower()
    has_price = bool(o.get("price")) and "market" not in t
    if "trailing" in t:
        return OrderType.TRAILING_STOP_MARKET
    if t == "limit_maker" or (t == "limit" and o.get("postOnly")):
        return OrderType.LIMIT_MAKER  # post-only (Spot's LIMIT_MAKER, futures' time in force GTX)
    take = "take_profit" in t or (o.get("takeProfitPrice") and not o.get("stopLossPrice"))
    stop = "stop" in t or o.get("stopLossPrice") or o.get("triggerPrice")
    if take:
        return OrderType.TAKE_PROFIT_LIMIT if has_price and t != "take_profit_market" else OrderType.TAKE_PROFIT_MARKET
    if stop:
        return OrderType.STOP_LIMIT if has_price and t != "stop_market" else OrderType.STOP_MARKET
    if t == "market":
        return OrderType.MARKET
    if t == "limit":
        return OrderType.LIMIT
    raise BadValue(f"order {o.get('clientOrderId') or o.get('id')}: unknown order type {o.get('type')!r}")


def order_status(o: Mapping[str, Any]) -> OrderStatus:
    status = _STATUS.get(str(o.get("status")))
    if status is None:
        raise BadValue(f"order {o.get('clientOrderId') or o.get('id')}: unknown status {o.get('status')!r}")
    if status is OrderStatus.NEW and (o.get("filled") or 0) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order(account: str, o: Mapping[str, Any], strategy: str = "") -> Order:
    """A ccxt order structure -> ``Order``; ``BadValue`` without a client order id or symbol."""
    cid = o.get("clientOrderId")
    symbol = o.get("symbol")
    if not cid or not symbol:
        raise BadValue(f"order {o.get('id')} of {account}: no client order id or symbol in ccxt's answer")
    side = o.get("side")
    if side not in ("buy", "sell"):
        raise BadValue(f"order {cid} of {account}: side {side!r}")
    what = f"order {cid} of {account}"
    tif = _TIF.get(str(o.get("timeInForce") or "").upper())
    price = o.get("price")
    trigger = o.get("triggerPrice") or o.get("stopLossPrice") or o.get("takeProfitPrice")
    return Order(
        account=account,
        symbol=str(symbol),
        client_order_id=str(cid),
        venue_order_id=None if o.get("id") is None else str(o.get("id")),
        side=Side(side),
        order_type=order_type(o),
        qty=dec(o.get("amount"), f"{what} amount"),
        price=opt_dec(price, f"{what} price") if price else None,
        stop_price=opt_dec(trigger, f"{what} trigger price") if trigger else None,
        time_in_force=tif,
        reduce_only=bool(o.get("reduceOnly")),
        post_only=bool(o.get("postOnly")),
        status=order_status(o),
        filled_qty=dec(o.get("filled") or 0, f"{what} filled"),
        avg_price=opt_dec(o.get("average"), f"{what} average") if o.get("average") else None,
        created_ns=_ns(o.get("timestamp")),
        updated_ns=_ns(o.get("lastUpdateTimestamp") or o.get("lastTradeTimestamp") or o.get("timestamp")),
        strategy=strategy,
    )


def event_kind(prev: Order | None, now: Order) -> OrderEventKind | None:
    """What changed from ``prev`` (the last known state, or None) to ``now``; None: nothing (a duplicate)."""
    status = now.status
    if status is OrderStatus.CANCELED:
        kind = OrderEventKind.CANCELED
    elif status is OrderStatus.EXPIRED:
        kind = OrderEventKind.EXPIRED
    elif status is OrderStatus.REJECTED:
        kind = OrderEventKind.REJECTED
    elif status is OrderStatus.FILLED:
        kind = OrderEventKind.FILL
    elif prev is not None and Decimal(now.filled_qty) > Decimal(prev.filled_qty):
        kind = OrderEventKind.PARTIAL_FILL
    elif status is OrderStatus.PARTIALLY_FILLED and prev is None:
        kind = OrderEventKind.PARTIAL_FILL
    elif prev is not None and (now.price != prev.price or now.qty != prev.qty):
        kind = OrderEventKind.AMENDED
    elif status is OrderStatus.PENDING_CANCEL:
        kind = OrderEventKind.CANCEL_SENT
    else:
        kind = OrderEventKind.ACCEPTED
    if (
        prev is not None
        and prev.status is status
        and prev.filled_qty == now.filled_qty
        and kind
        in (
            OrderEventKind.ACCEPTED,
            OrderEventKind.CANCELED,
            OrderEventKind.EXPIRED,
            OrderEventKind.REJECTED,
            OrderEventKind.FILL,
            OrderEventKind.CANCEL_SENT,
        )
    ):
        return None
    return kind


def order_event(now: Order, kind: OrderEventKind, recv_ns: int = 0) -> OrderEvent:
    return OrderEvent(
        account=now.account,
        symbol=now.symbol,
        client_order_id=now.client_order_id,
        venue_order_id=now.venue_order_id,
        kind=kind,
        status=now.status,
        side=now.side,
        order_type=now.order_type,
        qty=now.qty,
        price=now.price,
        filled_qty=now.filled_qty,
        avg_price=now.avg_price,
        event_ns=now.updated_ns or recv_ns,
        recv_ns=recv_ns,
    )


def fill(account: str, t: Mapping[str, Any], client_order_id: str, recv_ns: int = 0) -> Fill:
    """A ccxt trade of ours (``fetch_my_trades``/``watch_my_trades``) -> ``Fill``."""
    what = f"fill {t.get('id')} of order {client_order_id} of {account}"
    side = t.get("side")
    if side not in ("buy", "sell") or not t.get("symbol"):
        raise BadValue(f"{what}: side {side!r}, symbol {t.get('symbol')!r}")
    fee = t.get("fee") or {}
    return Fill(
        account=account,
        symbol=str(t["symbol"]),
        client_order_id=client_order_id,
        venue_order_id=str(t.get("order")),
        trade_id=str(t.get("id")),
        side=Side(side),
        price=dec(t.get("price"), f"{what} price"),
        qty=dec(t.get("amount"), f"{what} amount"),
        commission=dec(fee.get("cost") or 0, f"{what} fee"),
        commission_asset=str(fee.get("currency") or ""),
        liquidity=LiquiditySide.MAKER if t.get("takerOrMaker") == "maker" else LiquiditySide.TAKER,
        event_ns=_ns(t.get("timestamp")),
        recv_ns=recv_ns,
    )


# --- balances and positions -------------------------------------------------------------------------


def balances(account: str, market: Market, b: Mapping[str, Any], event_ns: int = 0) -> tuple[Balance, ...]:
    """A ccxt balance structure -> one ``Balance`` per asset with a non-zero total.

    USD-M follows the model's rule (``free`` the available balance, ``free + locked`` the wallet balance): ccxt's
    ``used`` there is the initial margin and its ``total`` the margin balance (wallet plus unrealised PnL), so
    where the venue's answer (``info``) names the wallet balance (Binance ``balance``), ``locked`` is the
    wallet balance minus the available one."""
    free, used, total = b.get("free") or {}, b.get("used") or {}, b.get("total") or {}
    wallet = _wallets(b.get("info")) if market is Market.USDM else {}
    out = []
    for asset in sorted(set(free) | set(used) | set(total)):
        tot = total.get(asset)
        f, u = free.get(asset), used.get(asset)
        if not tot and not f and not u:
            continue
        if asset in wallet and f is not None:
            u = Decimal(wallet[asset]) - Decimal(dec(f, f"{account} {asset} free"))
        out.append(
            Balance(
                account=account,
                market=market,
                asset=asset,
                free=dec(f or 0, f"{account} {asset} free"),
                locked=dec(u or 0, f"{account} {asset} used"),
                event_ns=event_ns,
            )
        )
    return tuple(out)


def _wallets(info: Any) -> dict[str, str]:
    """Asset -> wallet balance from a USD-M answer: the balance endpoint's rows (``asset``, ``balance``) or the
    account endpoint's ``assets`` (``asset``, ``walletBalance``)."""
    rows = info.get("assets") if isinstance(info, dict) else info
    out: dict[str, str] = {}
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict) and "asset" in r:
            w = r.get("walletBalance", r.get("balance"))
            if w is not None:
                out[str(r["asset"])] = str(w)
    return out


def position(account: str, p: Mapping[str, Any]) -> Position:
    """A ccxt position structure -> ``Position`` (``qty`` negative for a short, one-way and hedge mode alike)."""
    symbol = p.get("symbol")
    what = f"position {symbol} of {account}"
    contracts = Decimal(dec(p.get("contracts") or 0, f"{what} contracts"))
    side = p.get("side")
    hedged = bool(p.get("hedged"))
    if hedged:
        pos_side = PositionSide.LONG if side == "long" else PositionSide.SHORT
    else:
        pos_side = PositionSide.BOTH
    qty = -contracts if side == "short" else contracts  # signed: negative for a short, in either mode
    mode = p.get("marginMode")
    leverage = p.get("leverage")
    return Position(
        account=account,
        symbol=str(symbol),
        position_side=pos_side,
        qty=canonical(qty),
        entry_price=dec(p.get("entryPrice") or 0, f"{what} entry price"),
        unrealized_pnl=dec(p.get("unrealizedPnl") or 0, f"{what} unrealized pnl"),
        leverage=int(leverage) if leverage else 0,
        margin_type=MarginType(mode) if mode in ("cross", "isolated") else None,
        liquidation_price=opt_dec(p.get("liquidationPrice"), f"{what} liquidation price")
        if p.get("liquidationPrice")
        else None,
        event_ns=_ns(p.get("timestamp")),
    )


# --- commands -> ccxt arguments ---------------------------------------------------------------------


def create_order_args(cmd: PlaceOrder, hedge_mode: bool) -> tuple[str, str, str, float, float | None, dict[str, Any]]:
    """``(symbol, type, side, amount, price, params)`` for ccxt's unified ``create_order``.

    Trigger types use ccxt's unified ``stopLossPrice``/``takeProfitPrice``; a trailing stop ``trailingPercent``
    (+ ``trailingTriggerPrice``); post-only ``postOnly``; a hedge-mode side ``hedged`` (ccxt derives the
    position side from the order side and ``reduceOnly``).
    """
    t = cmd.order_type
    params: dict[str, Any] = {"clientOrderId": cmd.client_order_id}
    limit_priced = t.has_limit_price
    ccxt_type = "limit" if limit_priced else "market"
    if t in (OrderType.STOP_LIMIT, OrderType.STOP_MARKET):
        params["stopLossPrice"] = cmd.stop_price
    elif t in (OrderType.TAKE_PROFIT_LIMIT, OrderType.TAKE_PROFIT_MARKET):
        params["takeProfitPrice"] = cmd.stop_price
    elif t is OrderType.TRAILING_STOP_MARKET:
        params["trailingPercent"] = cmd.callback_rate
        if cmd.stop_price:
            params["trailingTriggerPrice"] = cmd.stop_price
    if t is OrderType.LIMIT_MAKER or cmd.post_only or cmd.time_in_force is TimeInForce.GTX:
        params["postOnly"] = True
    elif cmd.time_in_force is not None and limit_priced:
        params["timeInForce"] = _TIF_OUT[cmd.time_in_force]
    if cmd.time_in_force is TimeInForce.GTD and cmd.good_till_ns:
        params["goodTillDate"] = cmd.good_till_ns // MS
    reduce_only = cmd.reduce_only
    if hedge_mode and cmd.position_side is not PositionSide.BOTH:
        params["hedged"] = True
        opening = (cmd.position_side is PositionSide.LONG) == (cmd.side is Side.BUY)
        reduce_only = not opening
    if reduce_only:
        params["reduceOnly"] = True
    price = float(cmd.price) if limit_priced and cmd.price is not None else None
    return cmd.symbol, ccxt_type, cmd.side.value, float(cmd.qty), price, params


def raw_info(o: Any) -> Any:
    """The venue's raw answer inside a ccxt structure (for error messages only)."""
    return o.get("info") if isinstance(o, Mapping) else o
