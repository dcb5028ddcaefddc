"""Amending an open order in place (``AmendOrder``): the gateway's decision, and settling the venue's answer.

``decide(gateway, cmd)`` runs in the gateway, synchronously, like a placement (``check`` then ``apply``; a
venue that amends only a lower quantity in place gets every other amend as a cancel-replace, ``stream.replace``,
which reuses ``check``):

* the order must be the daemon's, of that account, on that symbol and side, and live on the book (``new`` or
  ``partially_filled``: a pending placement or cancel, or one whose outcome is unknown, is refused as
  ``not_amendable``; a finished one as ``not_open``), with one amend at a time;
* the new quantity (and price) in the instrument's units (an over-precise number refused), the quantity above
  what has filled already;
* **risk**: a lower quantity at the same price only lowers exposure, so it passes in any trading state (even
  halted) and gives back its share of the reservation at once. Anything else (a new price, a larger quantity)
  is checked by the risk kernel as the order it becomes: the old reservation is released, the amended order
  checked (and reserved) in its place, and on a refusal the old reservation is restored and a ``rejected``
  event published with the kernel's reason, the order unchanged.

The record takes the amended quantity and price at once (optimistically: a fill racing the amend is counted
against the new quantity) and remembers the old ones in ``gateway.amends``. ``settle(gateway, ev)`` takes the
venue's ``amended`` answer (its quantity and price are the truth); ``revert(gateway, coid)`` puts the old
order and reservation back when the venue refused the amend (or the order finished meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from kernels import codes as C
from kernels.state import A_OPEN_ORDERS, P_OPEN_BUY, P_OPEN_SELL, slot_of
from oms.model import AmendOrder, Instrument, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder
from oms.model.commands import CommandResult

if TYPE_CHECKING:  # the gateway imports this module: annotations only
    from stream.gateway import OrderGateway
    from stream.orders import OrderRecord

# What an amend decision came to: the reply's result, the events to publish, what to send to the venue.
Outcome = tuple[CommandResult, list[OrderEvent], list[AmendOrder]]

AMENDABLE = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


@dataclass(slots=True)
class PendingAmend:
    """An amend sent and not yet answered: the order as it was, to put back if the venue refuses."""

    cmd: AmendOrder
    old: PlaceOrder
    old_qty: int
    checked: bool  # the risk kernel re-reserved the order (False: a quantity decrease at the same price)


@dataclass(slots=True)
class Checked:
    """An amend that passed the checks: the order, its instrument, the new quantity (units) and prices."""

    rec: OrderRecord
    ins: Instrument
    qty: int
    new_price: int | None  # the price the order will have (its old one when the amend leaves it)
    old_price: int | None

    @property
    def simple(self) -> bool:
        """Less of the same order: a lower quantity at the same price."""
        return self.qty < self.rec.qty and self.new_price == self.old_price


def decide(gw: OrderGateway, cmd: AmendOrder) -> Outcome:
    c = check(gw, cmd)
    return c if isinstance(c, tuple) else apply(gw, cmd, c)


def refuse(gw: OrderGateway, coid: str, code: str, reason: str) -> Outcome:
    gw.rejections[code] += 1
    return CommandResult(ok=False, client_order_id=coid, code=code, reason=reason), [], []


def check(gw: OrderGateway, cmd: AmendOrder) -> Outcome | Checked:
    """The order and the amend's numbers, or the refusal (an ``Outcome``)."""
    coid = cmd.client_order_id
    rec = gw.orders.get(coid)
    if rec is None or rec.cmd.account != cmd.account:
        return refuse(gw, coid, "unknown_order", f"order {coid} of {cmd.account} is not known to this daemon")
    if rec.cmd.symbol != cmd.symbol or rec.cmd.side != cmd.side:
        why = f"order {coid} is a {rec.cmd.side} on {rec.cmd.symbol}, not {cmd.side} {cmd.symbol}"
        return refuse(gw, coid, "bad_amend", why)
    if not rec.is_open:
        return refuse(gw, coid, "not_open", f"order {coid} is {rec.status.value}: nothing to amend")
    if rec.status not in AMENDABLE or coid in gw.amends:
        busy = "an amend of it is in flight" if coid in gw.amends else f"it is {rec.status.value}"
        return refuse(gw, coid, "not_amendable", f"order {coid} cannot be amended now: {busy}")
    if cmd.qty is None and cmd.price is None:
        return refuse(gw, coid, "bad_amend", f"amend of {coid} changes neither quantity nor price")
    _, ins = gw.instruments.instrument(rec.instrument)
    try:
        qty = ins.qty(cmd.qty) if cmd.qty is not None else rec.qty
        price = ins.price(cmd.price) if cmd.price is not None else None
    except ValueError as exc:
        return refuse(gw, coid, "bad_number", str(exc))
    old_price = ins.price(rec.cmd.price) if rec.cmd.price is not None else None
    if price is not None and old_price is None:
        return refuse(gw, coid, "bad_amend", f"order {coid} is a {rec.cmd.order_type} order without a price to change")
    if qty <= rec.filled:
        done = ins.qty_str(rec.filled)
        return refuse(gw, coid, "bad_amend", f"amend of {coid}: quantity {cmd.qty} is not above the {done} filled")
    new_price = old_price if price is None else price
    if qty == rec.qty and new_price == old_price:
        return refuse(gw, coid, "bad_amend", f"amend of {coid} changes nothing")
    return Checked(rec, ins, qty, new_price, old_price)


def rejected(gw: OrderGateway, cmd: AmendOrder, rec: OrderRecord, reason: int | tuple[str, str]) -> Outcome:
    """The risk kernel (a reason code) or the gateway's ``quote_check`` (a ``(code, reason)`` refusal) refused
    the amended order: an ``amend_rejected`` event with its reason."""
    if isinstance(reason, tuple):
        (code, message), kernel_code = reason, None
    else:
        code, message, kernel_code = f"risk:{C.reason_name(reason)}", C.reason_message(reason), reason
    gw.rejections[code] += 1
    ev = OrderEvent(account=cmd.account, symbol=cmd.symbol, client_order_id=cmd.client_order_id,
                    kind=OrderEventKind.AMEND_REJECTED, status=rec.status, side=cmd.side,
                    order_type=rec.cmd.order_type, qty=cmd.qty, price=cmd.price, code=kernel_code,
                    reason=f"{code}: {message}", event_ns=gw.clock())  # fmt: skip
    result = CommandResult(ok=False, client_order_id=cmd.client_order_id, status=rec.status, code=code,
                           reason=message)  # fmt: skip
    return result, [ev], []


def gate(gw: OrderGateway, rec: OrderRecord, otype: int, price: int, qty: int, now: int) -> int | tuple[str, str]:
    """The amended order through the gateway's ``quote_check`` (limits in USDT for other quotes) and the risk
    kernel, as a placement: 0, a kernel reason code, or a ``(code, reason)`` refusal."""
    ro = 1 if rec.cmd.reduce_only else 0
    qc = gw.quote_check
    if qc is not None and (refusal := qc(rec.account, rec.instrument, rec.side, otype, price, qty, bool(ro),
                                         rec.pos_side)) is not None:  # fmt: skip
        return refusal
    return gw.gate.check(rec.account, rec.instrument, rec.side, otype, price, qty, ro, rec.pos_side, now)


def apply(gw: OrderGateway, cmd: AmendOrder, c: Checked) -> Outcome:
    """The in-place amend: the record and the reservation as the amended order, the amend to send."""
    coid, rec, ins, qty, new_price = cmd.client_order_id, c.rec, c.ins, c.qty, c.new_price
    new_cmd = msgspec.structs.replace(
        rec.cmd, qty=ins.qty_str(qty), price=rec.cmd.price if cmd.price is None else cmd.price
    )
    simple = c.simple
    if simple:  # less of the same order: less risk, in any trading state
        if rec.reserved:
            gw.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, rec.qty - qty, False)
    elif rec.reserved:
        open_old = max(0, rec.qty - rec.filled)
        gw.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, open_old, True)
        otype = C.ORDER_TYPE_CODES[rec.cmd.order_type]
        reason = gate(gw, rec, otype, new_price or 0, qty - rec.filled, gw.clock())
        if reason:
            reserve(rec, open_old, gw)
            return rejected(gw, cmd, rec, reason)
    gw.amends[coid] = PendingAmend(cmd, rec.cmd, rec.qty, not simple)
    rec.cmd, rec.qty = new_cmd, qty
    result = CommandResult(ok=True, client_order_id=coid, status=rec.status)
    return result, [], [msgspec.structs.replace(cmd, qty=new_cmd.qty, price=new_cmd.price)]


def settle(gw: OrderGateway, ev: OrderEvent) -> None:
    """The venue amended the order: its answer's quantity and price are the order's now."""
    pending = gw.amends.pop(ev.client_order_id, None)
    rec = gw.orders.get(ev.client_order_id)
    if pending is None or rec is None:
        return
    _, ins = gw.instruments.instrument(rec.instrument)
    qty = ins.qty(ev.qty, "amended quantity") if ev.qty else rec.qty
    if qty != rec.qty and rec.reserved and rec.is_open:  # the venue's rounding differs from ours: follow it
        _adjust(rec, qty - rec.qty, gw)
    rec.qty = qty
    rec.cmd = msgspec.structs.replace(rec.cmd, qty=ins.qty_str(qty), price=ev.price or rec.cmd.price)


def revert(gw: OrderGateway, client_order_id: str) -> None:
    """The venue did not amend: the order as it was, and its reservation (if it is still open)."""
    pending = gw.amends.pop(client_order_id, None)
    rec = gw.orders.get(client_order_id)
    if pending is None or rec is None:
        return
    if rec.reserved and rec.is_open:
        if pending.checked:
            gw.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, max(0, rec.qty - rec.filled), True)
            reserve(rec, max(0, pending.old_qty - rec.filled), gw)
        else:
            _adjust(rec, pending.old_qty - rec.qty, gw)
    rec.cmd, rec.qty = pending.old, pending.old_qty


def reserve(rec: OrderRecord, open_units: int, gw: OrderGateway) -> None:
    acc, pos = gw.state.acc, gw.state.pos
    acc[A_OPEN_ORDERS, rec.account] += 1
    field = P_OPEN_BUY if rec.side == C.BUY else P_OPEN_SELL
    pos[field, rec.account, rec.instrument, slot_of(rec.pos_side)] += open_units
    rec.reserved = True


def _adjust(rec: OrderRecord, units: int, gw: OrderGateway) -> None:
    field = P_OPEN_BUY if rec.side == C.BUY else P_OPEN_SELL
    pos = gw.state.pos
    s = slot_of(rec.pos_side)
    pos[field, rec.account, rec.instrument, s] = max(0, pos[field, rec.account, rec.instrument, s] + units)
