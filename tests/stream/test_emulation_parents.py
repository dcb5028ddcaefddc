"""Emulated parent orders through NATS into the daemon, against the local exchange: TWAP, iceberg, trailing
stop, OCO; each ends with the exchange's ledger, JetStream and the daemon's state agreeing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from localex import clients
from oms.model.parents import ParentStatus, child_order_id
from tests.stream.conftest import request, unique, until
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


async def test_vwap_percent_pov_and_liquidity_parents_fill(bench, nc):
    name, taker = unique("algos"), unique("tkr")
    bench.write([name, taker])
    acct = bench.account(name)
    d = bench.daemon(accounts=[acct])  # the taker is another participant of the market, not the daemon's
    await d.start()
    try:
        marketable = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        vwap = await send_parent(nc, acct, parent(acct, "vwap", "0.004", profile=(1, 2, 1), duration_s=2.0,
                                                  max_slippage_bps=200, intent="v"))  # fmt: skip
        pct = await send_parent(nc, acct, parent(acct, "percent", "0.004", chunk_pct="50", duration_s=1.0,
                                                 max_slippage_bps=200, intent="p"))  # fmt: skip
        liq = await send_parent(nc, acct, parent(acct, "liquidity", "0.003", price=marketable, intent="l"))
        pov = await send_parent(nc, acct, parent(acct, "pov", "0.002", participation_pct="50", duration_s=120,
                                                 max_slippage_bps=200, intent="pv"))  # fmt: skip
        plans = {pid: [q for _, q in d.emulation.parents.parents[pid].plan] for pid in (vwap, pct)}
        assert plans == {vwap: [100, 200, 100], pct: [200, 200]}  # split_vwap / split_percent, in lots
        # another participant trades 0.004: the pov parent may take half of it. The other parents' fills and its
        # own are the daemon's volume, not the market's: they alone would never let it finish.
        _, key, secret = bench.accounts[taker]
        other = clients.binance_sync(bench.exchange.url, key, secret)
        await asyncio.to_thread(other.create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.004")
        for pid in (vwap, pct, liq, pov):
            await finished(d, pid, status=ParentStatus.DONE, timeout=90)
            await three_views_agree(nc, d, acct, pid)
        # the others' volume it saw: the participant's 0.004 (and the exchange's own flow), never the daemon's fills
        st = d.emulation.parents.parents[pov].st
        assert Decimal(st.volume_seen) >= Decimal("0.004")
        i = d.emulation.parents.parents[pov].i
        await until(lambda: not d.emulation.book._own.get(i), what="every own fill matched to its public trade")
    finally:
        await d.stop()


async def test_a_restarted_daemon_resumes_its_parents_and_never_repeats_a_child(bench, nc):
    """A resting iceberg clip and a TWAP mid-schedule survive a restart: the new daemon finds the clip at the venue
    by its id (adopted, not re-sent), a child recorded but never sent is asked for and skipped, one recorded
    whose frame went out and that filled meanwhile is found with its fill named after it (in TRADES, not under
    the venue's order id), and both parents finish with each child id used once."""
    name = unique("resume")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        low = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))  # rests below the market
        ice = await send_parent(nc, acct, parent(acct, "iceberg", "0.003", price=low, display_qty="0.0015",
                                                 intent="r1"))  # fmt: skip
        twap = await send_parent(nc, acct, parent(acct, "twap", "0.004", slices=4, duration_s=8.0,
                                                  max_slippage_bps=200, intent="r2"))  # fmt: skip
        await until(lambda: d.emulation.parents.parents[ice].st.children, what="the first clip")
        await until(lambda: len(d.emulation.parents.parents[twap].st.children) >= 1, what="a twap slice")
        clip = d.emulation.parents.parents[ice].st.children[0].client_order_id
        await until(
            lambda: (r := d.gateway.orders.get(clip)) is not None and r.status.value == "new", what="clip rests"
        )
    finally:
        await d.stop()
    # as if the daemon had died between recording a slice and sending it: a child the venue never saw
    kv = await nc.jetstream().key_value("oms_parents")
    exchange, acc_name = acct.split("/")
    key = f"{exchange}.{acc_name}.{twap}"
    import msgspec

    from oms.model.parents import ChildOrder, ParentState

    st = msgspec.json.decode((await kv.get(key)).value, type=ParentState)
    ghost = child_order_id(twap, len(st.children))
    st.children.append(ChildOrder(n=len(st.children), client_order_id=ghost, qty="0.001", role="slice"))
    # and one that died after its frame went out: the venue has it, filled while the daemon was down
    sent = child_order_id(twap, len(st.children))
    st.children.append(ChildOrder(n=len(st.children), client_order_id=sent, qty="0.001", role="slice"))
    _, api_key, secret = bench.accounts[name]
    venue = clients.binance_sync(bench.exchange.url, api_key, secret)
    await asyncio.to_thread(venue.create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001",
                            newClientOrderId=sent)  # fmt: skip
    writer = await bench.connect("daemon")  # only the daemon's identity writes the bucket
    try:
        await (await writer.jetstream().key_value("oms_parents")).put(key, msgspec.json.encode(st))
    finally:
        await writer.close()
    d2 = bench.daemon()
    await d2.start()
    try:
        engine = d2.emulation.parents
        assert {ice, twap} <= set(engine.parents)
        assert d2.gateway.orders.get(clip) is not None  # found at the venue by its id
        st2 = await finished(d2, twap, status=ParentStatus.DONE, timeout=90)
        assert next(c for c in st2.children if c.client_order_id == ghost).status == "not_found"
        assert next(c for c in st2.children if c.client_order_id == sent).status == "filled"
        ids = [c.client_order_id for c in st2.children]
        assert ids == [child_order_id(twap, n) for n in range(len(ids))]  # each number once, none re-sent
        [c] = (await request(nc, acct, _cancel(acct, ice))).results
        assert c.ok and c.parent_status is ParentStatus.CANCELED
        ist = await finished(d2, ice, status=ParentStatus.CANCELED)
        assert [ch.client_order_id for ch in ist.children] == [clip]  # the clip was never placed again
        execution = next(iter(d2.sessions[acct].links.values())).clients.execution
        await until(lambda: _gone(execution, clip), what="the clip cancelled at the venue")
        await three_views_agree(nc, d2, acct, twap)
        await three_views_agree(nc, d2, acct, ice)
    finally:
        await d2.stop()


def _cancel(acct: str, pid: str):
    from oms.model import CancelOrder

    return CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=pid)


async def _gone(execution, coid: str) -> bool:
    return (await execution.query_order("BTC/USDT", coid)).status.value == "canceled"
