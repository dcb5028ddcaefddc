"""Order validation: a request into a checked, not yet placed ``Order`` (filters, notional, parameters, client
ids, reduce-only, trigger prices), raising Binance's errors.
"""

from __future__ import annotations

from . import errors as E
from .accounts import Account
from .markets import SPOT, SymbolSpec, parse_amount, parse_decimal
from .matcher_state import (
    MARKET_LIKE,
    MAX_CALLBACK,
    MIN_CALLBACK,
    STOP_LIKE,
    STP_MODES,
    TP_LIKE,
    TRIGGERED_TYPE,
    MatcherState,
)
from .types import (
    BOTH,
    BUY,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    LONG,
    MARK_PRICE,
    MARKET,
    SELL,
    SHORT,
    SIDES,
    STOP,
    STOP_LOSS_LIMIT,
    STOP_MARKET,
    STOP_TYPES_SPOT,
    STOP_TYPES_USDM,
    STP_EXPIRE_TAKER,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    Order,
    OrderRequest,
    new_limit_order,
)


class OrderValidation(MatcherState):
    """The checks an order passes before it is placed."""

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
            if order.quote_order_qty * spec.quote_scale < spec.min_notional_units:
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
