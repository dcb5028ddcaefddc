"""An amend the venue cannot make in place, made as a cancel-replace (Binance Spot: a new price or more quantity).

Binance Spot amends in place only a lower quantity (``order.amend.keepPriority``). Any other amend goes out as
``order.cancelReplace`` (STOP_ON_FAILURE): the venue cancels the old order and, only if that worked, places
a new one. On the daemon's side (``decide``, in the gateway, synchronously):

* the new order's client order id is derived from the amend itself (account, symbol, side, the quantity and
  price asked for, and the old order's id), so the same amend retried, or sent again after a restart, names
  the same order: a known one is answered with its status and nothing is sent (and after a restart the old
  order is cancelled already, so STOP_ON_FAILURE places nothing);
* the new order is the old one's command (same account, strategy, type, time in force, flags) at the new
  price, for the **remainder**: the amend's quantity is the order's total, as Binance's keepPriority counts
  it, less what the old order has filled (a new order on Binance knows nothing of the old one's fills);
* the risk kernel checks the new order before it goes out: the old reservation is released, the new order
  checked and reserved; on a refusal the old reservation is restored, an ``amend_rejected`` event carries the
  kernel's reason and nothing is sent;
* the old record goes ``pending_cancel`` (no reservation: its fills still move positions, by trade id) and
  both records name each other (``OrderRecord.replaces`` / ``replaced_by``).

``send`` (the router, after the decision) sends it and settles the answer: the old order ``canceled`` (its
filled quantity as the venue had it), the new one ``accepted``, and one ``amended`` event on the old order
naming its replacement. Fills of the old order that came between the decision and the cancel are not lost
(they are the old order's, by trade id) and the replacement is amended down in place so that old fills plus
the replacement stay the total asked for. A refusal of the whole (-2022: the old order was filled or gone)
puts the old order back as it was, with its reservation, and rejects the new one; -2021 (old cancelled, new
refused) rejects the new one and settles the old one by a query. An answer that never came leaves the new
order ``unknown``, resolved by its client order id, never re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from kernels import codes as C
from oms.model import AmendOrder, CancelOrder, ClientOrderId, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder
from oms.model import OrderType as OT
from oms.model.commands import CommandResult
from oms.venues.errors import UnknownOutcome, VenueError
from stream import amend
from stream.orders import OrderRecord

if TYPE_CHECKING:  # the gateway and the router import this module: annotations only
    from stream.accounts import AccountSession
    from stream.commands import OrderRouter
    from stream.gateway import OrderGateway

NEW_REFUSED = -2021  # Binance: the old order was cancelled, the new one refused


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """A cancel-replace to send: cancel ``old``, place ``new`` (its client order id set)."""

    account: str
    symbol: str
    old: str
    new: PlaceOrder
    total: int  # the order's total quantity in units (the old order's fills plus the replacement)


def replacement_id(cmd: AmendOrder, prefix: str = "oms") -> str:
    """The new order's client order id: a digest of the amend and of the order it replaces."""
    seed = PlaceOrder(account=cmd.account, symbol=cmd.symbol, side=cmd.side, order_type=OT.LIMIT,
                      qty=cmd.qty or "0", price=cmd.price, intent=f"replace:{cmd.client_order_id}")  # fmt: skip
    return ClientOrderId.derive(seed, prefix)


def decide(gw: OrderGateway, cmd: AmendOrder) -> amend.Outcome:
    """An amend on a market that amends only a lower quantity in place: that in place, anything else as a
    cancel-replace (see the module docstring)."""
    new_coid = replacement_id(cmd, gw.id_prefix)
    known = gw.orders.get(new_coid)
    if known is not None:  # the same amend again: the order it made, never a second one
        ok = known.status not in (OrderStatus.REJECTED, OrderStatus.EXPIRED)
        reason = f"replaces {cmd.client_order_id}"
        return CommandResult(ok=ok, client_order_id=new_coid, status=known.status, reason=reason), [], []
    c = amend.check(gw, cmd)
    if isinstance(c, tuple):
        return c
    if c.simple:
        return amend.apply(gw, cmd, c)
    rec, ins = c.rec, c.ins
    remainder = c.qty - rec.filled
    price = cmd.price if cmd.price is not None else rec.cmd.price
    new_cmd = msgspec.structs.replace(rec.cmd, qty=ins.qty_str(remainder), price=price, client_order_id=new_coid)
    open_old = max(0, rec.qty - rec.filled)
    reserved = rec.reserved
    if reserved:
        gw.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, open_old, True)
        rec.reserved = False
    now = gw.clock()
    otype = C.ORDER_TYPE_CODES[rec.cmd.order_type]
    reason = amend.gate(gw, rec, otype, c.new_price or 0, remainder, now)
    if reason:
        if reserved:
            amend.reserve(rec, open_old, gw)
        return amend.rejected(gw, cmd, rec, reason)
    gw.orders.add(OrderRecord(new_cmd, rec.account, rec.instrument, rec.side, rec.pos_side, remainder,
                              updated_ns=now, replaces=rec.client_order_id))  # fmt: skip
    rec.replaced_by = new_coid
    gw.orders.mark(rec, OrderEventKind.CANCEL_SENT, now)
    gw.accepted += 1
    result = CommandResult(ok=True, client_order_id=new_coid, status=OrderStatus.PENDING_NEW,
                           reason=f"replaces {rec.client_order_id}")  # fmt: skip
    return result, [], [ReplaceOrder(cmd.account, cmd.symbol, rec.client_order_id, new_cmd, c.qty)]


async def send(router: OrderRouter, session: AccountSession, item: ReplaceOrder) -> CommandResult:
    """Send the cancel-replace and settle its answer (see the module docstring)."""
    gw = router.gateway
    new = item.new.client_order_id or ""
    execution = session.clients_for(item.symbol).execution
    try:
        cancelled, placed = await execution.cancel_replace(item.old, item.new)  # type: ignore[attr-defined]
    except UnknownOutcome as exc:
        rec = gw.orders.get(new)
        if rec is not None and rec.is_open:
            gw.orders.mark(rec, OrderEventKind.OUTCOME_UNKNOWN, router.clock())
        await router.sink.emit(_event(router, item.new, OrderEventKind.OUTCOME_UNKNOWN, OrderStatus.UNKNOWN,
                                      reason=f"cancel-replace of {item.old}: {exc}"))  # fmt: skip
        router._spawn(router._resolve(session, item.new))
        router._spawn(router._cancel_not_found(session, _cancel(item)))  # the old order: as the venue has it
        return CommandResult(ok=True, client_order_id=new, status=OrderStatus.UNKNOWN, code="outcome_unknown",
                             reason=f"{exc}; resolving by client order id, not re-sending")  # fmt: skip
    except (VenueError, KeyError) as exc:
        return await _refused(router, session, item, exc)
    await router._apply(msgspec.structs.replace(cancelled, reason=f"replaced by {new}"))
    await router._apply(msgspec.structs.replace(placed, reason=f"replaces {item.old}"))
    old = gw.orders.get(item.old)
    total = gw.instruments.instrument(old.instrument)[1].qty_str(item.total) if old is not None else item.new.qty
    await router.sink.emit(  # the amend as asked (the total quantity, the new price), made by the replacement
        OrderEvent(
            account=item.account,
            symbol=item.symbol,
            client_order_id=item.old,
            venue_order_id=cancelled.venue_order_id,
            kind=OrderEventKind.AMENDED,
            status=old.status if old is not None else cancelled.status,
            side=item.new.side,
            order_type=item.new.order_type,
            qty=total,
            price=item.new.price,
            filled_qty=cancelled.filled_qty,
            reason=f"replaced by {new} (cancel-replace)",
            event_ns=router.clock(),
        )  # fmt: skip
    )
    await _trim(router, session, item, cancelled)
    rec = gw.orders.get(new)
    return CommandResult(ok=True, client_order_id=new, status=rec.status if rec else placed.status,
                         reason=f"replaces {item.old}")  # fmt: skip


async def _trim(router: OrderRouter, session: AccountSession, item: ReplaceOrder, cancelled: OrderEvent) -> None:
    """The old order filled more than the decision knew: lower the replacement by that much (in place)."""
    gw = router.gateway
    old, rec = gw.orders.get(item.old), gw.orders.get(item.new.client_order_id or "")
    if old is None or rec is None or not rec.is_open:
        return
    ins = gw.instruments.instrument(rec.instrument)[1]
    old_filled = max(old.filled, ins.qty(cancelled.filled_qty or "0", "filled quantity"))
    want = item.total - old_filled  # the replacement's total quantity, its own fills included
    if want >= rec.qty:
        return
    coid = rec.client_order_id
    if want > rec.filled:
        d = gw.amend(AmendOrder(account=item.account, symbol=item.symbol, client_order_id=coid, side=item.new.side,
                                qty=ins.qty_str(want)))  # fmt: skip
    else:
        d = gw.cancel(CancelOrder(account=item.account, symbol=item.symbol, client_order_id=coid))
    await router._carry_out(session, d)


async def _refused(router: OrderRouter, session: AccountSession, item: ReplaceOrder, exc: Exception) -> CommandResult:
    """Nothing placed: the new order rejected; the old one back as it was (-2022) or cancelled (-2021)."""
    from_code = getattr(exc, "code", None)
    gw = router.gateway
    code = f"venue:{from_code}" if from_code is not None else f"venue:{type(exc).__name__.lower()}"
    await router._apply(_event(router, item.new, OrderEventKind.REJECTED, OrderStatus.REJECTED, code=from_code,
                               reason=f"{code}: {exc}"))  # fmt: skip
    old = gw.orders.get(item.old)
    if from_code == NEW_REFUSED:  # the old order was cancelled: its state from the venue
        await router._cancel_not_found(session, _cancel(item))
    elif old is not None:
        old.replaced_by = None
        ev = OrderEvent(account=item.account, symbol=item.symbol, client_order_id=item.old,
                        kind=OrderEventKind.CANCEL_REJECTED, status=OrderStatus.NEW, reason=f"{code}: {exc}",
                        event_ns=router.clock())  # fmt: skip
        await router._apply(ev)
        if old.is_open and not old.reserved:
            amend.reserve(old, max(0, old.qty - old.filled), gw)
    status = old.status if old is not None else OrderStatus.REJECTED
    await router.sink.emit(
        OrderEvent(
            account=item.account,
            symbol=item.symbol,
            client_order_id=item.old,
            kind=OrderEventKind.AMEND_REJECTED,
            status=status,
            side=item.new.side,
            qty=item.new.qty,
            price=item.new.price,
            code=from_code,
            reason=f"{code}: {exc}",
            event_ns=router.clock(),
        )  # fmt: skip
    )
    router.metrics.rejections.labels(session.name, code).inc()
    return CommandResult(ok=False, client_order_id=item.old, status=status, code=code, reason=str(exc))


def _cancel(item: ReplaceOrder) -> CancelOrder:
    return CancelOrder(account=item.account, symbol=item.symbol, client_order_id=item.old)


def _event(router: OrderRouter, cmd: PlaceOrder, kind: OrderEventKind, status: OrderStatus, **kw) -> OrderEvent:
    return OrderEvent(account=cmd.account, symbol=cmd.symbol, client_order_id=cmd.client_order_id or "", kind=kind,
                      status=status, side=cmd.side, order_type=cmd.order_type, qty=cmd.qty, price=cmd.price,
                      event_ns=router.clock(), **kw)  # fmt: skip
