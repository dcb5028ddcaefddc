"""Engine events: what the engine emits when an order, an account, a transfer or the market changes.

Each is a snapshot of plain values (ints, Binance's spellings; see ``types``), made once per change and
read by the server's fan-out (``localex.server.events``). Time is int nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Balance, Fill, Kline, Order, Position, Transfer


@dataclass(slots=True, init=False)
class OrderEvent:
    """An order changed (executionReport / ORDER_TRADE_UPDATE). ``order`` is a snapshot.

    ``exec_type`` NEW/TRADE/CANCELED/EXPIRED/TRADE_PREVENTION/AMENDMENT; ``fill`` set for TRADE.
    """

    account_id: str
    exec_type: str
    order: Order
    fill: Fill | None
    time_ns: int

    def __init__(self, account_id: str, exec_type: str, order: Order, fill: Fill | None, time_ns: int) -> None:
        self.account_id = account_id
        self.exec_type = exec_type
        self.order = order
        self.fill = fill
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class AccountEvent:
    """Balances and/or positions of one account and wallet changed during one operation.

    Spot: ``outboundAccountPosition`` (balances = full free/locked of each changed asset). Futures:
    ``ACCOUNT_UPDATE`` with reason ORDER / DEPOSIT / WITHDRAW / FUNDING_FEE / MARGIN_TYPE_CHANGE;
    balances = changed assets, positions = changed positions (snapshots), wallet_deltas per asset.
    """

    account_id: str
    wallet: str
    reason: str
    balances: list[Balance]
    positions: list[Position]
    wallet_deltas: dict[str, int]
    time_ns: int

    def __init__(
        self,
        account_id: str,
        wallet: str,
        reason: str,
        balances: list[Balance],
        positions: list[Position],
        wallet_deltas: dict[str, int],
        time_ns: int,
    ) -> None:
        self.account_id = account_id
        self.wallet = wallet
        self.reason = reason
        self.balances = balances
        self.positions = positions
        self.wallet_deltas = wallet_deltas
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class BalanceDeltaEvent:
    """Spot ``balanceUpdate``: a deposit/withdrawal/transfer changed one asset by ``delta``."""

    account_id: str
    wallet: str
    asset: str
    delta: int
    time_ns: int

    def __init__(self, account_id: str, wallet: str, asset: str, delta: int, time_ns: int) -> None:
        self.account_id = account_id
        self.wallet = wallet
        self.asset = asset
        self.delta = delta
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class TradeEvent:
    """A public trade (``trade`` stream). ``buyer_is_maker`` is Binance's ``m``."""

    market: str
    symbol: str
    trade_id: int
    price: int
    qty: int
    buyer_order_id: int
    seller_order_id: int
    buyer_is_maker: bool
    time_ns: int

    def __init__(
        self,
        market: str,
        symbol: str,
        trade_id: int,
        price: int,
        qty: int,
        buyer_order_id: int,
        seller_order_id: int,
        buyer_is_maker: bool,
        time_ns: int,
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.trade_id = trade_id
        self.price = price
        self.qty = qty
        self.buyer_order_id = buyer_order_id
        self.seller_order_id = seller_order_id
        self.buyer_is_maker = buyer_is_maker
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class AggTradeEvent:
    """A public aggregate trade: consecutive fills of one taker at one price (``aggTrade`` stream)."""

    market: str
    symbol: str
    agg_id: int
    price: int
    qty: int
    first_trade_id: int
    last_trade_id: int
    buyer_is_maker: bool
    time_ns: int

    def __init__(
        self,
        market: str,
        symbol: str,
        agg_id: int,
        price: int,
        qty: int,
        first_trade_id: int,
        last_trade_id: int,
        buyer_is_maker: bool,
        time_ns: int,
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.agg_id = agg_id
        self.price = price
        self.qty = qty
        self.first_trade_id = first_trade_id
        self.last_trade_id = last_trade_id
        self.buyer_is_maker = buyer_is_maker
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class DepthEvent:
    """A depth diff: levels whose total changed in one operation, with their new totals (0 = removed).

    ``first_update_id`` = U, ``last_update_id`` = u, ``prev_last_update_id`` = pu (previous event's u).
    Update ids per (market, symbol) only increase; U = previous u + 1, so there is never a gap.
    """

    market: str
    symbol: str
    first_update_id: int
    last_update_id: int
    prev_last_update_id: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    time_ns: int

    def __init__(
        self,
        market: str,
        symbol: str,
        first_update_id: int,
        last_update_id: int,
        prev_last_update_id: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        time_ns: int,
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.first_update_id = first_update_id
        self.last_update_id = last_update_id
        self.prev_last_update_id = prev_last_update_id
        self.bids = bids
        self.asks = asks
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class BookTickerEvent:
    """Best bid/ask changed (``bookTicker``). Price 0 and qty 0 when a side is empty."""

    market: str
    symbol: str
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int
    time_ns: int

    def __init__(
        self,
        market: str,
        symbol: str,
        update_id: int,
        bid_price: int,
        bid_qty: int,
        ask_price: int,
        ask_qty: int,
        time_ns: int,
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.update_id = update_id
        self.bid_price = bid_price
        self.bid_qty = bid_qty
        self.ask_price = ask_price
        self.ask_qty = ask_qty
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class KlineEvent:
    """A candle changed (``kline_<interval>``). ``closed`` once its interval is over."""

    market: str
    symbol: str
    interval: str
    kline: Kline
    closed: bool
    time_ns: int

    def __init__(self, market: str, symbol: str, interval: str, kline: Kline, closed: bool, time_ns: int) -> None:
        self.market = market
        self.symbol = symbol
        self.interval = interval
        self.kline = kline
        self.closed = closed
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class MarkPriceEvent:
    """Futures mark price update (``markPrice`` stream): mark/index in ticks, funding rate as string."""

    symbol: str
    mark_price: int
    index_price: int
    funding_rate: str
    next_funding_ms: int
    time_ns: int

    def __init__(
        self, symbol: str, mark_price: int, index_price: int, funding_rate: str, next_funding_ms: int, time_ns: int
    ) -> None:
        self.symbol = symbol
        self.mark_price = mark_price
        self.index_price = index_price
        self.funding_rate = funding_rate
        self.next_funding_ms = next_funding_ms
        self.time_ns = time_ns


@dataclass(slots=True, init=False)
class TransferEvent:
    """A transfer happened (server may publish it; history via ``Exchange.transfers``)."""

    transfer: Transfer

    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer
