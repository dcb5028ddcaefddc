"""Binance wire structs -> model events: the ``parse_to_*`` functions, one per message shape.

Every function takes the decoded wire struct (``wire_user``, ``wire_market``, ``wire_rest``), the account
(``binance/sub_mm``) or exchange name, and the market's ``SymbolTable``; it returns frozen model structs with
Binance's decimal strings kept verbatim (after a precision check against the instrument) and times in ns.
An unknown symbol raises ``UnknownSymbol``, a bad or over-precise decimal ``BadDecimal``; the stream loops
count those and drop the event.

Client order ids: on a Spot cancel, ``executionReport.c`` is the cancel request's id and ``C`` the order's
original one, so the order is named by ``C`` when it is set. Binance's ``TRADE`` always carries its trade (the
last one of an order says FILLED): one without (``t`` < 1 or a zero ``l``) is bad input, refused with
``ValueError`` (the stream counts and drops it).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from decimal import Decimal

from oms.model import (
    Balance,
    BalanceEvent,
    BookSnapshot,
    DepthDiff,
    Fill,
    Kline,
    LiquiditySide,
    MarginType,
    Market,
    MarkPrice,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    Position,
    PositionEvent,
    Quote,
    Side,
    Trade,
)
from oms.venues.binance import codes
from oms.venues.binance import wire_market as wm
from oms.venues.binance import wire_rest as wr
from oms.venues.binance import wire_user as wu
from oms.venues.binance.symbols import SymbolTable, UnknownSymbol, check_decimal

MS = 1_000_000
_MAKER = LiquiditySide.MAKER
_TAKER = LiquiditySide.TAKER
_FILL = OrderEventKind.FILL
_PARTIAL = OrderEventKind.PARTIAL_FILL
_FILLED = OrderStatus.FILLED
_STATUS = codes.STATUS
_SIDE = codes.SIDE
_POSITION_SIDE = codes.POSITION_SIDE
_TRADE_EXEC = codes.TRADE_EXEC
_SPOT_TYPE_GET = codes.SPOT_TYPE.get
_FUTURES_TYPE_GET = codes.FUTURES_TYPE.get


def _price(value: str) -> str | None:
    """A limit or stop price: Binance writes ``"0"`` (padded) where there is none."""
    return None if not value.strip("0.") else value


def _trade_kind(status: OrderStatus) -> OrderEventKind:
    return _FILL if status is OrderStatus.FILLED else _PARTIAL


def _event_kind(exec_type: str, status: OrderStatus, has_trade: bool) -> OrderEventKind:
    if exec_type in codes.TRADE_EXEC:
        if not has_trade:
            raise ValueError(f"{exec_type} event without a trade (no trade id or a zero quantity)")
        return _trade_kind(status)
    kind = codes.EXEC_KIND.get(exec_type)
    if kind is None:
        raise ValueError(f"unknown execution type {exec_type!r}")
    return kind


def _info(symbols: SymbolTable, venue_symbol: str) -> tuple[str, int, int, AbstractSet[str], AbstractSet[str]]:
    try:
        return symbols.parse_info[venue_symbol]
    except KeyError:
        raise UnknownSymbol(venue_symbol, symbols.market.value) from None


# The two order-event parsers run on every user-data event: one lookup gives the symbol's parse info, and each
# decimal is tested against the values check_decimal has already passed before calling it (same result).
def parse_to_order_event(ev: wu.ExecutionReport, account: str, symbols: SymbolTable, recv_ns: int = 0) -> OrderEvent:
    """Spot ``executionReport`` -> ``OrderEvent`` (with its ``Fill`` when it reports a trade)."""
    symbol, pp, qp, seen_p, seen_q = _info(symbols, ev.s)
    status = _STATUS[ev.X]
    side = _SIDE[ev.S]
    coid = ev.C or ev.c
    oid = str(ev.i)
    last_qty = ev.l
    fill = None
    if ev.t > 0 and last_qty.strip("0.") != "":
        last_px = ev.L
        fill = Fill(
            account=account,
            symbol=symbol,
            client_order_id=coid,
            venue_order_id=oid,
            trade_id=str(ev.t),
            side=side,
            price=last_px if last_px in seen_p else check_decimal(last_px, pp, "executionReport L (last price)"),
            qty=last_qty if last_qty in seen_q else check_decimal(last_qty, qp, "executionReport l (last quantity)"),
            commission=ev.n,
            commission_asset=ev.N or "",
            liquidity=_MAKER if ev.m else _TAKER,
            event_ns=ev.T * MS,
            recv_ns=recv_ns,
        )
        kind = _FILL if status is _FILLED else _PARTIAL
        if ev.x not in _TRADE_EXEC:
            kind = _event_kind(ev.x, status, True)
    else:
        kind = _event_kind(ev.x, status, False)
    qty, price = ev.q, ev.p
    return OrderEvent(
        account=account,
        symbol=symbol,
        client_order_id=coid,
        venue_order_id=oid,
        kind=kind,
        status=status,
        side=side,
        order_type=_SPOT_TYPE_GET(ev.o),
        qty=qty if qty in seen_q else check_decimal(qty, qp, "executionReport q (quantity)"),
        price=_price(price if price in seen_p else check_decimal(price, pp, "executionReport p (price)")),
        filled_qty=ev.z,
        fill=fill,
        reason="" if ev.r == "NONE" else ev.r,
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )


def parse_to_futures_order_event(
    ev: wu.OrderTradeUpdate, account: str, symbols: SymbolTable, recv_ns: int = 0
) -> OrderEvent:
    """USD-M ``ORDER_TRADE_UPDATE`` -> ``OrderEvent`` (with its ``Fill`` on a trade)."""
    o = ev.o
    symbol, pp, qp, seen_p, seen_q = _info(symbols, o.s)
    status = _STATUS[o.X]
    side = _SIDE[o.S]
    oid = str(o.i)
    last_qty = o.l
    fill = None
    if o.t > 0 and last_qty.strip("0.") != "":
        last_px = o.L
        fill = Fill(
            account=account,
            symbol=symbol,
            client_order_id=o.c,
            venue_order_id=oid,
            trade_id=str(o.t),
            side=side,
            price=last_px if last_px in seen_p else check_decimal(last_px, pp, "ORDER_TRADE_UPDATE o.L (last price)"),
            qty=last_qty
            if last_qty in seen_q
            else check_decimal(last_qty, qp, "ORDER_TRADE_UPDATE o.l (last quantity)"),
            commission=o.n,
            commission_asset=o.N or "",
            liquidity=_MAKER if o.m else _TAKER,
            position_side=_POSITION_SIDE[o.ps],
            realized_pnl=o.rp,
            event_ns=o.T * MS,
            recv_ns=recv_ns,
        )
        kind = _FILL if status is _FILLED else _PARTIAL
        if o.x not in _TRADE_EXEC:
            kind = _event_kind(o.x, status, True)
    else:
        kind = _event_kind(o.x, status, False)
    qty, price = o.q, o.p
    return OrderEvent(
        account=account,
        symbol=symbol,
        client_order_id=o.c,
        venue_order_id=oid,
        kind=kind,
        status=status,
        side=side,
        order_type=_FUTURES_TYPE_GET(o.o),
        qty=qty if qty in seen_q else check_decimal(qty, qp, "ORDER_TRADE_UPDATE o.q (quantity)"),
        price=_price(price if price in seen_p else check_decimal(price, pp, "ORDER_TRADE_UPDATE o.p (price)")),
        filled_qty=o.z,
        avg_price=_price(o.ap),
        fill=fill,
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )


def parse_to_spot_balance_event(ev: wu.OutboundAccountPosition, account: str, recv_ns: int = 0) -> BalanceEvent:
    """Spot ``outboundAccountPosition`` -> ``BalanceEvent`` (the balances it lists)."""
    t = ev.E * MS
    balances = tuple(
        Balance(account=account, market=Market.SPOT, asset=b.a, free=b.f, locked=b.l, event_ns=t) for b in ev.B
    )
    return BalanceEvent(
        account=account, market=Market.SPOT, balances=balances, reason="ORDER", event_ns=t, recv_ns=recv_ns
    )


def parse_to_futures_account_events(
    ev: wu.AccountUpdate, account: str, symbols: SymbolTable, recv_ns: int = 0
) -> tuple[BalanceEvent, PositionEvent]:
    """USD-M ``ACCOUNT_UPDATE`` -> its balances and its positions. The event carries no available balance:
    ``free`` is the wallet balance there (the REST snapshot splits it into available and margin in use)."""
    t = ev.E * MS
    a = ev.a
    balances = tuple(Balance(account=account, market=Market.USDM, asset=b.a, free=b.wb, event_ns=t) for b in a.B)
    positions = tuple(
        Position(
            account=account,
            symbol=symbols.unified(p.s),
            position_side=codes.POSITION_SIDE[p.ps],
            qty=p.pa,
            entry_price=p.ep,
            unrealized_pnl=p.up,
            margin_type=MarginType(p.mt.lower()),
            event_ns=t,
        )
        for p in a.P
    )
    return (
        BalanceEvent(account=account, market=Market.USDM, balances=balances, reason=a.m, event_ns=t, recv_ns=recv_ns),
        PositionEvent(account=account, positions=positions, reason=a.m, event_ns=t, recv_ns=recv_ns),
    )


# ---- REST / WebSocket-API answers ------------------------------------------------------------------------
def parse_to_order(o: wr.SpotOrder | wr.FuturesOrder, account: str, symbols: SymbolTable, strategy: str = "") -> Order:
    """A Spot or USD-M order body -> ``Order``. An ACK body (no status) reads as ``new``."""
    symbol = symbols.unified(o.symbol)
    futures = isinstance(o, wr.FuturesOrder)
    table = codes.FUTURES_TYPE if futures else codes.SPOT_TYPE
    t = (o.updateTime or o.time or (0 if futures else o.transactTime)) * MS
    avg = None
    if futures:
        avg = _price(o.avgPrice)
    # a Spot cancel answer's clientOrderId is the cancel request's own id; the order is origClientOrderId
    coid = o.origClientOrderId if not futures and o.origClientOrderId else o.clientOrderId  # type: ignore[union-attr]
    return Order(
        account=account,
        symbol=symbol,
        client_order_id=coid,
        venue_order_id=str(o.orderId),
        side=codes.SIDE[o.side] if o.side else Side.BUY,
        # a triggered conditional order's type is what it became (MARKET, LIMIT); origType what was placed
        order_type=table.get((o.origType or o.type) if futures else o.type, table["LIMIT"]),  # type: ignore[union-attr]
        qty=o.origQty,
        price=_price(o.price),
        stop_price=_price(o.stopPrice),
        time_in_force=codes.TIF.get(o.timeInForce),
        reduce_only=o.reduceOnly if futures else False,  # type: ignore[union-attr]
        position_side=codes.POSITION_SIDE[o.positionSide] if futures else codes.POSITION_SIDE["BOTH"],  # type: ignore[union-attr]
        status=codes.STATUS[o.status] if o.status else OrderStatus.NEW,
        filled_qty=o.executedQty,
        avg_price=avg,
        created_ns=(o.time or (0 if futures else o.transactTime)) * MS,
        updated_ns=t,
        strategy=strategy,
    )


ALGO_STATUS = {
    "NEW": OrderStatus.NEW,
    "TRIGGERING": OrderStatus.NEW,
    "TRIGGERED": OrderStatus.NEW,  # its order is in the matching engine: query that for fills
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}


def algo_triggered(o: wr.AlgoOrder) -> bool:
    """The conditional order has become an order of the matching engine (which tells its true state)."""
    return o.algoStatus in ("TRIGGERED", "FINISHED") or (o.algoStatus == "TRIGGERING" and bool(o.actualOrderId))


def parse_algo_to_order(o: wr.AlgoOrder, account: str, symbols: SymbolTable, strategy: str = "") -> Order:
    """An Algo Order API body -> ``Order`` (named by its ``clientAlgoId``; the status of an order still waiting
    for its trigger, or closed before it). A triggered one's fills are its matching-engine order's."""
    status = ALGO_STATUS.get(o.algoStatus)
    if status is None:
        raise ValueError(f"algo order {o.clientAlgoId}: unknown algoStatus {o.algoStatus!r}")
    trailing = o.orderType == "TRAILING_STOP_MARKET"
    return Order(
        account=account,
        symbol=symbols.unified(o.symbol),
        client_order_id=o.clientAlgoId,
        venue_order_id=str(o.algoId),
        side=codes.SIDE[o.side],
        order_type=codes.FUTURES_TYPE[o.orderType],
        qty=o.quantity,
        price=_price(o.price),
        stop_price=_price(o.activatePrice or "0") if trailing else _price(o.triggerPrice),
        time_in_force=codes.TIF.get(o.timeInForce),
        reduce_only=o.reduceOnly,
        position_side=codes.POSITION_SIDE[o.positionSide],
        status=status,
        filled_qty="0",
        created_ns=o.createTime * MS,
        updated_ns=(o.updateTime or o.createTime) * MS,
        strategy=strategy,
    )


def parse_algo_update(ev: wu.AlgoUpdate, account: str, symbols: SymbolTable, recv_ns: int = 0) -> OrderEvent | None:
    """USD-M ``ALGO_UPDATE`` -> the ``OrderEvent`` of a conditional order that is waiting or closed before its
    trigger (NEW, CANCELED, EXPIRED, REJECTED); None once triggered: its order's ``ORDER_TRADE_UPDATE``s
    (same client order id) carry it from there."""
    o = ev.o
    status = ALGO_STATUS.get(o.X)
    if status is None or o.X in ("TRIGGERING", "TRIGGERED"):
        return None
    kind = {
        OrderStatus.NEW: OrderEventKind.ACCEPTED,
        OrderStatus.CANCELED: OrderEventKind.CANCELED,
        OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
        OrderStatus.REJECTED: OrderEventKind.REJECTED,
    }[status]
    qp = symbols.qty_places[o.s]
    pp = symbols.price_places[o.s]
    return OrderEvent(
        account=account,
        symbol=symbols.unified(o.s),
        client_order_id=o.caid,
        venue_order_id=str(o.aid),
        kind=kind,
        status=status,
        side=codes.SIDE[o.S],
        order_type=codes.FUTURES_TYPE.get(o.o),
        qty=check_decimal(o.q, qp, "ALGO_UPDATE o.q (quantity)"),
        price=_price(check_decimal(o.p, pp, "ALGO_UPDATE o.p (price)")),
        filled_qty="0",
        reason=o.rm,
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )


def parse_to_fill(row: wr.SpotTrade | wr.FuturesTrade, account: str, symbols: SymbolTable, coid: str = "") -> Fill:
    """A myTrades / userTrades row -> ``Fill`` (``coid``: the order's client order id, which REST omits)."""
    futures = isinstance(row, wr.FuturesTrade)
    if futures:
        side = codes.SIDE[row.side]  # type: ignore[union-attr]
        maker = row.maker  # type: ignore[union-attr]
    else:
        side = Side.BUY if row.isBuyer else Side.SELL  # type: ignore[union-attr]
        maker = row.isMaker  # type: ignore[union-attr]
    return Fill(
        account=account,
        symbol=symbols.unified(row.symbol),
        client_order_id=coid or str(row.orderId),
        venue_order_id=str(row.orderId),
        trade_id=str(row.id),
        side=side,
        price=row.price,
        qty=row.qty,
        commission=row.commission,
        commission_asset=row.commissionAsset,
        liquidity=_MAKER if maker else _TAKER,
        position_side=codes.POSITION_SIDE[row.positionSide] if futures else codes.POSITION_SIDE["BOTH"],  # type: ignore[union-attr]
        realized_pnl=row.realizedPnl if futures else None,  # type: ignore[union-attr]
        event_ns=row.time * MS,
    )


def parse_to_balances(body: wr.SpotAccount | list[wr.FuturesBalance], account: str, now_ns: int) -> list[Balance]:
    """``GET /api/v3/account`` balances, or ``GET /fapi/v3/balance`` rows: on USD-M ``free`` is the available
    balance and ``locked`` the wallet balance minus it (the margin in use), as the model defines them."""
    if isinstance(body, wr.SpotAccount):
        return [
            Balance(account=account, market=Market.SPOT, asset=b.asset, free=b.free, locked=b.locked, event_ns=now_ns)
            for b in body.balances
        ]
    out = []
    for b in body:
        locked = Decimal(b.balance) - Decimal(b.availableBalance)
        out.append(
            Balance(
                account=account,
                market=Market.USDM,
                asset=b.asset,
                free=b.availableBalance,
                locked=format(locked, "f") if locked else "0",
                event_ns=now_ns,
            )
        )
    return out


def parse_to_position(row: wr.FuturesPosition, account: str, symbols: SymbolTable) -> Position:
    """A positionRisk row -> ``Position``."""
    lev = row.leverage
    return Position(
        account=account,
        symbol=symbols.unified(row.symbol),
        position_side=codes.POSITION_SIDE[row.positionSide],
        qty=row.positionAmt,
        entry_price=row.entryPrice,
        unrealized_pnl=row.unRealizedProfit,
        leverage=int(lev) if lev.isdigit() else 0,
        margin_type=MarginType(row.marginType.lower()),
        liquidation_price=_price(row.liquidationPrice),
        event_ns=row.updateTime * MS,
    )


# ---- market data ---------------------------------------------------------------------------------------------
def parse_to_trade(ev: wm.Trade | wm.AggTrade, exchange: str, symbols: SymbolTable, recv_ns: int = 0) -> Trade:
    """``@trade`` or ``@aggTrade`` -> ``Trade`` (the taker sold when the buyer was the maker)."""
    s = ev.s
    tid = ev.t if isinstance(ev, wm.Trade) else ev.a
    return Trade(
        exchange=exchange,
        symbol=symbols.unified(s),
        trade_id=str(tid),
        price=check_decimal(ev.p, symbols.price_places[s], "trade p (price)"),
        qty=check_decimal(ev.q, symbols.qty_places[s], "trade q (quantity)"),
        taker_side=Side.SELL if ev.m else Side.BUY,
        event_ns=ev.T * MS,
        recv_ns=recv_ns,
    )


def parse_to_quote(ev: wm.BookTicker, exchange: str, symbols: SymbolTable, recv_ns: int = 0) -> Quote:
    """``@bookTicker`` -> ``Quote``."""
    s = ev.s
    pp, qp = symbols.price_places[s], symbols.qty_places[s]
    return Quote(
        exchange=exchange,
        symbol=symbols.unified(s),
        bid_price=check_decimal(ev.b, pp, "bookTicker b"),
        bid_qty=check_decimal(ev.B, qp, "bookTicker B"),
        ask_price=check_decimal(ev.a, pp, "bookTicker a"),
        ask_qty=check_decimal(ev.A, qp, "bookTicker A"),
        update_id=ev.u,
        event_ns=(ev.E or ev.T) * MS,
        recv_ns=recv_ns,
    )


def _levels(rows: list[tuple[str, str]], pp: int, qp: int, what: str) -> tuple[tuple[str, str], ...]:
    return tuple((check_decimal(p, pp, what), check_decimal(q, qp, what)) for p, q in rows)


def parse_to_depth_diff(ev: wm.DepthUpdate, exchange: str, symbols: SymbolTable, recv_ns: int = 0) -> DepthDiff:
    """``@depth`` diff -> ``DepthDiff`` (U/u, and pu on USD-M, as sequence numbers)."""
    s = ev.s
    pp, qp = symbols.price_places[s], symbols.qty_places[s]
    return DepthDiff(
        exchange=exchange,
        symbol=symbols.unified(s),
        first_update_id=ev.U,
        last_update_id=ev.u,
        prev_update_id=ev.pu if ev.pu >= 0 else None,
        bids=_levels(ev.b, pp, qp, "depthUpdate b"),
        asks=_levels(ev.a, pp, qp, "depthUpdate a"),
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )


def parse_to_book_snapshot(
    snap: wm.DepthSnapshot, exchange: str, symbol: str, symbols: SymbolTable, now_ns: int
) -> BookSnapshot:
    """A REST depth snapshot -> ``BookSnapshot`` (``symbol`` is the unified one the caller asked for)."""
    venue = symbols.venue(symbol)
    pp, qp = symbols.price_places[venue], symbols.qty_places[venue]
    return BookSnapshot(
        exchange=exchange,
        symbol=symbol,
        last_update_id=snap.lastUpdateId,
        bids=_levels(snap.bids, pp, qp, "depth snapshot bids"),
        asks=_levels(snap.asks, pp, qp, "depth snapshot asks"),
        event_ns=(snap.E or 0) * MS or now_ns,
    )


def parse_to_kline(ev: wm.Kline, exchange: str, symbols: SymbolTable, recv_ns: int = 0) -> Kline:
    """``@kline_<interval>`` -> ``Kline``."""
    k = ev.k
    return Kline(
        exchange=exchange,
        symbol=symbols.unified(ev.s),
        interval=k.i,
        open_ns=k.t * MS,
        close_ns=k.T * MS,
        open=k.o,
        high=k.h,
        low=k.l,
        close=k.c,
        volume=k.v,
        quote_volume=k.q,
        trades=k.n,
        closed=k.x,
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )


def parse_to_mark_price(ev: wm.MarkPriceUpdate, exchange: str, symbols: SymbolTable, recv_ns: int = 0) -> MarkPrice:
    """USD-M ``@markPrice`` -> ``MarkPrice`` with the funding rate and the next funding time."""
    return MarkPrice(
        exchange=exchange,
        symbol=symbols.unified(ev.s),
        mark_price=ev.p,
        index_price=_price(ev.i),
        funding_rate=ev.r,
        next_funding_ns=ev.T * MS,
        event_ns=ev.E * MS,
        recv_ns=recv_ns,
    )
