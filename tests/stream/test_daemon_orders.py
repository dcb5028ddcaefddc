"""Orders through NATS into the in-process daemon, against the real local exchange and nats-server: they reach
the exchange, fill, and leave the right JetStream events, KV state, positions and log lines; a risk breach is
refused with its reason; cancels; bad commands are refused, counted and the daemon carries on."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from oms.model import Fill, Order, OrderEvent, OrderStatus, Position
from oms.model.codec import decode
from tests.stream.conftest import place, request, unique, until


async def events(nc: nats.NATS, stream: str, subject: str) -> list:
    """Every message stored in ``stream`` on ``subject``, decoded (an ephemeral consumer from the start)."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    sub = await js.subscribe(subject, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    out = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            out.append(decode(msg.data))
    finally:
        await sub.unsubscribe()
    return out


async def kv(nc: nats.NATS, account: str, kind: str):
    exchange, name = account.split("/")
    bucket = await nc.jetstream().key_value("oms_state")
    try:
        return (await bucket.get(f"{exchange}.{name}.{kind}")).value
    except Exception:
        return None


async def test_an_order_over_nats_fills_and_leaves_events_state_positions_and_logs(bench, nc):
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        price = str((bench.ticker() * Decimal("1.02")).quantize(Decimal("0.01")))  # marketable: fills at once
        reply = await request(nc, acct, place(acct, "0.01", price, intent="fill-me"))
        [res] = reply.results
        assert res.ok, res
        coid = res.client_order_id
        subject_acct = acct.replace("/", ".")
        fills = await until(lambda: _fills(nc, subject_acct, coid), what="the fill in TRADES")
        assert sum(Decimal(f.qty) for f in fills) == Decimal("0.01")
        orders = await events(nc, "ORDERS", f"orders.{subject_acct}.spot.BTC-USDT")
        mine = [e for e in orders if isinstance(e, OrderEvent) and e.client_order_id == coid]
        assert mine and mine[-1].status is OrderStatus.FILLED
        # the exchange has it, filled, under the daemon's client order id
        order = (
            await d.sessions[acct]
            .links[next(iter(d.sessions[acct].links))]
            .clients.execution.query_order("BTC/USDT", coid)
        )
        assert order.status is OrderStatus.FILLED

        # Spot positions are the base asset's holdings (reconciled from the balance at start: 2 BTC funded),
        # moved by the daemon's own fills: 2 + 0.01
        async def held() -> list[Position] | None:
            got = await _kv_position(nc, acct)
            return got if got and Decimal(got[0].qty) == Decimal("2.01") else None

        [pos] = await until(held, what="the BTC position (2 held + 0.01 bought) in the KV bucket")
        assert pos.symbol == "BTC/USDT"
        logs = list((bench.data_dir / "logs").rglob(f"{name}/trades.jsonl"))
        assert logs and coid in logs[0].read_text()
        assert coid in next((bench.data_dir / "logs").rglob(f"{name}/orders.jsonl")).read_text()
        # the same command again is answered from memory and never sent twice
        again = await request(nc, acct, place(acct, "0.01", price, intent="fill-me"))
        assert again.results[0].client_order_id == coid and again.results[0].status is OrderStatus.FILLED
        assert int(d.metrics.orders.labels(acct)._value.get()) == 1
    finally:
        await d.stop()


async def _fills(nc, subject_acct: str, coid: str) -> list[Fill]:
    found = [e for e in await events(nc, "TRADES", f"trades.{subject_acct}.>") if isinstance(e, Fill)]
    mine = [f for f in found if f.client_order_id == coid]
    return mine if sum(Decimal(f.qty) for f in mine) >= Decimal("0.01") else []


async def _kv_position(nc, acct: str):
    raw = await kv(nc, acct, "positions")
    if not raw:
        return None
    return msgspec.json.decode(raw, type=list[Position]) or None


async def test_resting_order_cancelled_over_nats_and_open_orders_follow(bench, nc):
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))  # rests below the market
        [res] = (await request(nc, acct, place(acct, "0.01", price, intent="rest"))).results
        assert res.ok and res.status is OrderStatus.NEW, res
        open_kv = await until(lambda: _open_orders(nc, acct), what="the open order in KV")
        assert [o.client_order_id for o in open_kv] == [res.client_order_id]
        health = d.account_health(acct)
        assert health["open_orders"] == 1 and health["trading"] and health["connected"]
        from oms.model import CancelOrder

        cancel = CancelOrder(account=acct, symbol="BTC/USDT", client_order_id=res.client_order_id)
        [c] = (await request(nc, acct, cancel)).results
        assert c.ok and c.status is OrderStatus.CANCELED, c
        await until(lambda: _no_open_orders(nc, acct), what="open orders emptied in KV")
    finally:
        await d.stop()


async def _open_orders(nc, acct):
    raw = await kv(nc, acct, "open_orders")
    return msgspec.json.decode(raw, type=list[Order]) if raw else None


async def _no_open_orders(nc, acct):
    raw = await kv(nc, acct, "open_orders")
    return raw is not None and msgspec.json.decode(raw, type=list[Order]) == []


async def test_a_risk_breach_is_refused_with_its_reason_and_nothing_reaches_the_exchange(bench, nc):
    name = unique()
    bench.write([name], risk={name: {"max_order_notional_usdt": 500}})
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        price = str((bench.ticker() * Decimal("0.99")).quantize(Decimal("0.01")))
        [res] = (await request(nc, acct, place(acct, "0.1", price, intent="too-big"))).results
        assert not res.ok and res.code == "risk:MAX_ORDER_NOTIONAL" and res.status is OrderStatus.REJECTED
        assert "notional" in res.reason.lower()
        rejected = await until(lambda: _rejections(nc, acct, res.client_order_id), what="the rejection event")
        assert rejected[0].reason.startswith("risk:MAX_ORDER_NOTIONAL")
        links = d.sessions[acct].links
        assert await next(iter(links.values())).clients.execution.open_orders("BTC/USDT") == []
        body = d.metrics.render().decode()
        assert f'oms_rejections_total{{account="{acct}",reason="risk:MAX_ORDER_NOTIONAL"}} 1.0' in body
    finally:
        await d.stop()


async def _rejections(nc, acct, coid):
    subject = f"orders.{acct.replace('/', '.')}.spot.BTC-USDT"
    return [e for e in await events(nc, "ORDERS", subject) if e.client_order_id == coid and e.reason]


async def test_bad_commands_are_refused_counted_and_the_daemon_carries_on(bench, nc):
    name = unique()
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        garbage = await request(nc, acct, raw=b"\xff not json")
        assert garbage.code == "malformed" and garbage.error and not garbage.results
        version = await request(nc, acct, raw=b'{"v": 99, "commands": []}')
        assert version.code == "version" and "99" in version.error
        unknown = await request(nc, acct, raw=b'{"v": 1, "commands": [{"type": "launch_rocket"}]}')
        assert unknown.code == "malformed"
        other = bench.account("someone_else")
        wrong = await request(nc, acct, place(other, "0.01", "100"))
        assert wrong.code == "account" and other in wrong.error
        [sym] = (
            await request(
                nc,
                acct,
                place(acct, "0.01", "100").__class__(
                    account=acct, symbol="DOGE/USDT", side="buy", order_type="limit", qty="1", price="1", intent="x"
                ),
            )
        ).results
        assert not sym.ok and sym.code == "unknown_symbol"
        body = d.metrics.render().decode()
        assert 'oms_bad_commands_total{reason="malformed"} 2.0' in body
        assert 'oms_bad_commands_total{reason="version"} 1.0' in body
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        [ok] = (await request(nc, acct, place(acct, "0.01", price, intent="after-garbage"))).results
        assert ok.ok and ok.status is OrderStatus.NEW
    finally:
        await d.stop()


async def test_a_requests_placements_go_one_by_one_each_after_the_venues_answer(bench, nc):
    """Why the daemon's NATS path does not decide a request's placements in one batch: each goes to the gateway
    after the venue answered the one before it. With one open order allowed, a first order the venue fills at
    once frees its slot for the second one of the same request; deciding both before sending either would have
    refused the second (risk:MAX_OPEN_ORDERS). A third one, resting, then holds the slot against a fourth."""
    name = unique()
    bench.write([name], risk={name: {"max_open_orders": 1}})
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        ticker = bench.ticker()
        takes = str((ticker * Decimal("1.02")).quantize(Decimal("0.01")))  # marketable: fills at once
        rests = str((ticker * Decimal("0.97")).quantize(Decimal("0.01")))  # rests below the market
        cmds = [place(acct, "0.01", takes, intent="a"), place(acct, "0.01", takes, intent="b"),
                place(acct, "0.01", rests, intent="c"), place(acct, "0.01", rests, intent="d")]  # fmt: skip
        reply = await request(nc, acct, *cmds)
        assert [r.ok for r in reply.results] == [True, True, True, False], reply
        assert [r.status for r in reply.results[:3]] == [OrderStatus.FILLED, OrderStatus.FILLED, OrderStatus.NEW]
        assert reply.results[3].code == "risk:MAX_OPEN_ORDERS"
        gw = d.gateway
        assert [gw.orders.get(r.client_order_id).status for r in reply.results[:3]] == [
            OrderStatus.FILLED, OrderStatus.FILLED, OrderStatus.NEW,
        ]  # fmt: skip
        links = d.sessions[acct].links
        resting = await next(iter(links.values())).clients.execution.open_orders("BTC/USDT")
        assert [o.client_order_id for o in resting] == [reply.results[2].client_order_id]
    finally:
        await d.stop()
