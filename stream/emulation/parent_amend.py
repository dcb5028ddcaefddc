"""Amending a working parent order: the gateway's ``AmendOrder`` naming a parent id (``ParentEngine.hook``).

``qty`` is the parent's new total, ``price`` its new limit, ``parent`` (``ParentAmend``) the algorithm's other
parameters (a field the algorithm does not take is refused, ``bad_amend``). The quantity filled stays filled: a
total below it is refused (``bad_amend``, naming the filled quantity); a total equal to it finishes the parent.
The amended command is checked as a new parent would be (``parent:bad_params``). Then, one amend or step of the
parent at a time (``Working.lock``):

* the open child follows: a resting child (an iceberg clip, an OCO take-profit) is amended to the new limit
  price and to what the parent has left (an OCO's take-profit leg grows with it, a clip only shrinks), through
  the same ``AmendOrder`` path as any order (``OrderRouter.execute``: in place, or as a cancel-replace where the
  venue amends only a lower quantity, ``stream.replace``); an IOC slice or market child bigger than what is
  left is cancelled. A replacement's client order id (``stream.replace.replacement_id``, derived from the amend)
  is recorded as a child of the parent (``ChildOrder.replaces``) *before* the amend is sent, so a restart finds it
  at the venue. A child amend refused leaves the parent as it was and refuses the parent amend with its reason;
* the parent takes the amended command, and remembers when (``ParentState.amended_ns``), what had filled and the
  volume seen then: a schedule's slices still to come share what is left (``plans.replan``), a pov parent's
  new participation counts from then. ``ParentState`` holds all of it (the KV bucket): a restart resumes the
  amended parent.

The same amend again (a retry, or after a restart) finds the parent already so and changes nothing (``ok``,
no child touched, no event); the replacement's derived id makes a repeated child amend the same order too.
Amending a parent's child directly is refused (``parent_child``: amend the parent); ``parent`` on an order that
is not a parent is refused (``bad_amend``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from oms.model import AmendOrder, CancelOrder
from oms.model.commands import CommandResult
from oms.model.parents import ChildOrder, ParentAlgo, ParentStatus
from stream.emulation import plans
from stream.replace import replacement_id

if TYPE_CHECKING:  # the engine imports this module
    from stream.emulation.parents import ParentEngine, Working

log = logging.getLogger("stream.emulation.parents")

_COMMON = frozenset({"qty"})
USES = {  # what an amend may change, by algorithm (besides the quantity)
    ParentAlgo.TRAILING_STOP: _COMMON | {"stop_price", "callback_rate"},
    ParentAlgo.OCO: _COMMON | {"price", "stop_price"},
    ParentAlgo.ICEBERG: _COMMON | {"price", "display_qty", "variance_pct", "duration_s"},
    ParentAlgo.TWAP: _COMMON | {"price", "duration_s", "slices"},
    ParentAlgo.VWAP: _COMMON | {"price", "duration_s", "profile"},
    ParentAlgo.PERCENT: _COMMON | {"price", "duration_s", "chunk_pct"},
    ParentAlgo.POV: _COMMON | {"price", "duration_s", "participation_pct"},
    ParentAlgo.LIQUIDITY: _COMMON | {"price", "duration_s"},
}
_RESTING = frozenset({"clip", "take_profit"})  # children that rest at the parent's limit price


async def hook(eng: ParentEngine, cmd: AmendOrder):
    """An ``AmendOrder``: the parent's amend, a refusal, or the command on to the gateway."""
    coid = cmd.client_order_id
    if coid in eng.parents:
        w = eng.parents[coid]
        async with w.lock:
            return await amend(eng, w, cmd)
    if cmd.parent is not None:
        eng.refused += 1
        why = f"order {coid} of {cmd.account} is not a parent order: it takes no parent parameters"
        return CommandResult(ok=False, client_order_id=coid, code="bad_amend", reason=why)
    pid = eng.children.get(coid)
    if pid is not None and coid not in eng.amending:
        eng.refused += 1
        why = f"order {coid} is a child of parent {pid}: amend the parent"
        return CommandResult(ok=False, client_order_id=coid, code="parent_child", reason=why)
    return cmd


def _refuse(eng: ParentEngine, w: Working, code: str, reason: str) -> CommandResult:
    eng.refused += 1
    return CommandResult(ok=False, client_order_id=w.pid, code=code, reason=reason, parent_status=w.st.status)


async def amend(eng: ParentEngine, w: Working, cmd: AmendOrder) -> CommandResult:
    st, old, pid = w.st, w.st.cmd, w.pid
    if cmd.account != w.account:
        return _refuse(eng, w, "unknown_order", f"parent {pid} is not of {cmd.account}")
    if cmd.symbol != old.symbol or cmd.side != old.side:
        why = f"parent {pid} is a {old.side} on {old.symbol}, not {cmd.side} {cmd.symbol}"
        return _refuse(eng, w, "bad_amend", why)
    if st.status is not ParentStatus.WORKING:
        return _refuse(eng, w, "not_open", f"parent {pid} is {st.status.value}: nothing to amend")
    changes = cmd.parent.changes() if cmd.parent is not None else {}
    if cmd.qty is not None:
        changes["qty"] = cmd.qty
    if cmd.price is not None:
        changes["price"] = cmd.price
    if not changes:
        return _refuse(eng, w, "bad_amend", f"amend of parent {pid} changes nothing")
    extra = sorted(set(changes) - USES[old.algo])
    if extra:
        return _refuse(eng, w, "bad_amend", f"a {old.algo} parent has no {', '.join(extra)} to amend")
    new_cmd = msgspec.structs.replace(old, **changes)
    if new_cmd == old:  # a retry of an amend made already (or one asking for what it is): nothing to do again
        return CommandResult(ok=True, client_order_id=pid, parent_status=st.status, reason="unchanged: already so")
    filled, open_ = eng._progress(w)
    try:
        total = w.ins.qty(new_cmd.qty)
    except ValueError as exc:
        return _refuse(eng, w, "bad_number", f"amend of parent {pid}: {exc}")
    if total < filled:
        done = w.ins.qty_str(filled)
        return _refuse(eng, w, "bad_amend", f"amend of parent {pid}: quantity {new_cmd.qty} is below the {done} filled")
    now = eng.clock()
    rescheduled = old.algo in plans.SCHEDULED or old.algo is ParentAlgo.ICEBERG
    new_st = msgspec.structs.replace(
        st, cmd=new_cmd, amends=st.amends + 1, amended_ns=now, amended_filled=w.ins.qty_str(filled),
        amended_volume=st.volume_seen, next_slice=0 if rescheduled else st.next_slice,
    )  # fmt: skip
    try:
        nw = eng._working(new_st)
    except ValueError as exc:
        return _refuse(eng, w, "parent:bad_params", f"amend of {old.algo} parent {pid}: {exc}")
    for ch in open_:
        refused = await _follow(eng, w, nw, ch, total - filled)
        if refused is not None:
            return refused
    w.st = new_st
    w.total, w.price, w.stop, w.rate_ppm, w.end_ns = nw.total, nw.price, nw.stop, nw.rate_ppm, nw.end_ns
    w.plan, w.base, w.volume_base = nw.plan, nw.base, nw.volume_base
    said = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
    w.notes.append(("amended", "", new_cmd.qty, f"{said} ({w.ins.qty_str(filled)} filled kept)"))
    await eng._save(w)
    eng.kick(w)
    return CommandResult(ok=True, client_order_id=pid, parent_status=ParentStatus.WORKING)


async def _follow(eng: ParentEngine, w: Working, nw: Working, ch: ChildOrder, left: int) -> CommandResult | None:
    """The open child ``ch`` made to fit the amended parent ``nw`` with ``left`` units to go; a refusal (the
    parent amend's) or None."""
    coid, st = ch.client_order_id, w.st
    account = ch.account or w.account  # a routed liquidity child is on its own account
    rec = eng.gateway.orders.get(coid)
    if rec is None or not rec.is_open:
        return None  # no answer yet, or done: the next step sees it
    ins, cmd = w.ins, st.cmd
    remaining = rec.qty - rec.filled
    resting = ch.role in _RESTING and not st.triggered
    want = left if (resting and ch.role == "take_profit") else min(remaining, left)
    price = ins.price_str(ins.price(rec.cmd.price)) if rec.cmd.price is not None else None  # compared as units
    new_price = ins.price_str(nw.price) if resting and nw.price else price
    if want <= 0 or (not resting and want < remaining):
        eng.amending.add(coid)
        try:
            await eng.execute([CancelOrder(account=account, symbol=cmd.symbol, client_order_id=coid)])
        finally:
            eng.amending.discard(coid)
        return None
    if want == remaining and new_price == price:
        return None
    child_amend = AmendOrder(
        account=account, symbol=cmd.symbol, client_order_id=coid, side=cmd.side,
        qty=ins.qty_str(rec.filled + want) if want != remaining else None,
        price=new_price if new_price != price else None,
    )  # fmt: skip
    replacement = None
    qty_only = getattr(eng.gateway, "amends_qty_only", None)
    lower_only = want < remaining and new_price == price
    if qty_only is not None and qty_only(account, cmd.symbol) and not lower_only:
        rid = replacement_id(child_amend, eng.gateway.id_prefix)
        replacement = next((c for c in st.children if c.client_order_id == rid), None)
        if replacement is None:  # recorded before it is sent: a restart asks the venue for it
            replacement = ChildOrder(n=len(st.children), client_order_id=rid, qty=ins.qty_str(want), price=new_price,
                                     role=ch.role, replaces=coid, account=ch.account)  # fmt: skip
            st.children.append(replacement)
            eng.children[rid] = w.pid
            await eng._save(w)
    eng.amending.add(coid)
    try:
        [res] = await eng.execute([child_amend])
    finally:
        eng.amending.discard(coid)
    if replacement is not None:
        if res.client_order_id == replacement.client_order_id and eng.gateway.orders.get(res.client_order_id):
            replacement.sent = True
        elif eng.gateway.orders.get(replacement.client_order_id) is None:
            replacement.status = "not_found"  # never placed (refused before, or made in place)
    if not res.ok:
        log.warning("parent %s of %s: amend of child %s refused (%s: %s)", w.pid, w.account, coid, res.code,
                    res.reason)  # fmt: skip
        w.notes.append(("amend_refused", coid, child_amend.qty, f"{res.code}: {res.reason}"))
        await eng._save(w)
        eng.kick(w)
        return _refuse(eng, w, res.code or "amend_refused", f"amend of parent {w.pid}: child {coid}: {res.reason}")
    return None
