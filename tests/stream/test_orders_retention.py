"""The bounded memory of finished orders (stream.orders): a finished order is kept for the retention window
after it finished and within the cap of finished records (oldest finished first), an open one always; and what
forgetting does through the gateway: a late fill within the window still reaches the positions, a forgotten
order's event is an unknown order's, its command is placed again (as after a restart)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.state import A_OPEN_ORDERS
from oms.model import (
    AmendOrder,
    Fill,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from oms.model.units import money_to_units
from stream.gateway import OrderGateway
from stream.orders import OrderRecord, OrderTracker
from tests.harness.gateway_kit import btc_gateway

ACC = "binance/sub_mm"
S = 1_000_000_000  # ns in a second


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 10 * S

    def __call__(self) -> int:
        return self.now


def record(n: int, account: int = 0) -> OrderRecord:
    cmd = PlaceOrder(account=ACC, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.01",
                     price="60000", client_order_id=f"c{n}")  # fmt: skip
    return OrderRecord(cmd, account, 0, 1, 0, 1000)


def event(coid: str, kind: OrderEventKind, status: OrderStatus, trade: str | None = None) -> OrderEvent:
    f = None
    if trade is not None:
        f = Fill(account=ACC, symbol="BTC/USDT", client_order_id=coid, venue_order_id="7", trade_id=trade,
                 side=Side.BUY, price="60000", qty="0.01", event_ns=1)  # fmt: skip
    return OrderEvent(account=ACC, symbol="BTC/USDT", client_order_id=coid, kind=kind, status=status, fill=f,
                      event_ns=1)  # fmt: skip


def finish(t: OrderTracker, rec: OrderRecord) -> None:
    t.apply(rec, event(rec.client_order_id, OrderEventKind.CANCELED, OrderStatus.CANCELED), 0)


def tracker(clock: Clock, retention_s: float = 60, max_finished: int = 1000, sweep_every: int = 1):
    t = OrderTracker(retention_s=retention_s, max_finished=max_finished, sweep_every=sweep_every, clock=clock)
    gone: list[str] = []
    t.forget_listeners.append(lambda coid, rec: gone.append(coid))
    return t, gone


def test_a_finished_order_is_kept_for_the_window_then_forgotten():
    clock = Clock()
    t, gone = tracker(clock, retention_s=60)
    recs = [record(n) for n in range(3)]
    for r in recs:
        t.add(r)
    finish(t, recs[0])
    clock.now += 30 * S
    finish(t, recs[1])
    clock.now += 30 * S  # recs[0] finished exactly 60 s ago: its window has passed
    assert t.sweep() == 1 and gone == ["c0"] and t.get("c0") is None
    assert t.get("c1") is recs[1] and t.get("c2") is recs[2] and t.finished == 1
    clock.now += 29 * S
    assert t.sweep() == 0 and t.get("c1") is recs[1]
    clock.now += 1 * S
    assert t.sweep() == 1 and gone == ["c0", "c1"] and len(t) == 1  # the open one stays, for ever
    clock.now += 10**6 * S
    assert t.sweep() == 0 and t.get("c2") is recs[2] and t.open_orders(0) == [recs[2]]
    assert t.forgotten == 2 and t.forgotten_early == 0


def test_beyond_the_cap_the_oldest_finished_go_first_and_early_ones_are_counted():
    clock = Clock()
    t, gone = tracker(clock, retention_s=3600, max_finished=3)
    recs = [record(n) for n in range(10)]
    for r in recs:
        t.add(r)
    order = [4, 1, 7, 0, 9, 2]  # the order they finish in, not the order they were placed in
    for k in order:
        clock.now += S
        finish(t, recs[k])
    assert gone == ["c4", "c1", "c7"] and t.finished == 3
    assert {r.client_order_id for r in t} == {f"c{k}" for k in (0, 9, 2, 3, 5, 6, 8)}
    assert t.forgotten == t.forgotten_early == 3  # all well inside their hour


def test_a_sweep_runs_every_n_finishes_and_holds_at_most_n_minus_1_over_the_cap():
    clock = Clock()
    t, gone = tracker(clock, retention_s=3600, max_finished=10, sweep_every=8)
    for n in range(100):
        r = record(n)
        t.add(r)
        finish(t, r)
        assert t.finished <= 10 + 8 - 1
    assert t.finished <= 17 and len(gone) == 100 - t.finished
    assert gone == [f"c{n}" for n in range(len(gone))]  # oldest finish first


def test_a_refinished_order_is_queued_once_and_keeps_its_place():
    clock = Clock()
    t, gone = tracker(clock, retention_s=60)
    a, b = record(1), record(2)
    t.add(a)
    t.add(b)
    finish(t, a)
    first = a.finished_ns
    clock.now += 20 * S
    finish(t, b)
    clock.now += 20 * S
    # a late partial fill of the canceled order (the stream's cancel beat REST's fill), and its cancel replayed
    ch = t.apply(a, event("c1", OrderEventKind.PARTIAL_FILL, OrderStatus.CANCELED, trade="t1"), 1000)
    assert ch.new_fill is not None and a.status is OrderStatus.CANCELED
    finish(t, a)
    assert t.finished == 2 and a.finished_ns == first  # not queued again, not moved to the young end
    clock.now += 20 * S  # 60 s after a's first finish: a goes, b (40 s) stays
    assert t.sweep() == 1 and gone == ["c1"]
    assert t.sweep() == 0 and gone == ["c1"]  # once


def test_a_new_order_under_a_forgotten_id_is_not_forgotten_for_the_old_one():
    clock = Clock()
    t, gone = tracker(clock, retention_s=60, max_finished=1000, sweep_every=1000)
    old = record(1)
    t.add(old)
    finish(t, old)
    fresh = record(1)  # a new open record under the same id while the old one is still queued
    t.add(fresh)
    clock.now += 1000 * S
    assert t.sweep() == 1 and gone == ["c1"]  # the old one forgotten (its listeners told) ...
    assert t.get("c1") is fresh and t.open_orders(0) == [fresh]  # ... the new one kept


ops = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.integers(0, 2)),  # a new order on account 0-2
        st.tuples(st.just("finish"), st.integers(0, 200)),  # the k-th open order finishes (modulo)
        st.tuples(st.just("mark"), st.integers(0, 200)),  # a cancel sent for an open one (stays open)
        st.tuples(st.just("late"), st.integers(0, 200)),  # a late fill of a canceled one still held (re-finished)
        st.tuples(st.just("wait"), st.integers(0, 40)),  # seconds pass
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 6), st.integers(1, 5))
def test_open_orders_are_never_forgotten_and_the_kept_finished_are_the_newest(steps, cap, every):
    clock = Clock()
    t, gone = tracker(clock, retention_s=30, max_finished=cap, sweep_every=every)
    all_recs: list[OrderRecord] = []
    finished: list[tuple[int, OrderRecord]] = []  # (finish time, record), in the order they finished
    late = 0
    for op, arg in steps:
        if op == "place":
            r = record(len(all_recs), account=arg)
            all_recs.append(r)
            t.add(r)
        elif op == "wait":
            clock.now += arg * S
        elif op == "late":
            held = [r for _, r in finished if t.get(r.client_order_id) is r]
            if held:
                r = held[arg % len(held)]
                late += 1
                ev = event(r.client_order_id, OrderEventKind.PARTIAL_FILL, OrderStatus.CANCELED, f"late{late}")
                t.apply(r, ev, 1)  # keeps its place in the queue: ``finished`` (the model) is unchanged
        else:
            live = [r for r in all_recs if r.is_open]
            if live:
                r = live[arg % len(live)]
                if op == "finish":
                    finish(t, r)
                    finished.append((clock.now, r))
                elif r.status is not OrderStatus.PENDING_CANCEL:
                    t.mark(r, OrderEventKind.CANCEL_SENT, clock.now)
        for r in all_recs:
            if r.is_open:
                assert t.get(r.client_order_id) is r
        assert sorted(r.client_order_id for a in range(3) for r in t.open_orders(a)) == sorted(
            r.client_order_id for r in all_recs if r.is_open
        )
        assert t.finished <= cap + every - 1
    t.sweep()
    horizon = clock.now - 30 * S
    kept = [r for ns, r in finished[-cap:] if ns > horizon]  # within the cap and the window
    assert [r.client_order_id for _, r in finished if t.get(r.client_order_id) is r] == [
        r.client_order_id for r in kept
    ]
    assert gone == [r.client_order_id for _, r in finished if r not in kept]


def test_a_failing_listener_is_counted_and_the_order_forgotten_all_the_same(caplog):
    clock = Clock()
    t, gone = tracker(clock, retention_s=60)

    def broken(coid, rec):
        raise KeyError(coid)

    t.forget_listeners.insert(0, broken)
    recs = [record(n) for n in range(3)]
    for r in recs:
        t.add(r)
        finish(t, r)
    clock.now += 61 * S
    assert t.sweep() == 3 and len(t) == 0 and gone == ["c0", "c1", "c2"]  # the next listener still told
    assert t.listener_errors == 3 and "listener" in caplog.text


def test_limits_are_checked():
    with pytest.raises(ValueError, match="retention"):
        OrderTracker(retention_s=-1)
    with pytest.raises(ValueError, match="max"):
        OrderTracker(max_finished=0)


# --------------------------------------------------------------------------- through the gateway
def gateway(clock: Clock, retention_s: float, max_finished: int) -> OrderGateway:
    gw = btc_gateway(["sub_mm"], cash="1000000", n_accounts=2, n_instruments=2,
                     max_order_notional=money_to_units("5000"), max_open_orders=1000)  # fmt: skip
    gw.orders._clock = clock
    gw.orders.set_limits(retention_s, max_finished, sweep_every=1)
    return gw


def cmd(n: int) -> PlaceOrder:
    return PlaceOrder(account=ACC, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.01",
                      price="60000", intent=str(n))  # fmt: skip


def test_a_late_fill_within_the_window_reaches_the_positions_whatever_finishes_meanwhile():
    clock = Clock()
    gw = gateway(clock, retention_s=60, max_finished=1000)
    coid = gw.place(cmd(0)).result.client_order_id
    gw.on_order_event(event(coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    gw.on_order_event(event(coid, OrderEventKind.CANCELED, OrderStatus.CANCELED))  # the stream's cancel first
    for n in range(1, 300):  # many orders finish meanwhile (each finish sweeps here)
        other = gw.place(cmd(n)).result.client_order_id
        gw.on_order_event(event(other, OrderEventKind.CANCELED, OrderStatus.CANCELED))
        clock.now += S // 10
    assert clock.now - gw.orders.get(coid).finished_ns < 60 * S
    late = event(coid, OrderEventKind.PARTIAL_FILL, OrderStatus.CANCELED, trade="late-1")  # REST's fill, late
    assert gw.on_order_event(late) and gw.state.position(0, 0)["qty"] == 1000
    assert gw.on_order_event(late) == [] and gw.state.position(0, 0)["qty"] == 1000  # once
    assert int(gw.state.acc[A_OPEN_ORDERS, 0]) == 0


def test_a_forgotten_order_is_unknown_to_its_events_and_its_command_is_placed_again():
    clock = Clock()
    gw = gateway(clock, retention_s=60, max_finished=1000)
    d = gw.place(cmd(0))
    coid = d.result.client_order_id
    gw.on_order_event(event(coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    gw.place(cmd(1))  # still open when the first is forgotten
    assert gw.place(cmd(0)).send == []  # a retry within the window: answered, not sent
    gw.on_order_event(event(coid, OrderEventKind.CANCELED, OrderStatus.CANCELED))
    clock.now += 61 * S
    assert gw.orders.sweep() == 1 and gw.orders.get(coid) is None and len(gw.orders) == 1
    assert gw.on_order_event(event(coid, OrderEventKind.CANCELED, OrderStatus.CANCELED)) == []
    assert gw.dropped["unknown_order"] == 1
    again = gw.place(cmd(0))  # as after a restart: the finished order is not known, so it is placed again
    assert again.result.ok and again.send and again.result.client_order_id == coid
    assert int(gw.state.acc[A_OPEN_ORDERS, 0]) == 2


def test_a_forgotten_order_takes_its_pending_amend_with_it():
    clock = Clock()
    gw = gateway(clock, retention_s=60, max_finished=1000)
    coid = gw.place(cmd(0)).result.client_order_id
    gw.on_order_event(event(coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    d = gw.amend(AmendOrder(account=ACC, symbol="BTC/USDT", client_order_id=coid, side=Side.BUY, qty="0.005"))
    assert d.result.ok and coid in gw.amends  # sent; its answer never comes, the order is canceled meanwhile
    gw.on_order_event(event(coid, OrderEventKind.CANCELED, OrderStatus.CANCELED))
    clock.now += 61 * S
    gw.orders.sweep()
    assert coid not in gw.amends
