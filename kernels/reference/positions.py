"""Reference fills, marks, funding and transfers over a ``World`` (see kernels/positions.py)."""

from __future__ import annotations

from kernels import codes as C
from kernels.reference.model import World

FUNDING_RATE_SCALE = 100_000_000


def _trunc_div(numerator: int, denominator: int) -> int:
    """Division rounded toward zero (Python's // rounds toward minus infinity)."""
    q = abs(numerator) // abs(denominator)
    return q if (numerator >= 0) == (denominator > 0) else -q


def apply_fill(world: World, a: int, i: int, side: int, pos_side: int, price: int, qty: int, fee: int) -> int:
    """Apply one fill; returns 0 or the reason it was refused (then nothing changes)."""
    if not 0 <= a < len(world.accounts):
        return C.UNKNOWN_ACCOUNT
    if not 0 <= i < len(world.instruments):
        return C.UNKNOWN_INSTRUMENT
    if side not in (C.BUY, C.SELL):
        return C.BAD_SIDE
    acct = world.accounts[a]
    if pos_side not in ((C.POS_LONG, C.POS_SHORT) if acct.hedge else (C.POS_BOTH,)):
        return C.BAD_POSITION_SIDE
    if qty <= 0:
        return C.QTY_NOT_POSITIVE
    if price <= 0:
        return C.PRICE_NOT_POSITIVE
    slot = 1 if pos_side == C.POS_SHORT else 0
    position = acct.position(i, slot)
    closing_side = (pos_side == C.POS_LONG and side == C.SELL) or (pos_side == C.POS_SHORT and side == C.BUY)
    if acct.hedge and closing_side and qty > abs(position.qty):
        return C.HEDGE_OVERCLOSE
    inst = world.instruments[i]
    if inst.mark <= 0:
        set_mark(world, i, price)

    cash_before = acct.cash
    unit = price * inst.mult
    q, cost = position.qty, position.cost
    realised = 0
    if q == 0 or (q > 0) == (side == C.BUY):  # open or add
        q, cost = q + side * qty, cost + side * qty * unit
    else:  # reduce, close, maybe flip
        closed = min(qty, abs(q))
        removed = _trunc_div(cost * closed, abs(q))
        proceeds = unit * closed if q > 0 else -unit * closed
        realised = proceeds - removed
        q, cost = q + side * closed, cost - removed
        opened = qty - closed
        q, cost = q + side * opened, cost + side * opened * unit
    position.qty, position.cost = q, cost
    position.realised += realised
    position.fees += fee
    acct.realised += inst.floor(realised)
    acct.fees += inst.ceil(fee)
    if inst.kind == C.PERP:
        acct.cash = cash_before + inst.floor(realised - fee)
    else:
        acct.cash = cash_before + inst.floor(-side * qty * unit - fee)
    raise_peak(world, a)
    return C.OK


def raise_peak(world: World, a: int) -> None:
    """The equity peak follows equity up (only accounts whose equity moved need this)."""
    acct = world.accounts[a]
    acct.peak_equity = max(acct.peak_equity, world.equity(a))


def set_mark(world: World, i: int, mark: int) -> None:
    world.instruments[i].mark = mark
    for a, acct in enumerate(world.accounts):
        if any(acct.positions.get((i, slot)) and acct.positions[(i, slot)].qty for slot in (0, 1)):
            raise_peak(world, a)


def apply_funding(world: World, a: int, i: int, pos_side: int, amount: int) -> None:
    acct = world.accounts[a]
    acct.position(i, 1 if pos_side == C.POS_SHORT else 0).funding += amount
    acct.funding += amount
    acct.cash += amount
    raise_peak(world, a)


def apply_funding_rate(world: World, i: int, rate_e8: int) -> int:
    inst = world.instruments[i]
    total = 0
    for a, acct in enumerate(world.accounts):
        for slot in (0, 1):
            position = acct.positions.get((i, slot))
            if position is None or position.qty == 0:
                continue
            value = position.qty * inst.mark * inst.mult
            amount = (-value * rate_e8) // FUNDING_RATE_SCALE  # floor: against the account
            position.funding += amount
            booked = inst.floor(amount)
            acct.funding += booked
            acct.cash += booked
            total += booked
            raise_peak(world, a)
    return total


def set_quote_rate(world: World, i: int, num: int, den: int) -> None:
    """The instrument's rate into the limits' unit (kernels.quote_rates.set_quote_rate): the caches follow."""
    inst = world.instruments[i]
    inst.rate_num, inst.rate_den = (num, den) if den > 0 else (0, 1)
    for a, acct in enumerate(world.accounts):
        if any(acct.positions.get((i, slot)) and acct.positions[(i, slot)].qty for slot in (0, 1)):
            raise_peak(world, a)


def transfer(world: World, a: int, amount: int) -> None:
    acct = world.accounts[a]
    acct.cash += amount
    acct.day_start_equity += amount
    acct.peak_equity += amount
    world.day_start_equity += amount


def start_day(world: World) -> None:
    for a, acct in enumerate(world.accounts):
        acct.day_start_equity = world.equity(a)
    world.day_start_equity = world.total_equity()


def account_summary(world: World, a: int) -> dict[str, int]:
    acct = world.accounts[a]
    ins = world.instruments
    unrealised = sum(
        ins[i].floor(p.qty * ins[i].mark * ins[i].mult - p.cost) for (i, _), p in acct.positions.items() if p.qty
    )
    return {
        "equity": world.equity(a),
        "cash": acct.cash,
        "unrealised": unrealised,
        "realised": acct.realised,
        "fees": acct.fees,
        "funding": acct.funding,
        "gross": world.gross(a),
        "net_value": world.value(a),
    }
