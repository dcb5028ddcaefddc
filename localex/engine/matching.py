"""Order validation, placement, matching, settlement and stop triggers for all books.

``Matcher`` owns the books, every order and fill, and the pending stop orders. Matching is
price-time priority; the taker trades at the maker's price. Spot settlement moves locked funds and
charges the commission in the received asset; futures settlement updates positions, realises PnL
into the USDT futures wallet and charges the commission in USDT. Every fee goes to the fee account.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from . import errors as E
from .accounts import Account, Ledger
from .book import Book, BookSide
from .events import Emitter
from .futures import apply_fill, initial_margin
from .marketdata import MarketData
from .markets import SPOT, SymbolSpec, parse_amount, parse_decimal
from .types import (
    BOTH,
    BUY,
    CANCELED,
    EXPIRED,
    EXPIRED_IN_MATCH,
    FILLED,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    LONG,
    MARK_PRICE,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    SHORT,
    SIDES,
    STOP,
    STOP_LOSS,
    STOP_LOSS_LIMIT,
    STOP_MARKET,
    STOP_TYPES_SPOT,
    STOP_TYPES_USDM,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    WALLET_FUTURES,
    WALLET_SPOT,
    X_CANCELED,
    X_EXPIRED,
    X_NEW,
    X_TRADE,
    X_TRADE_PREVENTION,
    AggTradeEvent,
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderRequest,
    TradeEvent,
    new_limit_order,
)

PPM: Final = 1_000_000
# what a triggered stop becomes
TRIGGERED_TYPE: Final = {
    STOP_LOSS: MARKET,
    TAKE_PROFIT: MARKET,
    STOP_LOSS_LIMIT: LIMIT,
    TAKE_PROFIT_LIMIT: LIMIT,
    STOP: LIMIT,
    STOP_MARKET: MARKET,
    TAKE_PROFIT_MARKET: MARKET,
    TRAILING_STOP_MARKET: MARKET,
}
STOP_LIKE: Final = frozenset((STOP_LOSS, STOP_LOSS_LIMIT, STOP, STOP_MARKET))  # buy above / sell below
TP_LIKE: Final = frozenset((TAKE_PROFIT, TAKE_PROFIT_LIMIT, TAKE_PROFIT_MARKET))  # buy below / sell above
STP_MODES: Final = frozenset((STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH))
MAX_TRIGGER_ROUNDS: Final = 1000
MARKET_LIKE: Final = frozenset((MARKET, STOP_LOSS, TAKE_PROFIT, STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET))
MIN_CALLBACK: Final = Decimal("0.1")
MAX_CALLBACK: Final = Decimal("10")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates in parts per million: spot 0.1%/0.1%, futures maker 0.02% / taker 0.05%."""

    spot_maker_ppm: int = 1000
    spot_taker_ppm: int = 1000
    usdm_maker_ppm: int = 200
    usdm_taker_ppm: int = 500


def fee_of(amount: int, ppm: int) -> int:
    """Commission on ``amount`` (1e-8 units), rounded half-up."""
    return (amount * ppm + PPM // 2) // PPM


class Matcher:
    """All books, orders, fills and stop orders; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        specs: dict[tuple[str, str], SymbolSpec],
        clock: Callable[[], int],
        emitter: Emitter,
        fees: FeeSchedule,
        fee_account: Account,
    ) -> None:
        self.ledger = ledger
        self.specs = specs
        self.clock = clock
        self.em = emitter
        self.fees = fees
        self.fee_account = fee_account
        self.books: dict[tuple[str, str], Book] = {k: Book() for k in specs}
        self.md: dict[tuple[str, str], MarketData] = {
            k: MarketData(k[0], k[1], s.notional_unit) for k, s in specs.items()
        }
        self.orders: dict[tuple[str, str], dict[int, Order]] = {k: {} for k in specs}
        self.next_order_id: dict[tuple[str, str], int] = dict.fromkeys(specs, 1)
        self.stops: dict[tuple[str, str], list[Order]] = {k: [] for k in specs}
        self.fills: dict[tuple[str, str, str], list[Fill]] = {}
        self.mark: dict[str, int] = {}
        self.dirty: set[tuple[str, str]] = set()
        self._cid_counter = 0
        # a quote-quantity taker's latest TRADE event, held until the next trade or the end of its matching:
        # only then is it known whether that trade filled it (Binance's last TRADE says FILLED; no extra event)
        self._held: OrderEvent | None = None

    # ================================================================================ validation
    def spec(self, market: str, symbol: str) -> SymbolSpec:
        """The spec or -1121."""
        s = self.specs.get((market, symbol))
        if s is None:
            raise E.invalid_symbol()
        return s

    def build(self, acc: Account, req: OrderRequest) -> Order:
        """Validate ``req`` fully and return the (not yet placed) order. Raises ExchangeError."""
        if req.type == LIMIT:
            spec = self.specs.get((req.market, req.symbol))
            if spec is not None and not spec.is_futures:
                order = self._build_spot_limit(acc, req, spec)
                if order is not None:
                    return order
        spec = self.spec(req.market, req.symbol)
        if req.side not in SIDES:
            raise E.ExchangeError(-1117, "Invalid side.")
        if req.type not in spec.order_types:
            raise E.ExchangeError(-1116, "Invalid orderType.")
        price, tif = self._parse_price_tif(spec, req)
        stop, act = self._parse_stop(spec, req)
        fut = spec.is_futures
        close_position = bool(req.close_position) and fut and req.type in (STOP_MARKET, TAKE_PROFIT_MARKET)
        qty, quote_qty = self._parse_quantity(spec, req, close_position)
        stp = req.self_trade_prevention_mode or STP_EXPIRE_TAKER
        if stp not in STP_MODES:
            raise E.bad_param("selfTradePreventionMode", stp)
        pside, reduce_only = self._position_side(acc, req, fut)
        cid = self._client_id(acc, req)
        now = self.clock()
        order = Order(
            acc.account_id,
            req.market,
            req.symbol,
            0,
            cid,
            req.side,
            req.type,
            tif,
            price,
            qty,
            stop_price=stop,
            time_ns=now,
            update_ns=now,
            working_ns=now,
            quote_order_qty=quote_qty,
            orig_type=req.type,
            reduce_only=reduce_only,
            close_position=close_position,
            position_side=pside,
            working_type=req.working_type or "CONTRACT_PRICE",
            callback_rate=str(req.callback_rate or ""),
            activation_price=act,
            self_trade_prevention_mode=stp,
            spec=spec,
        )
        key = (req.market, req.symbol)
        if fut and order.type == LIMIT:
            self.check_percent_price(spec, price)
        self._check_notional(spec, order, key)
        if fut and (reduce_only or close_position):
            self._check_reduce_only(acc, order)
        if order.type in TRIGGERED_TYPE:
            self._check_trigger_at_placement(order, key)
        return order

    def _build_spot_limit(self, acc: Account, req: OrderRequest, spec: SymbolSpec) -> Order | None:
        """``build`` for the common spot LIMIT order whose price and quantity strings were seen before.

        Returns None, having changed nothing, whenever anything is unusual (unknown strings, a missing
        or bad parameter): the general path then does the work and raises the right error. Otherwise
        the same checks in the same order, the same clock reads, the same order.
        """
        side = req.side
        if (side != BUY and side != SELL) or LIMIT not in spec.order_types:
            return None
        p = req.price
        price = spec.price_cache.get(p) if p.__class__ is str else None  # type: ignore[attr-defined]
        tif = req.time_in_force
        if price is None or (tif != GTC and tif != IOC and tif != FOK):
            return None
        if req.quote_order_qty is not None and req.quote_order_qty != "":
            return None
        q = req.quantity
        qty = spec.qty_cache.get(q) if q.__class__ is str else None  # type: ignore[attr-defined]
        stp = req.self_trade_prevention_mode or STP_EXPIRE_TAKER
        if qty is None or stp not in STP_MODES:
            return None
        if req.client_order_id:
            cid = self._client_id(acc, req)
        else:
            self._cid_counter += 1
            cid = "x-" + str(self._cid_counter).zfill(22)
        order: Order = new_limit_order(
            acc.account_id,
            req.market,
            req.symbol,
            cid,
            side,
            LIMIT,
            tif,
            price,
            qty,
            self.clock(),
            req.position_side or BOTH,
            req.working_type or "CONTRACT_PRICE",
            str(req.callback_rate or ""),
            stp,
            spec,
        )
        value = price * qty * spec.notional_unit
        if value < spec.min_notional_units or (spec.max_notional_units and value > spec.max_notional_units):
            raise E.filter_failure("NOTIONAL")
        return order

    def _next_client_id(self) -> str:
        self._cid_counter += 1
        return "x-" + str(self._cid_counter).zfill(22)

    @staticmethod
    def _parse_price_tif(spec: SymbolSpec, req: OrderRequest) -> tuple[int, str]:
        """(price ticks, timeInForce) for the order type; 0 and "" / GTC when the type has no price."""
        fut = spec.is_futures
        otype = req.type
        needs_price = otype in (LIMIT, LIMIT_MAKER, STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT) or (
            fut and otype in (STOP, TAKE_PROFIT)
        )
        if not needs_price:
            if req.price not in (None, "") and not fut:
                raise E.ExchangeError(-1106, "Parameter 'price' sent when not required.")
            return 0, GTC if fut else ""
        if req.price is None or req.price == "":
            raise E.mandatory("price")
        price = spec.parse_price(req.price)
        tif = req.time_in_force
        if otype == LIMIT_MAKER:
            return price, GTC
        if not tif:
            if not fut:
                raise E.mandatory("timeInForce")
            tif = GTC
        if tif not in ((GTC, IOC, FOK, GTX) if fut else (GTC, IOC, FOK)):
            raise E.ExchangeError(-1115, "Invalid timeInForce.")
        return price, tif

    @staticmethod
    def _parse_stop(spec: SymbolSpec, req: OrderRequest) -> tuple[int, int]:
        """(stopPrice ticks, activationPrice ticks) of stop and trailing orders, zeros otherwise."""
        otype = req.type
        if otype not in STOP_TYPES_SPOT and otype not in STOP_TYPES_USDM:
            return 0, 0
        if otype == TRAILING_STOP_MARKET:
            if req.callback_rate in (None, ""):
                raise E.mandatory("callbackRate")
            rate = parse_decimal("callbackRate", req.callback_rate)  # type: ignore[arg-type]
            if rate < MIN_CALLBACK or rate > MAX_CALLBACK:
                raise E.ExchangeError(-2007, "Invalid callBack rate.")
            if req.activation_price in (None, ""):
                return 0, 0
            return 0, spec.parse_price(req.activation_price, "activationPrice")  # type: ignore[arg-type]
        if req.stop_price in (None, ""):
            raise E.mandatory("stopPrice")
        return spec.parse_price(req.stop_price, "stopPrice"), 0  # type: ignore[arg-type]

    @staticmethod
    def _parse_quantity(spec: SymbolSpec, req: OrderRequest, close_position: bool) -> tuple[int, int]:
        """(quantity lots, quoteOrderQty 1e-8 units)."""
        if req.quote_order_qty not in (None, ""):
            if spec.is_futures or req.type != MARKET:
                raise E.bad_param("quoteOrderQty", req.quote_order_qty)
            if req.quantity not in (None, ""):
                raise E.ExchangeError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            quote_qty = parse_amount("quoteOrderQty", req.quote_order_qty)  # type: ignore[arg-type]
            if quote_qty <= 0:
                raise E.bad_param("quoteOrderQty", req.quote_order_qty)
            return 0, quote_qty
        if close_position:
            return 0, 0
        if req.quantity in (None, ""):
            raise E.mandatory("quantity")
        market_like = req.type in MARKET_LIKE and not (spec.is_futures and req.type == TAKE_PROFIT)
        return spec.parse_qty(req.quantity, market_order=market_like), 0  # type: ignore[arg-type]

    @staticmethod
    def _position_side(acc: Account, req: OrderRequest, fut: bool) -> tuple[str, bool]:
        """(positionSide, effective reduce-only) by the account's position mode."""
        pside = req.position_side or BOTH
        if not fut:
            return pside, False
        if acc.dual_side:
            if pside not in (LONG, SHORT):
                raise E.ExchangeError(-4061, "Order's position side does not match user's setting.")
            if req.reduce_only:
                raise E.ExchangeError(-1106, "Parameter 'reduceonly' sent when not required.")
            return pside, (req.side == SELL) == (pside == LONG)
        if pside != BOTH:
            raise E.ExchangeError(-4061, "Order's position side does not match user's setting.")
        return pside, bool(req.reduce_only)

    def _client_id(self, acc: Account, req: OrderRequest) -> str:
        """The request's clientOrderId (checked, unique among open orders) or a generated one."""
        cid = req.client_order_id
        if not cid:
            return self._next_client_id()
        if len(cid) > 36 or not all(c.isalnum() or c in "-_.:/" for c in cid):
            raise E.bad_param("newClientOrderId", cid)
        if (req.market, req.symbol, cid) in acc.open_by_client_id:
            raise E.duplicate_order()
        return cid

    def _ref_price(self, order: Order, key: tuple[str, str]) -> int:
        """Price used to value a market order: best opposite, else last, else mark."""
        if order.price:
            return order.price
        if order.stop_price:
            return order.stop_price
        opp = self.books[key].opposite(order.side).best()
        return opp or self.md[key].last_price or self.mark.get(order.symbol, 0)

    def _check_notional(self, spec: SymbolSpec, order: Order, key: tuple[str, str]) -> None:
        if order.quote_order_qty:
            if order.quote_order_qty < spec.min_notional_units:
                raise E.filter_failure("NOTIONAL")
            return
        if order.close_position or order.type == TRAILING_STOP_MARKET and not order.orig_qty:
            return
        ref = self._ref_price(order, key)
        if not ref:
            return
        value = ref * order.orig_qty * spec.notional_unit
        if spec.is_futures:
            if value < spec.min_notional_units and not order.reduce_only:
                raise E.min_notional_futures(format(spec.min_notional.normalize(), "f"))
        elif value < spec.min_notional_units or (spec.max_notional_units and value > spec.max_notional_units):
            raise E.filter_failure("NOTIONAL")

    def check_percent_price(self, spec: SymbolSpec, price: int) -> None:
        """USD-M PERCENT_PRICE: a LIMIT price within [mark * multiplierDown, mark * multiplierUp].

        Binance's -4016 "Limit price can't be higher than X." / -4024 "Limit price can't be lower than X.";
        no check while the symbol has no mark price yet.
        """
        mark = self.mark.get(spec.symbol)
        if not mark:
            return
        up = mark * spec.percent_up_bp // 10000
        if price > up:
            raise E.ExchangeError(-4016, f"Limit price can't be higher than {spec.fmt_price(up)}.")
        down = -(-mark * spec.percent_down_bp // 10000)
        if price < down:
            raise E.ExchangeError(-4024, f"Limit price can't be lower than {spec.fmt_price(down)}.")

    def _check_reduce_only(self, acc: Account, order: Order) -> None:
        pos = acc.positions.get((order.symbol, order.position_side))
        q = pos.qty if pos else 0
        if order.close_position:
            return
        if q == 0 or (q > 0) == (order.side == BUY):
            raise E.reduce_only_rejected()
        if acc.dual_side and order.orig_qty > abs(q):
            raise E.ExchangeError(-2022, "ReduceOnly Order is rejected.")

    def _trigger_price(self, order: Order, key: tuple[str, str]) -> int:
        if order.market != SPOT and order.working_type == MARK_PRICE:
            return self.mark.get(order.symbol) or self.md[key].last_price
        return self.md[key].last_price or self.mark.get(order.symbol, 0)

    def _check_trigger_at_placement(self, order: Order, key: tuple[str, str]) -> None:
        if order.type == TRAILING_STOP_MARKET:
            return
        p = self._trigger_price(order, key)
        if p and self._triggers(order, p):
            raise E.would_trigger_spot() if order.market == SPOT else E.would_trigger_futures()

    @staticmethod
    def _triggers(order: Order, p: int) -> bool:
        t = order.type
        buy = order.side == BUY
        if t in STOP_LIKE:
            return p >= order.stop_price if buy else p <= order.stop_price
        if t in TP_LIKE:
            return p <= order.stop_price if buy else p >= order.stop_price
        return False

    # ================================================================================ placement
    def place(self, acc: Account, order: Order) -> list[Fill]:
        """Reserve funds, assign the id and run the order (or park it as a stop). Returns taker fills."""
        key = (order.market, order.symbol)
        self._check_open_limits(acc, order, key)
        if order.type in TRIGGERED_TYPE:
            self._reserve(acc, order, key)
            self._register(acc, order, key)
            order.is_working = False
            order.working_ns = -1
            if order.type == TRAILING_STOP_MARKET and not order.activation_price:
                order.trail_extreme = self._trigger_price(order, key)
            self.stops[key].append(order)
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
            return []
        book = self.books[key]
        if order.type == LIMIT_MAKER or order.time_in_force == GTX:
            best = book.opposite(order.side).best()
            if best and (order.price >= best if order.side == BUY else order.price <= best):
                raise E.post_only_spot() if order.market == SPOT else E.post_only_futures()
        if order.time_in_force == FOK and not self._fok_fillable(book, order):
            if order.market != SPOT:
                raise E.ExchangeError(
                    -5021,
                    "Due to the order could not be filled immediately, the FOK "
                    "order has been rejected. The order will not be recorded in "
                    "the order history",
                )
            self._register(acc, order, key)
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return []
        self._reserve(acc, order, key)
        self._register(acc, order, key)
        if self.em.active:
            self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
        return self._execute(acc, order, key, book)

    def place_spot_limit(self, acc: Account, req: OrderRequest) -> tuple[Order, list[Fill]] | None:
        """``build`` + ``place`` of a spot LIMIT order in one go (the hot path of the server).

        None, with nothing changed, when the request is not a plain spot LIMIT whose strings were seen
        before (see ``_build_spot_limit``): the caller then takes the general path. Same checks, same
        clock reads, same state and events as ``place(build(req))``; a resting GTC order that crosses
        nothing skips the matching loop.
        """
        key = (req.market, req.symbol)
        spec = self.specs.get(key)
        if spec is None or spec.is_futures:
            return None
        order = self._build_spot_limit(acc, req, spec)
        if order is None:
            return None
        side = order.side
        price = order.price
        qty = order.orig_qty
        tif = order.time_in_force
        # ---- place
        book = self.books[key]
        if tif == FOK and not self._fok_fillable(book, order):
            return order, self.place(acc, order)
        if side == BUY:
            buy = True
            asset = spec.quote_asset
            need = price * qty * spec.notional_unit
            opp = book.asks.prices
            crosses = bool(opp) and opp[0] <= price
        else:
            buy = False
            asset = spec.base_asset
            need = qty * spec.qty_unit
            opp = book.bids.prices
            crosses = bool(opp) and opp[-1] >= price
        bucket = acc.open_orders.get(key)  # _check_open_limits, inline (a LIMIT order is never algo)
        if bucket is not None and len(bucket) >= spec.max_num_orders and not acc.unlimited:
            raise E.max_open_orders(False)
        self._lock_spot(acc, order, asset, need)
        em = self.em
        # _register
        oid = self.next_order_id[key]
        self.next_order_id[key] = oid + 1
        order.order_id = oid
        self.orders[key][oid] = order
        if bucket is None:
            bucket = acc.open_orders[key] = {}
        bucket[oid] = order
        acc.open_by_client_id[(order.market, order.symbol, order.client_order_id)] = order
        if em.active:
            em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.time_ns))
        if crosses or tif != GTC:
            return order, self._execute(acc, order, key, book)
        # nothing to match: rest at the back of the level (``_execute`` + ``_conclude`` + ``BookSide.add``)
        fills: list[Fill] = []
        bside = book.bids if buy else book.asks
        level = bside.levels.get(price)
        if level is None:
            bside.levels[price] = deque((order,))
            bside.qty[price] = qty
            insort(bside.prices, price)
        else:
            level.append(order)
            bside.qty[price] += qty
        bside.changed.add(price)
        self.dirty.add(key)
        return order, fills

    def _check_open_limits(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        """MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS of the symbol, before anything is reserved."""
        bucket = acc.open_orders.get(key)
        if not bucket or acc.unlimited:
            return
        spec = order.spec
        assert spec is not None
        if len(bucket) >= spec.max_num_orders:
            raise E.max_open_orders(spec.is_futures)
        if (
            order.type in TRIGGERED_TYPE
            and sum(1 for o in self.stops[key] if o.account_id == acc.account_id) >= spec.max_num_algo_orders
        ):
            raise E.max_algo_orders(spec.is_futures)

    def _register(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        oid = self.next_order_id[key]
        self.next_order_id[key] = oid + 1
        order.order_id = oid
        self.orders[key][oid] = order
        bucket = acc.open_orders.get(key)
        if bucket is None:
            bucket = acc.open_orders[key] = {}
        bucket[oid] = order
        acc.open_by_client_id[(order.market, order.symbol, order.client_order_id)] = order

    @staticmethod
    def _unregister(acc: Account, order: Order) -> None:
        market, symbol = order.market, order.symbol
        bucket = acc.open_orders.get((market, symbol))
        if bucket is not None:
            bucket.pop(order.order_id, None)
        cid_key = (market, symbol, order.client_order_id)
        by_cid = acc.open_by_client_id
        if by_cid.get(cid_key) is order:
            del by_cid[cid_key]

    @staticmethod
    def _fok_fillable(book: Book, order: Order) -> bool:
        opp = book.opposite(order.side)
        need = order.orig_qty
        prices = opp.prices if order.side == BUY else reversed(opp.prices)
        for p in prices:
            if order.price and (p > order.price if order.side == BUY else p < order.price):
                break
            need -= opp.qty[p]
            if need <= 0:
                return True
        return False

    # ================================================================================ reservations
    def _reserve(self, acc: Account, order: Order, key: tuple[str, str]) -> None:
        spec = order.spec
        assert spec is not None
        if spec.is_futures:
            self._reserve_margin(acc, order, key, spec)
            return
        if order.side == BUY:
            asset = spec.quote_asset
            if order.quote_order_qty:
                need = order.quote_order_qty
            elif order.price:
                need = order.price * order.orig_qty * spec.notional_unit
            elif order.stop_price:
                need = order.stop_price * order.orig_qty * spec.notional_unit
            else:
                need = self._walk_cost(self.books[key].asks, order.orig_qty, spec.notional_unit)
        else:
            asset = spec.base_asset
            need = order.orig_qty * spec.qty_unit
            if order.quote_order_qty:
                lots = self._walk_qty_for_quote(self.books[key].bids, order.quote_order_qty, spec)
                need = lots * spec.qty_unit
        self._lock_spot(acc, order, asset, need)

    def _lock_spot(self, acc: Account, order: Order, asset: str, need: int) -> None:
        """Move ``need`` of ``asset`` from free to locked for ``order`` (-2010 when it is not there)."""
        bal = acc.bal(acc.spot, asset)
        if bal.free < need and not acc.unlimited:
            raise E.insufficient_balance()
        bal.free -= need
        bal.locked += need
        order.locked = need
        if self.em.active:
            self.em.touch(acc.account_id, WALLET_SPOT, asset)

    @staticmethod
    def _walk_cost(side: BookSide, lots: int, nu: int) -> int:
        cost = 0
        for p in side.prices:
            q = side.qty[p]
            take = q if q < lots else lots
            cost += p * take * nu
            lots -= take
            if lots <= 0:
                break
        return cost

    @staticmethod
    def _walk_qty_for_quote(side: BookSide, quote: int, spec: SymbolSpec) -> int:
        lots = 0
        nu = spec.notional_unit
        for p in reversed(side.prices):
            q = side.qty[p]
            can = quote // (p * nu)
            take = q if q < can else can
            lots += take
            quote -= take * p * nu
            if take < q:
                break
        return lots

    def _opening_lots(self, acc: Account, order: Order, lots: int) -> int:
        if order.reduce_only or order.close_position:
            return 0
        pos = acc.positions.get((order.symbol, order.position_side))
        q = pos.qty if pos else 0
        if q and (q > 0) != (order.side == BUY):
            return max(0, lots - abs(q))
        return lots

    def _reserve_margin(self, acc: Account, order: Order, key: tuple[str, str], spec: SymbolSpec) -> None:
        opening = self._opening_lots(acc, order, order.orig_qty)
        if not opening:
            return
        price = order.price or self._ref_price(order, key) or self.mark.get(order.symbol, 0)
        im = initial_margin(price * opening * spec.notional_unit, acc.leverage_of(order.symbol))
        if not acc.unlimited and im > self.available(acc):
            raise E.margin_insufficient()
        order.margin = im
        acc.order_margin += im

    def available(self, acc: Account) -> int:
        """Futures available balance (USDT, 1e-8): wallet + cross uPnL - position IM - isolated - order IM."""
        bal = acc.futures.get("USDT")
        avail = (bal.free if bal else 0) - acc.order_margin
        for pos in acc.positions.values():
            if not pos.qty:
                continue
            spec = self.specs[("usdm", pos.symbol)]
            mark = self.mark_of(pos.symbol)
            if acc.margin_type_of(pos.symbol) == "ISOLATED":
                avail -= pos.isolated_margin
            else:
                nu = spec.notional_unit
                avail += mark * pos.qty * nu - pos.cost
                avail -= initial_margin(abs(mark * pos.qty * nu), acc.leverage_of(pos.symbol))
        return avail

    def mark_of(self, symbol: str) -> int:
        """Mark price of a futures symbol: replayed price, else last trade, else mid."""
        m = self.mark.get(symbol)
        if m:
            return m
        key = ("usdm", symbol)
        last = self.md[key].last_price
        if last:
            return last
        b = self.books[key]
        bid, ask = b.bids.best(), b.asks.best()
        return (bid + ask) // 2 if bid and ask else bid or ask

    def _release(self, acc: Account, order: Order) -> None:
        """Return what the order still holds (spot locked funds, futures order margin)."""
        if order.locked:
            spec = order.spec
            assert spec is not None
            asset = spec.quote_asset if order.side == BUY else spec.base_asset
            bal = acc.spot.get(asset)
            if bal is None:
                bal = acc.spot[asset] = Balance(asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = 0
            if self.em.active:
                self.em.touch(acc.account_id, WALLET_SPOT, asset)
        if order.margin:
            acc.order_margin -= order.margin
            order.margin = 0

    # ================================================================================ matching
    def _execute(self, acc: Account, order: Order, key: tuple[str, str], book: Book) -> list[Fill]:
        """Match ``order`` as taker at the makers' prices, then rest, fill or expire it."""
        fills: list[Fill] = []
        buy = order.side == BUY
        opp = book.asks if buy else book.bids
        limit = order.price
        by_quote = order.quote_order_qty
        if order.reduce_only and order.market != SPOT:
            self._clip_reduce_only(acc, order)
        prices = opp.prices
        levels = opp.levels
        spec = order.spec
        assert spec is not None
        nu = spec.notional_unit
        plain = not by_quote and order.market == SPOT  # spot makers are never reduce-only
        last_agg = None
        expired_in_match = False
        while prices:
            if order.orig_qty <= order.executed_qty and not by_quote:
                break
            best = prices[0] if buy else prices[-1]
            if limit and (best > limit if buy else best < limit):
                break
            maker = levels[best][0]
            if maker.account_id == order.account_id and order.self_trade_prevention_mode != STP_NONE:
                if self._self_trade(order, maker, opp):
                    expired_in_match = True
                    break
                continue
            if plain:  # ``_lots`` of a quantity-based spot taker, inline
                remaining = order.orig_qty - order.executed_qty
                mrem = maker.orig_qty - maker.executed_qty
                lots = remaining if remaining < mrem else mrem
                if buy and order.locked < best * lots * nu:
                    lots = order.locked // (best * nu)
                    if lots <= 0:
                        break
            else:
                lots = self._lots(order, maker, best)
            if lots < 0:  # the maker was expired (reduce-only without position): next one
                continue
            if lots == 0:
                break
            last_agg = self._trade(acc, order, maker, best, lots, opp, fills, last_agg)
        if last_agg is not None and self.em.want_agg:
            self.em.emit(last_agg)
        self._conclude(acc, order, key, book, expired_in_match, bool(fills))
        return fills

    @staticmethod
    def _clip_reduce_only(acc: Account, order: Order) -> None:
        """A reduce-only order never increases exposure: clip it to the position."""
        pos = acc.positions.get((order.symbol, order.position_side))
        size = abs(pos.qty) if pos else 0
        if order.orig_qty > size:
            order.orig_qty = size if size > order.executed_qty else order.executed_qty

    def _self_trade(self, order: Order, maker: Order, opp: BookSide) -> bool:
        """Apply the taker's STP mode against its own maker; True if the taker must stop (expire)."""
        mode = order.self_trade_prevention_mode
        if mode in (STP_EXPIRE_MAKER, STP_EXPIRE_BOTH):
            mk_acc = self.ledger.accounts[maker.account_id]
            opp.remove(maker)
            self.dirty.add((maker.market, maker.symbol))
            maker.prevented_qty += maker.orig_qty - maker.executed_qty
            self._finish(mk_acc, maker, EXPIRED_IN_MATCH, X_TRADE_PREVENTION if maker.market == SPOT else X_EXPIRED)
        return mode in (STP_EXPIRE_TAKER, STP_EXPIRE_BOTH)

    def _lots(self, order: Order, maker: Order, best: int) -> int:
        """Lots the taker can trade with ``maker`` at ``best`` (0: stop matching, -1: maker expired)."""
        spec = order.spec
        assert spec is not None
        nu = spec.notional_unit
        remaining = order.orig_qty - order.executed_qty
        mrem = maker.orig_qty - maker.executed_qty
        if order.quote_order_qty:
            can = (order.quote_order_qty - order.cum_quote) // (best * nu)
            lots = can if can < mrem else mrem
        else:
            lots = remaining if remaining < mrem else mrem
            if order.side == BUY and order.market == SPOT and order.locked < best * lots * nu:
                lots = order.locked // (best * nu)
        if lots <= 0:
            return 0
        if maker.reduce_only and maker.market != SPOT:
            mk_acc = self.ledger.accounts[maker.account_id]
            mpos = mk_acc.positions.get((maker.symbol, maker.position_side))
            msize = abs(mpos.qty) if mpos else 0
            if msize == 0:
                self.books[(maker.market, maker.symbol)].side(maker.side).remove(maker)
                self._finish(mk_acc, maker, EXPIRED, X_EXPIRED)
                return -1
            lots = min(lots, msize)
        return lots

    def _conclude(
        self, acc: Account, order: Order, key: tuple[str, str], book: Book, expired_in_match: bool, traded: bool
    ) -> None:
        """After matching: expire (STP, IOC/FOK/MARKET), fill, or rest the remainder in the book.

        An order filled by this matching is closed without another event: its last TRADE event already said
        FILLED, as Binance's does."""
        held, self._held = self._held, None
        if order.quote_order_qty and order.executed_qty and not expired_in_match:
            order.orig_qty = order.executed_qty
            if held is not None:  # the last trade filled it: that event says so
                held.order.status = FILLED
                held.order.orig_qty = order.executed_qty
                self.em.emit(held)
            self._finish(acc, order, FILLED, None, emit=held is None)
            return
        if held is not None:
            self.em.emit(held)
        if expired_in_match:
            order.prevented_qty += order.orig_qty - order.executed_qty
            self._finish(acc, order, EXPIRED_IN_MATCH, X_TRADE_PREVENTION if order.market == SPOT else X_EXPIRED)
            return
        if order.quote_order_qty:
            order.orig_qty = order.executed_qty
            self._finish(
                acc, order, FILLED if order.executed_qty else EXPIRED, None if order.executed_qty else X_EXPIRED
            )
            return
        remaining = order.orig_qty - order.executed_qty
        if remaining <= 0:
            self._finish(acc, order, FILLED, None, emit=not traded)
            return
        if order.type == MARKET or order.time_in_force in (IOC, FOK):
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return
        spec = order.spec
        assert spec is not None
        if order.locked and order.side == BUY and order.market == SPOT:
            # a spot buy that took better prices returns its surplus lock before resting
            surplus = order.locked - order.price * remaining * spec.notional_unit
            if surplus > 0:
                bal = acc.bal(acc.spot, spec.quote_asset)
                bal.locked -= surplus
                bal.free += surplus
                order.locked -= surplus
        book.side(order.side).add(order)
        self.dirty.add(key)

    def _trade(
        self,
        acc: Account,
        taker: Order,
        maker: Order,
        price: int,
        lots: int,
        opp: BookSide,
        fills: list[Fill],
        last_agg: AggTradeEvent | None,
    ) -> AggTradeEvent | None:
        spec = taker.spec
        assert spec is not None
        key = (taker.market, taker.symbol)
        md = self.md[key]
        now = self.clock()
        tid = md.next_trade_id
        md.next_trade_id = tid + 1
        mk_acc = self.ledger.accounts[maker.account_id]
        quote = price * lots * spec.notional_unit
        buy = taker.side == BUY
        if spec.is_futures:
            t_fill = self._settle_futures(acc, taker, price, lots, quote, tid, False, now, spec)
            m_fill = self._settle_futures(mk_acc, maker, price, lots, quote, tid, True, now, spec)
        else:
            t_fill = self._settle_spot(acc, taker, price, lots, quote, tid, False, now, spec)
            m_fill = self._settle_spot(mk_acc, maker, price, lots, quote, tid, True, now, spec)
        fills.append(t_fill)
        opp.qty[price] -= lots  # opp.reduce(price, lots), inline
        opp.changed.add(price)
        trade = TradeEvent(
            taker.market,
            taker.symbol,
            tid,
            price,
            lots,
            taker.order_id if buy else maker.order_id,
            maker.order_id if buy else taker.order_id,
            not buy,
            now,
        )
        md.trades.append(trade)  # md.record_trade(trade), inline
        md.last_price = price
        md._pending.append(trade)
        if last_agg is not None and last_agg.price == price and last_agg.last_trade_id == tid - 1:
            last_agg.qty += lots
            last_agg.last_trade_id = tid
        else:
            if last_agg is not None and self.em.want_agg:
                self.em.emit(last_agg)  # the previous aggregate is complete
            last_agg = AggTradeEvent(taker.market, taker.symbol, md.next_agg_id, price, lots, tid, tid, not buy, now)
            md.next_agg_id += 1
            md.aggs.append(last_agg)
        self.dirty.add(key)
        maker_done = maker.executed_qty >= maker.orig_qty
        if maker_done:
            opp.pop_head(price)
        em = self.em
        if em.active:
            if em.want_trade:
                em.emit(trade)
            taker.status = (
                FILLED if taker.executed_qty >= taker.orig_qty and not taker.quote_order_qty else PARTIALLY_FILLED
            )
            taker_event = OrderEvent(acc.account_id, X_TRADE, taker.snapshot(), t_fill, now)
            if taker.quote_order_qty:  # filled or not is known after its matching (``_conclude``)
                if self._held is not None:
                    em.emit(self._held)
                self._held = taker_event
            else:
                em.emit(taker_event)
        if maker_done:
            self._finish(mk_acc, maker, FILLED, None, m_fill)
        else:
            maker.status = PARTIALLY_FILLED
            if em.active:
                em.emit(OrderEvent(mk_acc.account_id, X_TRADE, maker.snapshot(), m_fill, now))
        taker.status = PARTIALLY_FILLED
        return last_agg

    def _settle_spot(
        self,
        acc: Account,
        order: Order,
        price: int,
        lots: int,
        quote: int,
        tid: int,
        maker: bool,
        now: int,
        spec: SymbolSpec,
    ) -> Fill:
        fees = self.fees
        ppm = fees.spot_maker_ppm if maker else fees.spot_taker_ppm
        base_units = lots * spec.qty_unit
        wallet = acc.spot
        if order.side == BUY:
            pay_asset, fasset, pay_amount = spec.quote_asset, spec.base_asset, quote
            fee = (base_units * ppm + PPM // 2) // PPM  # fee_of
            gain = base_units - fee
        else:
            pay_asset, fasset, pay_amount = spec.base_asset, spec.quote_asset, base_units
            fee = (quote * ppm + PPM // 2) // PPM  # fee_of
            gain = quote - fee
        pay = wallet.get(pay_asset)
        if pay is None:
            pay = wallet[pay_asset] = Balance(pay_asset)
        pay.locked -= pay_amount
        order.locked -= pay_amount
        get = wallet.get(fasset)
        if get is None:
            get = wallet[fasset] = Balance(fasset)
        get.free += gain
        if fee:
            fee_wallet = self.fee_account.spot
            fb = fee_wallet.get(fasset)
            if fb is None:
                fb = fee_wallet[fasset] = Balance(fasset)
            fb.free += fee
        order.executed_qty += lots
        order.cum_quote += quote
        order.commission += fee
        order.update_ns = now
        account_id = acc.account_id
        fill = Fill(
            account_id,
            order.market,
            order.symbol,
            tid,
            order.order_id,
            order.client_order_id,
            order.side,
            price,
            lots,
            quote,
            fee,
            fasset,
            maker,
            now,
        )
        fk = (account_id, order.market, order.symbol)
        lst = self.fills.get(fk)
        if lst is None:
            lst = self.fills[fk] = []
        lst.append(fill)
        if self.em.active:
            self.em.touch(account_id, WALLET_SPOT, pay_asset)
            self.em.touch(account_id, WALLET_SPOT, fasset)
        return fill

    def _settle_futures(
        self,
        acc: Account,
        order: Order,
        price: int,
        lots: int,
        quote: int,
        tid: int,
        maker: bool,
        now: int,
        spec: SymbolSpec,
    ) -> Fill:
        ppm = self.fees.usdm_maker_ppm if maker else self.fees.usdm_taker_ppm
        fee = fee_of(quote, ppm)
        pos = acc.position(order.symbol, order.position_side)
        before = abs(pos.qty)
        pnl, closed = apply_fill(pos, order.side, lots, price, spec.notional_unit)
        pos.update_ns = now
        if acc.margin_type_of(order.symbol) == "ISOLATED":
            if closed and before:
                pos.isolated_margin -= pos.isolated_margin * closed // before
            opened = lots - closed
            if opened:
                pos.isolated_margin += initial_margin(
                    price * opened * spec.notional_unit, acc.leverage_of(order.symbol)
                )
            if pos.qty == 0:
                pos.isolated_margin = 0
        usdt = acc.bal(acc.futures, spec.margin_asset)
        usdt.free += pnl - fee
        if fee:
            self.fee_account.bal(self.fee_account.futures, spec.margin_asset).free += fee
        if order.margin:
            rem = order.orig_qty - order.executed_qty
            rel = order.margin if lots >= rem else order.margin * lots // rem
            order.margin -= rel
            acc.order_margin -= rel
        order.executed_qty += lots
        order.cum_quote += quote
        order.commission += fee
        order.realized_pnl += pnl
        order.update_ns = now
        fill = Fill(
            acc.account_id,
            order.market,
            order.symbol,
            tid,
            order.order_id,
            order.client_order_id,
            order.side,
            price,
            lots,
            quote,
            fee,
            spec.margin_asset,
            maker,
            now,
            pnl,
            order.position_side,
        )
        fk = (acc.account_id, order.market, order.symbol)
        lst = self.fills.get(fk)
        if lst is None:
            lst = self.fills[fk] = []
        lst.append(fill)
        if self.em.active:
            self.em.touch(
                acc.account_id, WALLET_FUTURES, spec.margin_asset, (order.symbol, order.position_side), delta=pnl - fee
            )
        return fill

    def _finish(
        self,
        acc: Account,
        order: Order,
        status: str,
        exec_type: str | None,
        fill: Fill | None = None,
        emit: bool = True,
    ) -> None:
        """Close an order: release what it holds, drop it from the open index, emit the event (unless ``emit`` is
        False: an event already told it)."""
        order.status = status
        order.update_ns = self.clock()
        if order.locked or order.margin:
            self._release(acc, order)
        self._unregister(acc, order)
        if emit and self.em.active:
            # a closed order never changes again: the event carries it without a copy
            self.em.emit(OrderEvent(acc.account_id, exec_type or X_TRADE, order, fill, order.update_ns))

    # ================================================================================ cancel
    def cancel(self, acc: Account, order: Order, status: str = CANCELED, exec_type: str = X_CANCELED) -> None:
        """Cancel an open order (resting or pending stop)."""
        key = (order.market, order.symbol)
        if order.is_working:
            book = self.books[key]
            (book.bids if order.side == BUY else book.asks).remove(order)
            self.dirty.add(key)
        else:
            self.stops[key].remove(order)
        self._finish(acc, order, status, exec_type)

    # ================================================================================ stops
    def check_stops(self, key: tuple[str, str]) -> None:
        """Trigger every pending stop of ``key`` whose condition holds; repeat while trades move prices."""
        for _ in range(MAX_TRIGGER_ROUNDS):
            pending = self.stops[key]
            if not pending:
                return
            fired: list[Order] = []
            for order in pending:
                p = self._trigger_price(order, key)
                if not p:
                    continue
                if order.type == TRAILING_STOP_MARKET:
                    if self._trail(order, p):
                        fired.append(order)
                elif self._triggers(order, p):
                    fired.append(order)
            if not fired:
                return
            for order in fired:
                pending.remove(order)
                self._fire(order, key)

    @staticmethod
    def _trail(order: Order, p: int) -> bool:
        buy = order.side == BUY
        if not order.trail_extreme:
            act = order.activation_price
            if act and (p > act if buy else p < act):
                return False
            order.trail_extreme = p
        if buy:
            order.trail_extreme = min(order.trail_extreme, p)
        else:
            order.trail_extreme = max(order.trail_extreme, p)
        bp = int(parse_decimal("callbackRate", order.callback_rate) * 100)
        ext = order.trail_extreme
        if buy:
            return p * 10000 >= ext * (10000 + bp)
        return p * 10000 <= ext * (10000 - bp)

    def _fire(self, order: Order, key: tuple[str, str]) -> None:
        acc = self.ledger.accounts[order.account_id]
        self._release(acc, order)
        order.type = TRIGGERED_TYPE[order.type]
        if order.type == MARKET:
            order.price = 0
            order.time_in_force = GTC if order.market != SPOT else ""
        order.is_working = True
        order.working_ns = self.clock()
        if order.close_position:
            pos = acc.positions.get((order.symbol, order.position_side))
            size = abs(pos.qty) if pos else 0
            if not size or (pos.qty > 0) == (order.side == BUY):  # type: ignore[union-attr]
                self._finish(acc, order, EXPIRED, X_EXPIRED)
                return
            order.orig_qty = size
            order.reduce_only = True
        try:
            self._reserve(acc, order, key)
        except E.ExchangeError:
            self._finish(acc, order, EXPIRED, X_EXPIRED)
            return
        if self.em.active:
            self.em.emit(OrderEvent(acc.account_id, X_NEW, order.snapshot(), None, order.working_ns))
        book = self.books[key]
        if order.type == LIMIT and (order.time_in_force == GTX):
            best = book.opposite(order.side).best()
            if best and (order.price >= best if order.side == BUY else order.price <= best):
                self._finish(acc, order, EXPIRED, X_EXPIRED)
                return
        self._execute(acc, order, key, book)

    def is_open(self, order: Order) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return order.status in (NEW, PARTIALLY_FILLED)
