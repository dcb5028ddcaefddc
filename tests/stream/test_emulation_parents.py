"""Emulated parent orders through NATS into the daemon, against the local exchange: TWAP, iceberg, trailing
stop, OCO; each ends with the exchange's ledger, JetStream and the daemon's state agreeing."""

from __future__ import annotations

from decimal import Decimal

from oms.model.parents import ParentStatus, child_order_id
from tests.stream.conftest import request, unique
from tests.stream.emulation_kit import finished, parent, send_parent, three_views_agree


async def test_twap_slices_fill_over_time_with_deterministic_child_ids(bench, nc):
    name = unique("twap")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        cmd = parent(acct, "twap", "0.003", slices=3, duration_s=3.0, max_slippage_bps=200, intent="t1")
        pid = await send_parent(nc, acct, cmd)
        again = (await request(nc, acct, cmd)).results[0]  # the same command: the same parent, nothing new
        assert again.client_order_id == pid
        st = await finished(d, pid, status=ParentStatus.DONE)
        assert [ch.client_order_id for ch in st.children] == [child_order_id(pid, n) for n in range(len(st.children))]
        # three slices planned (kernels.execution.split_twap); slices that came due together go out as one
        assert [q for _, q in d.emulation.parents.parents[pid].plan] == [100, 100, 100]
        assert 1 <= len(st.children) <= 3 and all(ch.role == "slice" for ch in st.children)
        _, fills = await three_views_agree(nc, d, acct, pid)
        assert all(f.slippage_bps is not None and f.reference_price for f in fills)  # realised slippage recorded
        assert Decimal(st.filled_qty) == Decimal("0.003")
    finally:
        await d.stop()


async def test_iceberg_shows_one_clip_at_a_time(bench, nc):
    name = unique("ice")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))  # marketable clips
        pid = await send_parent(nc, acct, parent(acct, "iceberg", "0.004", price=price, display_qty="0.001",
                                                 variance_pct="20", intent="i1"))  # fmt: skip
        st = await finished(d, pid, status=ParentStatus.DONE)
        assert len(st.children) >= 3 and all(ch.role == "clip" for ch in st.children)
        assert all(Decimal(ch.qty) <= Decimal("0.002") for ch in st.children)
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()


async def test_trailing_stop_fires_once_the_price_retraces(bench, nc):
    name = unique("trail")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        # a retracement of 0.0001% from the best price is reached by the replayed market within seconds
        pid = await send_parent(nc, acct, parent(acct, "trailing_stop", "0.002", side="sell", callback_rate="0.0001",
                                                 max_slippage_bps=200, intent="tr1"))  # fmt: skip
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=90)
        assert st.triggered and st.best_price is not None
        assert st.children[0].role == "trigger"
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()


async def test_oco_take_profit_fills_and_the_stop_never_fires(bench, nc):
    name = unique("oco")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        mid = bench.ticker()
        tp = str((mid * Decimal("0.98")).quantize(Decimal("0.01")))  # a sell limit below the market: fills
        stop = str((mid * Decimal("0.90")).quantize(Decimal("0.01")))
        pid = await send_parent(nc, acct, parent(acct, "oco", "0.002", side="sell", price=tp, stop_price=stop,
                                                 intent="o1"))  # fmt: skip
        st = await finished(d, pid, status=ParentStatus.DONE)
        assert [ch.role for ch in st.children] == ["take_profit"] and not st.triggered
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()


async def test_oco_stop_cancels_the_take_profit_and_exits_at_market(bench, nc):
    name = unique("ocos")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        mid = bench.ticker()
        tp = str((mid * Decimal("1.10")).quantize(Decimal("0.01")))  # rests far above
        stop = str((mid * Decimal("1.05")).quantize(Decimal("0.01")))  # a sell stop above the market: hit at once
        pid = await send_parent(nc, acct, parent(acct, "oco", "0.002", side="sell", price=tp, stop_price=stop,
                                                 max_slippage_bps=200, intent="o2"))  # fmt: skip
        st = await finished(d, pid, status=ParentStatus.DONE)
        assert st.triggered and [ch.role for ch in st.children][-1] == "stop"
        assert all(ch.status in ("canceled", "filled", "expired") for ch in st.children)
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()


async def test_bad_parents_are_refused_with_a_reason_and_cancel_stops_one(bench, nc):
    name = unique("badp")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        [r] = (await request(nc, acct, parent(acct, "twap", "0.003", duration_s=5, intent="b1"))).results
        assert not r.ok and r.code == "parent:bad_params" and "slices" in r.reason
        [r] = (await request(nc, acct, parent(acct, "oco", "0.003", side="sell", price="1", stop_price="2"))).results
        assert not r.ok and "losing side" in r.reason
        [r] = (await request(nc, acct, parent(acct, "pov", "0.003", participation_pct="150", duration_s=5))).results
        assert not r.ok and "participation_pct" in r.reason
        pid = await send_parent(nc, acct, parent(acct, "twap", "0.003", slices=3, duration_s=600, intent="long"))
        from oms.model import CancelOrder

        [c] = (await request(nc, acct, CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=pid))).results
        assert c.ok and c.parent_status is ParentStatus.CANCELED
        await three_views_agree(nc, d, acct, pid)
    finally:
        await d.stop()
