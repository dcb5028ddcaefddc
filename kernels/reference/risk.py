"""Reference pre-trade risk check over a ``World`` (see kernels/risk.py for the rules)."""

from __future__ import annotations

from fractions import Fraction

from kernels import codes as C
from kernels.reference.model import World
from kernels.state import TOKEN, UNLIMITED

LIMIT_PRICED = (C.LIMIT, C.STOP_LIMIT, C.TAKE_PROFIT_LIMIT, C.LIMIT_MAKER)


def over(value: int | Fraction, limit: int) -> bool:
    """True when a value breaks a limit; an UNLIMITED limit is never broken."""
    return limit != UNLIMITED and value > limit


def tokens_at(world: World, a: int, now_ns: int) -> int | None:
    """Token-bucket content at now_ns, or None when the account has no rate limit."""
    acct = world.accounts[a]
    if acct.limits.order_burst == UNLIMITED:
        return None
    capacity = acct.limits.order_burst * TOKEN
    if acct.tokens >= capacity:
        return acct.tokens
    elapsed = max(0, now_ns - acct.tokens_ns)
    return min(capacity, acct.tokens + elapsed * acct.limits.order_rate_milli)


def order_shape(world: World, a: int, i: int, side: int, otype: int, pos_side: int) -> int:
    """Indices, side, type, position side for the account's mode, kill switches, instrument status."""
    if not 0 <= a < len(world.accounts):
        return C.UNKNOWN_ACCOUNT
    if not 0 <= i < len(world.instruments):
        return C.UNKNOWN_INSTRUMENT
    if side not in (C.BUY, C.SELL):
        return C.BAD_SIDE
    if not 1 <= otype <= C.MAX_ORDER_TYPE:
        return C.BAD_ORDER_TYPE
    acct = world.accounts[a]
    if pos_side not in ((C.POS_LONG, C.POS_SHORT) if acct.hedge else (C.POS_BOTH,)):
        return C.BAD_POSITION_SIDE
    if world.trading_state == C.HALTED:
        return C.GLOBAL_HALTED
    if acct.limits.trading_state == C.HALTED:
        return C.ACCOUNT_HALTED
    if world.instruments[i].status != C.INSTRUMENT_TRADING:
        return C.INSTRUMENT_NOT_TRADING
    return C.OK


def exchange_filters(world: World, a: int, i: int, otype: int, price: int, qty: int) -> int:
    """Lot and tick filters, min/max quantity and price, mark, price band, min/max notional."""
    inst = world.instruments[i]
    if qty <= 0:
        return C.QTY_NOT_POSITIVE
    if qty % inst.lot:
        return C.QTY_STEP
    if qty < inst.min_qty:
        return C.QTY_BELOW_MIN
    if inst.max_qty and qty > inst.max_qty:
        return C.QTY_ABOVE_MAX
    if otype != C.MARKET:
        if price <= 0:
            return C.PRICE_NOT_POSITIVE
        if price % inst.tick:
            return C.PRICE_TICK
        if price < inst.min_price or (inst.max_price and price > inst.max_price):
            return C.PRICE_OUT_OF_RANGE
    if inst.mark <= 0:
        return C.NO_MARK_PRICE
    band = world.accounts[a].limits.price_band_ppm
    if otype in LIMIT_PRICED and band != UNLIMITED:
        if abs(price - inst.mark) > Fraction(inst.mark * band, 1_000_000):
            return C.PRICE_BAND
    notional = order_notional(world, i, otype, price, qty)
    if notional < inst.min_notional:
        return C.NOTIONAL_BELOW_MIN
    if inst.max_notional and notional > inst.max_notional:
        return C.NOTIONAL_ABOVE_MAX
    return C.OK


def order_notional(world: World, i: int, otype: int, price: int, qty: int) -> int:
    """Priced at the limit price for limit-priced orders, at the mark otherwise."""
    inst = world.instruments[i]
    return (price if otype in LIMIT_PRICED else inst.mark) * qty * inst.mult


def only_reduces(world: World, a: int, i: int, side: int, qty: int, pos_side: int) -> bool:
    """True when the order can only shrink its position slot, never flip it."""
    acct = world.accounts[a]
    q = acct.position(i, 1 if pos_side == C.POS_SHORT else 0).qty
    if acct.hedge:
        closing = (pos_side == C.POS_LONG and side == C.SELL) or (pos_side == C.POS_SHORT and side == C.BUY)
        return closing and qty <= abs(q)
    return q != 0 and (side == C.SELL) == (q > 0) and qty <= abs(q)


def new_risk(
    world: World, a: int, i: int, side: int, otype: int, price: int, qty: int, reduce_only: bool, pos_side: int
) -> int:
    """The checks for an order that does not only reduce its position."""
    acct = world.accounts[a]
    lim = acct.limits
    inst = world.instruments[i]
    if reduce_only:
        return C.REDUCE_ONLY_REJECTED
    if world.trading_state == C.REDUCE_ONLY:
        return C.GLOBAL_REDUCE_ONLY
    if lim.trading_state == C.REDUCE_ONLY:
        return C.ACCOUNT_REDUCE_ONLY
    if inst.rate_num == 0:
        return C.NO_QUOTE_RATE
    account_limits = (lim.max_gross_exposure, lim.max_leverage_ppm, lim.max_daily_loss, lim.max_drawdown_ppm)
    if world.unpriced(a) and any(x != UNLIMITED for x in account_limits):
        return C.UNPRICED_EXPOSURE
    globally_limited = world.max_gross_exposure != UNLIMITED or world.max_daily_loss != UNLIMITED
    if globally_limited and any(world.unpriced(b) for b in range(len(world.accounts))):
        return C.GLOBAL_UNPRICED_EXPOSURE
    if over(inst.ceil(order_notional(world, i, otype, price, qty)), lim.max_order_notional):
        return C.MAX_ORDER_NOTIONAL
    position = acct.position(i, 1 if pos_side == C.POS_SHORT else 0)
    q = position.qty
    if side == C.BUY:
        worst_position = q + position.open_buy + qty
    else:
        worst_position = -(q - position.open_sell - qty)
    if worst_position > 0 and over(inst.ceil(worst_position * inst.mark * inst.mult), lim.max_position_notional):
        return C.MAX_POSITION
    added_gross = inst.ceil(max(0, abs(q + side * qty) - abs(q)) * inst.mark * inst.mult)
    gross_after = world.gross(a) + added_gross
    if over(gross_after, lim.max_gross_exposure):
        return C.MAX_ACCOUNT_EXPOSURE
    if over(world.total_gross() + added_gross, world.max_gross_exposure):
        return C.MAX_GLOBAL_EXPOSURE
    return loss_limits(world, a, gross_after)


def loss_limits(world: World, a: int, gross_after: int) -> int:
    """Leverage, daily loss (account and global), drawdown from the equity peak."""
    acct = world.accounts[a]
    lim = acct.limits
    equity = world.equity(a)
    if lim.max_leverage_ppm != UNLIMITED:
        if equity <= 0 or gross_after > Fraction(equity * lim.max_leverage_ppm, 1_000_000):
            return C.MAX_LEVERAGE
    if over(acct.day_start_equity - equity, lim.max_daily_loss):
        return C.DAILY_LOSS
    if over(world.day_start_equity - world.total_equity(), world.max_daily_loss):
        return C.GLOBAL_DAILY_LOSS
    peak = acct.peak_equity
    if peak > 0 and lim.max_drawdown_ppm != UNLIMITED:
        if peak - equity > Fraction(peak * lim.max_drawdown_ppm, 1_000_000):
            return C.MAX_DRAWDOWN
    return C.OK


def check_order(
    world: World,
    a: int,
    i: int,
    side: int,
    otype: int,
    price: int,
    qty: int,
    reduce_only: bool,
    pos_side: int,
    now_ns: int,
    commit: bool = True,
) -> int:
    """The reason code for one order; an accepted order (0) is reserved in ``world`` when commit."""
    reason = order_shape(world, a, i, side, otype, pos_side)
    if reason == C.OK:
        reason = exchange_filters(world, a, i, otype, price, qty)
    if reason == C.OK and not only_reduces(world, a, i, side, qty, pos_side):
        reason = new_risk(world, a, i, side, otype, price, qty, reduce_only, pos_side)
    if reason != C.OK:
        return reason
    acct = world.accounts[a]
    if over(acct.open_orders + 1, acct.limits.max_open_orders):
        return C.MAX_OPEN_ORDERS
    tokens = tokens_at(world, a, now_ns)
    if tokens is not None and tokens < TOKEN:
        return C.RATE_LIMIT
    if commit:
        if tokens is not None:
            acct.tokens = tokens - TOKEN
        acct.tokens_ns = max(acct.tokens_ns, now_ns)
        acct.open_orders += 1
        position = acct.position(i, 1 if pos_side == C.POS_SHORT else 0)
        if side == C.BUY:
            position.open_buy += qty
        else:
            position.open_sell += qty
    return C.OK


def release_order(world: World, a: int, i: int, side: int, pos_side: int, qty: int, order_done: bool) -> None:
    acct = world.accounts[a]
    position = acct.position(i, 1 if pos_side == C.POS_SHORT else 0)
    if side == C.BUY:
        position.open_buy = max(0, position.open_buy - qty)
    else:
        position.open_sell = max(0, position.open_sell - qty)
    if order_done and acct.open_orders > 0:
        acct.open_orders -= 1
