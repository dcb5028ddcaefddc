"""nats-server stopped and restarted while the daemon trades: events wait in the fsync'd outbox and reach
JetStream when it is back, each exactly once (fills by trade id equal the exchange's), and the daemon
answers commands over NATS again."""

from __future__ import annotations

from decimal import Decimal

import nats

from oms.model import Fill, OrderStatus
from oms.model.codec import decode
from oms.services.nats import NatsService
from tests.harness.servers import loopback_settings
from tests.stream.conftest import Bench, place, request, unique, until


async def stored(nc, subject: str) -> list:
    js = nc.jetstream()
    sub = await js.subscribe(subject, ordered_consumer=True)
    out = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return out
            out.append(decode(msg.data))
    finally:
        await sub.unsubscribe()


async def test_nats_restarted_mid_run_loses_and_duplicates_no_event(exchange, tmp_path):
    svc = NatsService(loopback_settings(tmp_path / "own-nats"))
    svc.up()
    bench = Bench(exchange, svc, tmp_path)
    name = unique("outage")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    nc = None
    try:
        price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))
        before = await d.router.execute([place(acct, "0.01", price, intent="before")])
        assert before[0].ok
        svc.down()
        await until(lambda: not d.nc.is_connected, what="the daemon to see NATS gone")
        during = await d.router.execute([place(acct, "0.01", price, intent=f"during-{k}") for k in range(3)])
        assert all(r.ok and r.status is OrderStatus.FILLED for r in during), during
        await until(lambda: len(d.publisher.outbox) > 0, what="events in the outbox")
        svc.up()  # same port, same store
        await until(lambda: d.nc.is_connected and d.publisher.backlog == 0, timeout=60, what="the outbox drained")
        nc = await bench.connect("trader")
        coids = {r.client_order_id for r in before + during}
        fills = [f for f in await stored(nc, f"trades.binance.{name}.>") if isinstance(f, Fill)]
        assert {f.client_order_id for f in fills} == coids
        trade_ids = [f.trade_id for f in fills]
        assert len(trade_ids) == len(set(trade_ids))  # none twice
        execution = next(iter(d.sessions[acct].links.values())).clients.execution
        venue = [f for f in await execution.fills("BTC/USDT", d.started_ns - 60 * 10**9) if f.client_order_id in coids]
        assert sorted(trade_ids) == sorted(f.trade_id for f in venue)  # none lost
        orders = await stored(nc, f"orders.binance.{name}.>")
        assert {e.client_order_id for e in orders} == coids
        # the venue's answer and the stream's execution report are two events; neither is stored twice
        ids = [(e.client_order_id, e.kind, e.fill.trade_id if e.fill else None) for e in orders]
        assert len(ids) == len(set(ids)), ids
        rest = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        [after] = (await request(nc, acct, place(acct, "0.01", rest, intent="after"))).results
        assert after.ok and after.status is OrderStatus.NEW
    finally:
        if nc is not None:
            await nc.close()
        await d.stop()
        svc.down()
