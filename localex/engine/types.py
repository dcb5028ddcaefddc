"""Engine value types: order requests, orders, fills, accounts and positions (its events: ``event_types``).

All numbers are ints: prices in ticks, quantities in lots, amounts in 1e-8 units (see ``markets``).
String constants use Binance's spelling so the server can put them on the wire unchanged.
Time is int nanoseconds since the epoch (UTC); Binance wire fields want ms (``ns // 1_000_000``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .markets import SymbolSpec

# ---- Binance enums (wire spelling) --------------------------------------------------------------
BUY: Final = "BUY"
SELL: Final = "SELL"
SIDES: Final = (BUY, SELL)
LIMIT: Final = "LIMIT"
MARKET: Final = "MARKET"
LIMIT_MAKER: Final = "LIMIT_MAKER"
STOP_LOSS: Final = "STOP_LOSS"
STOP_LOSS_LIMIT: Final = "STOP_LOSS_LIMIT"
TAKE_PROFIT: Final = "TAKE_PROFIT"
TAKE_PROFIT_LIMIT: Final = "TAKE_PROFIT_LIMIT"
STOP: Final = "STOP"
STOP_MARKET: Final = "STOP_MARKET"
TAKE_PROFIT_MARKET: Final = "TAKE_PROFIT_MARKET"
TRAILING_STOP_MARKET: Final = "TRAILING_STOP_MARKET"
GTC: Final = "GTC"
IOC: Final = "IOC"
FOK: Final = "FOK"
GTX: Final = "GTX"
# order status
NEW: Final = "NEW"
PARTIALLY_FILLED: Final = "PARTIALLY_FILLED"
FILLED: Final = "FILLED"
CANCELED: Final = "CANCELED"
EXPIRED: Final = "EXPIRED"
EXPIRED_IN_MATCH: Final = "EXPIRED_IN_MATCH"
REJECTED: Final = "REJECTED"
OPEN_STATUSES: Final = frozenset((NEW, PARTIALLY_FILLED))
# execution types
X_NEW: Final = "NEW"
X_TRADE: Final = "TRADE"
X_CANCELED: Final = "CANCELED"
X_EXPIRED: Final = "EXPIRED"
X_TRADE_PREVENTION: Final = "TRADE_PREVENTION"
X_AMENDMENT: Final = "AMENDMENT"
# self-trade prevention modes
STP_NONE: Final = "NONE"
STP_EXPIRE_TAKER: Final = "EXPIRE_TAKER"
STP_EXPIRE_MAKER: Final = "EXPIRE_MAKER"
STP_EXPIRE_BOTH: Final = "EXPIRE_BOTH"
# futures
BOTH: Final = "BOTH"
LONG: Final = "LONG"
SHORT: Final = "SHORT"
ISOLATED: Final = "ISOLATED"
CROSSED: Final = "CROSSED"
CONTRACT_PRICE: Final = "CONTRACT_PRICE"
MARK_PRICE: Final = "MARK_PRICE"
# wallets and permissions
WALLET_SPOT: Final = "SPOT"
WALLET_FUTURES: Final = "FUTURES"
PERM_SPOT: Final = "SPOT"
PERM_FUTURES: Final = "FUTURES"
PERM_TRANSFER: Final = "TRANSFER"
PERM_WITHDRAW: Final = "WITHDRAW"
ALL_PERMISSIONS: Final = frozenset((PERM_SPOT, PERM_FUTURES, PERM_TRANSFER, PERM_WITHDRAW))
STOP_TYPES_SPOT: Final = frozenset((STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT))
STOP_TYPES_USDM: Final = frozenset((STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET))
# USD-M income types the engine produces (GET /fapi/v1/income) and the ACCOUNT_UPDATE reason of funding
INCOME_TRANSFER: Final = "TRANSFER"
INCOME_REALIZED_PNL: Final = "REALIZED_PNL"
INCOME_FUNDING_FEE: Final = "FUNDING_FEE"
INCOME_COMMISSION: Final = "COMMISSION"


@dataclass(slots=True, init=False)
class OrderRequest:
    """A new order as the client sent it (decimal strings, Binance parameter meaning).

    ``market`` is "spot" or "usdm". Unused fields stay None. ``quote_order_qty`` is spot MARKET by quote
    amount. ``stop_price`` for STOP_LOSS*/TAKE_PROFIT*/STOP*; ``callback_rate`` (percent, "0.1".."5")
    and ``activation_price`` for TRAILING_STOP_MARKET. ``time_in_force`` GTX = post-only (futures).
    ``working_type`` CONTRACT_PRICE (default) or MARK_PRICE. ``position_side`` BOTH/LONG/SHORT.
    """

    market: str
    symbol: str
    side: str
    type: str
    quantity: str | None = None
    price: str | None = None
    quote_order_qty: str | None = None
    time_in_force: str | None = None
    stop_price: str | None = None
    client_order_id: str | None = None
    reduce_only: bool = False
    close_position: bool = False
    position_side: str = BOTH
    callback_rate: str | None = None
    activation_price: str | None = None
    working_type: str = CONTRACT_PRICE
    self_trade_prevention_mode: str | None = None
    trailing_delta: str | None = None

    def __init__(
        self,
        market: str,
        symbol: str,
        side: str,
        type: str,
        quantity: str | None = None,
        price: str | None = None,
        quote_order_qty: str | None = None,
        time_in_force: str | None = None,
        stop_price: str | None = None,
        client_order_id: str | None = None,
        reduce_only: bool = False,
        close_position: bool = False,
        position_side: str = BOTH,
        callback_rate: str | None = None,
        activation_price: str | None = None,
        working_type: str = CONTRACT_PRICE,
        self_trade_prevention_mode: str | None = None,
        trailing_delta: str | None = None,
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.side = side
        self.type = type
        self.quantity = quantity
        self.price = price
        self.quote_order_qty = quote_order_qty
        self.time_in_force = time_in_force
        self.stop_price = stop_price
        self.client_order_id = client_order_id
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.position_side = position_side
        self.callback_rate = callback_rate
        self.activation_price = activation_price
        self.working_type = working_type
        self.self_trade_prevention_mode = self_trade_prevention_mode
        self.trailing_delta = trailing_delta


@dataclass(slots=True, eq=False, init=False)
class Order:
    """An order as the engine keeps it (live object: copy it with ``snapshot()`` to keep a state).

    Binance field mapping: orderId=order_id, clientOrderId=client_order_id, origQty=orig_qty (lots),
    executedQty=executed_qty (lots), cummulativeQuoteQty / cumQuote = cum_quote (1e-8 units),
    price (ticks, 0 for market orders), stopPrice=stop_price (ticks, 0 if none), time=time_ns,
    updateTime=update_ns, workingTime=working_ns (-1 while a stop order waits for its trigger),
    isWorking=is_working, origQuoteOrderQty=quote_order_qty (1e-8 units), avgPrice via
    ``spec.fmt_avg_price(cum_quote, executed_qty)``. ``type`` is the current type; ``orig_type`` the type
    as placed (futures ``origType``). ``account_id`` owns it.
    """

    account_id: str
    market: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: int
    orig_qty: int
    stop_price: int = 0
    executed_qty: int = 0
    cum_quote: int = 0
    status: str = NEW
    time_ns: int = 0
    update_ns: int = 0
    working_ns: int = 0
    is_working: bool = True
    quote_order_qty: int = 0
    orig_type: str = ""
    reduce_only: bool = False
    close_position: bool = False
    position_side: str = BOTH
    working_type: str = CONTRACT_PRICE
    callback_rate: str = ""
    activation_price: int = 0
    trail_extreme: int = 0  # trailing stop: best price seen since activation (ticks), 0 = not active
    self_trade_prevention_mode: str = STP_EXPIRE_TAKER
    prevented_qty: int = 0
    locked: int = 0  # spot: amount still locked for this order (1e-8 units of the paid asset)
    margin: int = 0  # futures: initial margin reserved by the open part of this order
    realized_pnl: int = 0  # futures: realised PnL of this order's fills
    commission: int = 0
    spec: SymbolSpec | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        account_id: str,
        market: str,
        symbol: str,
        order_id: int,
        client_order_id: str,
        side: str,
        type: str,
        time_in_force: str,
        price: int,
        orig_qty: int,
        stop_price: int = 0,
        executed_qty: int = 0,
        cum_quote: int = 0,
        status: str = NEW,
        time_ns: int = 0,
        update_ns: int = 0,
        working_ns: int = 0,
        is_working: bool = True,
        quote_order_qty: int = 0,
        orig_type: str = "",
        reduce_only: bool = False,
        close_position: bool = False,
        position_side: str = BOTH,
        working_type: str = CONTRACT_PRICE,
        callback_rate: str = "",
        activation_price: int = 0,
        trail_extreme: int = 0,
        self_trade_prevention_mode: str = STP_EXPIRE_TAKER,
        prevented_qty: int = 0,
        locked: int = 0,
        margin: int = 0,
        realized_pnl: int = 0,
        commission: int = 0,
        spec: SymbolSpec | None = None,
    ) -> None:
        self.account_id = account_id
        self.market = market
        self.symbol = symbol
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.side = side
        self.type = type
        self.time_in_force = time_in_force
        self.price = price
        self.orig_qty = orig_qty
        self.stop_price = stop_price
        self.executed_qty = executed_qty
        self.cum_quote = cum_quote
        self.status = status
        self.time_ns = time_ns
        self.update_ns = update_ns
        self.working_ns = working_ns
        self.is_working = is_working
        self.quote_order_qty = quote_order_qty
        self.orig_type = orig_type
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.position_side = position_side
        self.working_type = working_type
        self.callback_rate = callback_rate
        self.activation_price = activation_price
        self.trail_extreme = trail_extreme
        self.self_trade_prevention_mode = self_trade_prevention_mode
        self.prevented_qty = prevented_qty
        self.locked = locked
        self.margin = margin
        self.realized_pnl = realized_pnl
        self.commission = commission
        self.spec = spec

    @property
    def remaining(self) -> int:
        """Lots not yet executed."""
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return self.status in OPEN_STATUSES

    def snapshot(self) -> Order:
        """A shallow copy frozen at this moment (events carry snapshots)."""
        return Order(
            self.account_id,
            self.market,
            self.symbol,
            self.order_id,
            self.client_order_id,
            self.side,
            self.type,
            self.time_in_force,
            self.price,
            self.orig_qty,
            self.stop_price,
            self.executed_qty,
            self.cum_quote,
            self.status,
            self.time_ns,
            self.update_ns,
            self.working_ns,
            self.is_working,
            self.quote_order_qty,
            self.orig_type,
            self.reduce_only,
            self.close_position,
            self.position_side,
            self.working_type,
            self.callback_rate,
            self.activation_price,
            self.trail_extreme,
            self.self_trade_prevention_mode,
            self.prevented_qty,
            self.locked,
            self.margin,
            self.realized_pnl,
            self.commission,
            self.spec,
        )


def new_limit_order(
    account_id: str,
    market: str,
    symbol: str,
    client_order_id: str,
    side: str,
    type: str,
    time_in_force: str,
    price: int,
    orig_qty: int,
    now: int,
    position_side: str,
    working_type: str,
    callback_rate: str,
    stp: str,
    spec: SymbolSpec,
) -> Order:
    """An ``Order`` as ``Matcher.build`` makes a plain (non-stop, quantity-based) one, every other field at
    its default (the fast path of spot LIMIT orders)."""
    return Order(
        account_id,
        market,
        symbol,
        0,
        client_order_id,
        side,
        type,
        time_in_force,
        price,
        orig_qty,
        time_ns=now,
        update_ns=now,
        working_ns=now,
        orig_type=type,
        position_side=position_side,
        working_type=working_type,
        callback_rate=callback_rate,
        self_trade_prevention_mode=stp,
        spec=spec,
    )


@dataclass(slots=True, init=False)
class Fill:
    """One side of one trade, as the account that owns ``order_id`` sees it.

    Binance mapping (myTrades / executionReport / ORDER_TRADE_UPDATE): id/t=trade_id, orderId=order_id,
    price=price (ticks), qty=qty (lots), quoteQty=quote_qty (1e-8), commission (1e-8 units of
    commission_asset), isBuyer=side == BUY, isMaker=is_maker, time=time_ns, realizedPnl (futures, 1e-8).
    """

    account_id: str
    market: str
    symbol: str
    trade_id: int
    order_id: int
    client_order_id: str
    side: str
    price: int
    qty: int
    quote_qty: int
    commission: int
    commission_asset: str
    is_maker: bool
    time_ns: int
    realized_pnl: int = 0
    position_side: str = BOTH

    def __init__(
        self,
        account_id: str,
        market: str,
        symbol: str,
        trade_id: int,
        order_id: int,
        client_order_id: str,
        side: str,
        price: int,
        qty: int,
        quote_qty: int,
        commission: int,
        commission_asset: str,
        is_maker: bool,
        time_ns: int,
        realized_pnl: int = 0,
        position_side: str = BOTH,
    ) -> None:
        self.account_id = account_id
        self.market = market
        self.symbol = symbol
        self.trade_id = trade_id
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.side = side
        self.price = price
        self.qty = qty
        self.quote_qty = quote_qty
        self.commission = commission
        self.commission_asset = commission_asset
        self.is_maker = is_maker
        self.time_ns = time_ns
        self.realized_pnl = realized_pnl
        self.position_side = position_side


@dataclass(slots=True, init=False)
class OrderResult:
    """What placing an order returns: the order (snapshot after matching) and the fills it took."""

    order: Order
    fills: list[Fill]

    def __init__(self, order: Order, fills: list[Fill]) -> None:
        self.order = order
        self.fills = fills


@dataclass(slots=True, init=False)
class ApiKey:
    """An API key: ``api_key`` (public id, X-MBX-APIKEY), ``secret`` (HMAC-SHA256 key), permissions."""

    api_key: str
    secret: str
    account_id: str
    permissions: frozenset[str]
    label: str = ""
    created_ns: int = 0
    revoked: bool = False

    def __init__(
        self,
        api_key: str,
        secret: str,
        account_id: str,
        permissions: frozenset[str],
        label: str = "",
        created_ns: int = 0,
        revoked: bool = False,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.account_id = account_id
        self.permissions = permissions
        self.label = label
        self.created_ns = created_ns
        self.revoked = revoked


@dataclass(slots=True, init=False)
class Position:
    """A futures position of one account, symbol and position side (BOTH in one-way mode).

    ``qty`` signed lots (long > 0). ``cost`` signed 1e-8 quote units, sum of price*qty of the open part,
    so entryPrice = cost / qty and unrealised PnL = mark*qty - cost. ``isolated_margin`` is the margin
    allocated to an ISOLATED position (isolatedWallet, excluding unrealised PnL).
    """

    account_id: str
    symbol: str
    position_side: str = BOTH
    qty: int = 0
    cost: int = 0
    isolated_margin: int = 0
    update_ns: int = 0

    def __init__(
        self,
        account_id: str,
        symbol: str,
        position_side: str = BOTH,
        qty: int = 0,
        cost: int = 0,
        isolated_margin: int = 0,
        update_ns: int = 0,
    ) -> None:
        self.account_id = account_id
        self.symbol = symbol
        self.position_side = position_side
        self.qty = qty
        self.cost = cost
        self.isolated_margin = isolated_margin
        self.update_ns = update_ns

    def snapshot(self) -> Position:
        """A copy frozen at this moment."""
        return Position(
            self.account_id, self.symbol, self.position_side, self.qty, self.cost, self.isolated_margin, self.update_ns
        )


@dataclass(slots=True, init=False)
class Balance:
    """One asset of one wallet: free and locked, 1e-8 units."""

    asset: str
    free: int = 0
    locked: int = 0

    def __init__(self, asset: str, free: int = 0, locked: int = 0) -> None:
        self.asset = asset
        self.free = free
        self.locked = locked

    @property
    def total(self) -> int:
        """free + locked."""
        return self.free + self.locked


@dataclass(slots=True, init=False)
class Transfer:
    """One executed transfer (universal transfer / futures transfer / admin funding)."""

    tran_id: int
    asset: str
    amount: int
    from_account: str
    to_account: str
    from_wallet: str
    to_wallet: str
    time_ns: int
    type: str  # MAIN_UMFUTURE, UMFUTURE_MAIN, SUB_TO_SUB... (Binance universal-transfer names) or FUND
    status: str = "CONFIRMED"

    def __init__(
        self,
        tran_id: int,
        asset: str,
        amount: int,
        from_account: str,
        to_account: str,
        from_wallet: str,
        to_wallet: str,
        time_ns: int,
        type: str,
        status: str = "CONFIRMED",
    ) -> None:
        self.tran_id = tran_id
        self.asset = asset
        self.amount = amount
        self.from_account = from_account
        self.to_account = to_account
        self.from_wallet = from_wallet
        self.to_wallet = to_wallet
        self.time_ns = time_ns
        self.type = type
        self.status = status


@dataclass(slots=True, init=False)
class Income:
    """One row of the USD-M income history (GET /fapi/v1/income), as one account sees it.

    ``income_type`` is Binance's: FUNDING_FEE, REALIZED_PNL, COMMISSION or TRANSFER. ``amount`` is signed
    (1e-8 units of ``asset``; positive flows into the futures wallet). ``tran_id`` is unique per account
    and income type (Binance's promise); ``trade_id`` is the trade's id for REALIZED_PNL / COMMISSION rows,
    -1 otherwise; ``symbol`` is "" for TRANSFER rows.
    """

    account_id: str
    income_type: str
    symbol: str
    amount: int
    asset: str
    info: str
    time_ns: int
    tran_id: int
    trade_id: int

    def __init__(
        self,
        account_id: str,
        income_type: str,
        symbol: str,
        amount: int,
        asset: str,
        info: str,
        time_ns: int,
        tran_id: int,
        trade_id: int = -1,
    ) -> None:
        self.account_id = account_id
        self.income_type = income_type
        self.symbol = symbol
        self.amount = amount
        self.asset = asset
        self.info = info
        self.time_ns = time_ns
        self.tran_id = tran_id
        self.trade_id = trade_id


@dataclass(slots=True, init=False)
class Kline:
    """One candle. Prices in ticks, volume in lots, quote volume in 1e-8 units, times in ms."""

    open_time_ms: int
    close_time_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0
    trades: int = 0
    taker_buy_volume: int = 0
    taker_buy_quote_volume: int = 0
    first_trade_id: int = -1
    last_trade_id: int = -1

    def __init__(
        self,
        open_time_ms: int,
        close_time_ms: int,
        open: int,
        high: int,
        low: int,
        close: int,
        volume: int = 0,
        quote_volume: int = 0,
        trades: int = 0,
        taker_buy_volume: int = 0,
        taker_buy_quote_volume: int = 0,
        first_trade_id: int = -1,
        last_trade_id: int = -1,
    ) -> None:
        self.open_time_ms = open_time_ms
        self.close_time_ms = close_time_ms
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.quote_volume = quote_volume
        self.trades = trades
        self.taker_buy_volume = taker_buy_volume
        self.taker_buy_quote_volume = taker_buy_quote_volume
        self.first_trade_id = first_trade_id
        self.last_trade_id = last_trade_id
