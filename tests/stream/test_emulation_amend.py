"""Amending emulated parent orders through NATS (the same ``AmendOrder`` as a plain order's), against the local
exchange: a TWAP's total and schedule mid-way (what filled kept, an amend below it refused, a retry changing
nothing), an iceberg's limit price (its resting clip cancel-replaced on Spot, the replacement recorded as the
parent's child) and quantity (the clip lowered in place), surviving a restart; each ends with the exchange's
ledger, JetStream and the daemon's state agreeing."""

from __future__ import annotations

from decimal import Decimal

from oms.model import AmendOrder, CancelOrder, Side
from oms.model.parents import ParentAmend, ParentStatus, child_order_id
from stream.replace import replacement_id
from tests.stream.conftest import place, request, unique, until
from tests.stream.emulation_kit import finished, kv_parent, parent, parent_events, send_parent, three_views_agree


def _amend(acct: str, pid: str, *, side: str = "buy", **kw) -> AmendOrder:
    return AmendOrder(account=acct, symbol="BTC/USDT", client_order_id=pid, side=Side(side), **kw)


async def test_twap_amended_mid_schedule_keeps_its_fills_and_takes_the_new_total(bench, nc):
    name = unique("amtw")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        pid = await send_parent(nc, acct, parent(acct, "twap", "0.004", slices=4, duration_s=6.0,
                                                 max_slippage_bps=200, intent="am1"))  # fmt: skip
        engine = d.emulation.parents
        w = engine.parents[pid]
        await until(lambda: Decimal(w.st.filled_qty) >= Decimal("0.001"), what="the first slice filled")
        # below what filled: refused, the parent as it was
        [r] = (await request(nc, acct, _amend(acct, pid, qty="0.0005"))).results
        assert not r.ok and r.code == "bad_amend" and "below" in r.reason and "filled" in r.reason, r
        # a field a twap does not take, and parent fields on a plain order: refused
        [r] = (await request(nc, acct, _amend(acct, pid, parent=ParentAmend(participation_pct="10")))).results
        assert not r.ok and r.code == "bad_amend" and "participation_pct" in r.reason
        [p] = (await request(nc, acct, place(acct, "0.001", "1000", intent="plain"))).results
        [r] = (await request(nc, acct, _amend(acct, p.client_order_id, parent=ParentAmend(slices=2)))).results
        assert not r.ok and r.code == "bad_amend" and "not a parent" in r.reason
        # a child amended behind its parent's back: refused
        child = w.st.children[0].client_order_id
        [r] = (await request(nc, acct, _amend(acct, child, qty="0.002"))).results
        assert not r.ok and r.code == "parent_child"
        # more, over a longer schedule: the slices still to come share what is left
        up = _amend(acct, pid, qty="0.006", parent=ParentAmend(duration_s=8.0, slices=5))
        [r] = (await request(nc, acct, up)).results
        assert r.ok and r.parent_status is ParentStatus.WORKING, r
        w = engine.parents[pid]
        assert w.st.cmd.qty == "0.006" and w.st.cmd.slices == 5 and w.st.amends == 1
        kept = w.ins.qty(w.st.amended_filled)
        assert kept >= 100 and kept + sum(q for _, q in w.plan) == 600  # lots: filled kept + the new slices
        assert all(t > w.st.amended_ns for t, _ in w.plan)
        [again] = (await request(nc, acct, up)).results  # the retry: nothing done twice
        assert again.ok and "unchanged" in again.reason
        assert engine.parents[pid].st.amends == 1
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=90)
        assert Decimal(st.filled_qty) == Decimal("0.006")
        ids = [c.client_order_id for c in st.children]
        assert ids == [child_order_id(pid, n) for n in range(len(ids))]  # IOC slices: none amended, none replaced
        await three_views_agree(nc, d, acct, pid)
        evs = await parent_events(nc, acct, pid)
        assert [e.kind for e in evs].count("amended") == 1
        assert (await kv_parent(nc, acct, pid)).cmd.qty == "0.006"
    finally:
        await d.stop()


async def test_iceberg_price_and_qty_amends_move_its_resting_clip_and_survive_a_restart(bench, nc):
    name = unique("amice")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    mid = bench.ticker()
    low, lower = (str((mid * Decimal(f)).quantize(Decimal("0.01"))) for f in ("0.97", "0.96"))
    try:
        pid = await send_parent(nc, acct, parent(acct, "iceberg", "0.003", price=low, display_qty="0.0015",
                                                 intent="am2"))  # fmt: skip
        engine = d.emulation.parents
        w = engine.parents[pid]
        await until(lambda: w.st.children, what="the first clip")
        clip = w.st.children[0].client_order_id
        await until(lambda: (r := d.gateway.orders.get(clip)) is not None and r.status.value == "new", what="rests")
        # a new price: on Spot a cancel-replace of the clip, the replacement recorded as the parent's child
        move = _amend(acct, pid, price=lower)
        [r] = (await request(nc, acct, move)).results
        assert r.ok, r
        w = engine.parents[pid]
        shown = w.ins.price_str(w.ins.price(lower))  # the child's amend carries the price as the instrument writes it
        rid = replacement_id(_amend(acct, clip, price=shown), d.gateway.id_prefix)
        assert [(c.client_order_id, c.replaces) for c in w.st.children] == [(clip, ""), (rid, clip)]
        rec = d.gateway.orders.get(rid)
        assert rec is not None and Decimal(rec.cmd.price) == Decimal(lower) and rec.is_open
        assert (await request(nc, acct, move)).results[0].reason.startswith("unchanged")
        # less: the clip lowered in place (Spot's keepPriority), no new child
        [r] = (await request(nc, acct, _amend(acct, pid, qty="0.001"))).results
        assert r.ok, r
        await until(lambda: d.gateway.orders.get(rid).qty == w.ins.qty("0.001"), what="the clip lowered")
        assert len(w.st.children) == 2 and w.total == w.ins.qty("0.001")
    finally:
        await d.stop()
    d2 = bench.daemon()
    await d2.start()
    try:
        w2 = d2.emulation.parents.parents[pid]
        assert w2.st.cmd.qty == "0.001" and Decimal(w2.st.cmd.price) == Decimal(lower) and w2.st.amends == 2
        assert w2.total == w2.ins.qty("0.001") and w2.price == w2.ins.price(lower)
        assert [c.client_order_id for c in w2.st.children] == [clip, rid]  # found at the venue, none re-sent
        assert d2.gateway.orders.get(rid) is not None
        [c] = (await request(nc, acct, CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=pid))).results
        assert c.ok and c.parent_status is ParentStatus.CANCELED
        st = await finished(d2, pid, status=ParentStatus.CANCELED)
        assert [c.client_order_id for c in st.children] == [clip, rid]
        execution = next(iter(d2.sessions[acct].links.values())).clients.execution
        old, new = [await execution.query_order("BTC/USDT", x) for x in (clip, rid)]
        assert old.status.value == "canceled" and Decimal(old.price) == Decimal(low)
        await until(lambda: _status(execution, rid, "canceled"), what="the replacement cancelled at the venue")
        assert Decimal(new.price) == Decimal(lower) and Decimal(new.qty) == Decimal("0.001")
        await three_views_agree(nc, d2, acct, pid)
    finally:
        await d2.stop()


async def _status(execution, coid: str, status: str) -> bool:
    return (await execution.query_order("BTC/USDT", coid)).status.value == status


async def test_oco_amend_moves_and_grows_its_take_profit_and_checks_the_stop(bench, nc):
    name = unique("amoco")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    mid = bench.ticker()
    tp, tp2, stop, bad = (str((mid * Decimal(f)).quantize(Decimal("0.01"))) for f in ("1.03", "1.02", "0.96", "1.04"))
    try:
        pid = await send_parent(nc, acct, parent(acct, "oco", "0.002", side="sell", price=tp, stop_price=stop,
                                                 intent="am3"))  # fmt: skip
        engine = d.emulation.parents
        w = engine.parents[pid]
        await until(lambda: w.st.children, what="the take-profit leg")
        leg = w.st.children[0].client_order_id
        await until(lambda: (r := d.gateway.orders.get(leg)) is not None and r.status.value == "new", what="rests")
        # a stop on the winning side of the new limit: refused as a new parent would be, nothing touched
        [r] = (await request(nc, acct, _amend(acct, pid, side="sell", parent=ParentAmend(stop_price=bad)))).results
        assert not r.ok and r.code == "parent:bad_params" and "losing side" in r.reason
        assert d.gateway.orders.get(leg).is_open and len(w.st.children) == 1
        # more at a nearer limit: the resting leg is replaced by one for the whole new quantity
        [r] = (await request(nc, acct, _amend(acct, pid, side="sell", qty="0.003", price=tp2))).results
        assert r.ok, r
        w = engine.parents[pid]
        [old, new] = w.st.children
        assert new.replaces == leg and new.role == "take_profit"
        rec = d.gateway.orders.get(new.client_order_id)
        assert rec.is_open and Decimal(rec.cmd.price) == Decimal(tp2) and rec.qty == w.ins.qty("0.003")
        [c] = (await request(nc, acct, CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=pid))).results
        assert c.ok and c.parent_status is ParentStatus.CANCELED
        await finished(d, pid, status=ParentStatus.CANCELED)
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()
