"""The order gateway through its real parts: model commands and events, the risk and positions kernels,
the status machine. Every refusal leaves the kernel state as it was, array for array."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import codes as C
from kernels.state import A_CASH, A_FEES, A_OPEN_ORDERS, A_TOKENS_NS
from oms.model import (
    CancelAll,
    CancelOrder,
    Fill,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from oms.model.codec import encode
from oms.model.commands import CommandRequest, encode_request
from oms.model.units import money_to_units
from stream.gateway import OrderGateway
from tests.harness.gateway_kit import btc_gateway

ACC = "binance/sub_mm"
T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


@pytest.fixture
def gw() -> OrderGateway:
    return btc_gateway(["sub_mm", "main"], cash="100000", funded=[0], n_accounts=4, n_instruments=4, clock=Clock(),
                       max_order_notional=money_to_units("5000"), max_open_orders=3)  # fmt: skip


def place(qty: str = "0.01", price: str = "60000", intent: str = "1", **kw) -> PlaceOrder:
    return PlaceOrder(
        account=kw.pop("account", ACC), symbol=kw.pop("symbol", "BTC/USDT"), side=kw.pop("side", Side.BUY),
        order_type=kw.pop("order_type", OrderType.LIMIT), qty=qty, price=price, intent=intent, **kw,
    )  # fmt: skip


def snapshot(gw: OrderGateway) -> list[np.ndarray]:
    return [a.copy() for a in gw.state.blocks]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def venue(gw, coid, kind, status, fill=None, n=0):
    return OrderEvent(
        account=ACC, symbol="BTC/USDT", client_order_id=coid, venue_order_id="77", kind=kind, status=status,
        fill=fill, event_ns=T0 + 10**9 + n,
    )  # fmt: skip


def fill(coid, trade_id, qty, price="60000", commission="0.06", asset="USDT"):
    return Fill(
        account=ACC, symbol="BTC/USDT", client_order_id=coid, venue_order_id="77", trade_id=trade_id, side=Side.BUY,
        price=price, qty=qty, commission=commission, commission_asset=asset, event_ns=T0 + 10**9,
    )  # fmt: skip


def open_orders(gw) -> int:
    return int(gw.state.acc[A_OPEN_ORDERS, 0])


def test_accepted_order_is_reserved_and_sent_once(gw):
    d = gw.place(place())
    assert d.result.ok and d.result.status is OrderStatus.PENDING_NEW and len(d.send) == 1
    coid = d.result.client_order_id
    assert coid == place().with_client_order_id().client_order_id  # deterministic
    assert open_orders(gw) == 1
    again = gw.place(place())  # a retry, or the same command after a restart
    assert again.result.ok and again.result.client_order_id == coid and again.send == [] and open_orders(gw) == 1


@pytest.mark.parametrize(
    "cmd, code",
    [
        (place(qty="1"), "risk:MAX_ORDER_NOTIONAL"),  # 60,000 USDT > 5,000
        (place(qty="0.000001"), "bad_number"),  # finer than the lot step
        (place(price="60000.001"), "bad_number"),  # finer than the tick
        (place(account="binance/other"), "unknown_account"),
        (place(symbol="ETH/USDT"), "unknown_symbol"),
        (place(order_type=OrderType.TRAILING_STOP_MARKET, price=None), "unsupported_order_type"),
    ],
)
def test_refusals_name_the_reason_and_change_nothing(gw, cmd, code):
    before = snapshot(gw)
    d = gw.place(cmd)
    assert not d.result.ok and d.result.code == code and d.send == []
    assert d.events[0].kind is OrderEventKind.REJECTED and d.events[0].reason.startswith(code)
    assert same(before, snapshot(gw)) and gw.rejections[code] == 1 and len(gw.orders) == 0
    if code.startswith("risk:"):
        assert d.events[0].code == C.MAX_ORDER_NOTIONAL


def test_open_order_limit_from_the_kernel(gw):
    for n in range(3):
        assert gw.place(place(intent=str(n))).result.ok
    d = gw.place(place(intent="3"))
    assert d.result.code == "risk:MAX_OPEN_ORDERS"


def test_lifecycle_fills_positions_once_and_frees_the_reservation(gw):
    coid = gw.place(place(qty="0.02")).result.client_order_id
    assert gw.on_order_event(venue(gw, coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    part = venue(gw, coid, OrderEventKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, fill(coid, "t1", "0.01"))
    assert gw.on_order_event(part)
    assert gw.on_order_event(part) == []  # the same fill again (stream and REST both report it)
    pos = gw.state.position(0, 0)
    assert pos["qty"] == 1000  # 0.01 BTC in 1e-5 lots, applied once
    done = venue(gw, coid, OrderEventKind.FILL, OrderStatus.FILLED, fill(coid, "t2", "0.01"), n=1)
    assert gw.on_order_event(done)
    assert gw.state.position(0, 0)["qty"] == 2000 and open_orders(gw) == 0
    assert gw.orders.get(coid).status is OrderStatus.FILLED
    # 100,000 - 2 x 600 (0.01 BTC at 60,000) - 2 x 0.06 commission, exactly
    assert int(gw.state.acc[A_CASH, 0]) == money_to_units("98799.88")
    assert int(gw.state.acc[A_FEES, 0]) == money_to_units("0.12")


def test_a_cancel_racing_a_fill_ends_filled(gw):
    coid = gw.place(place()).result.client_order_id
    gw.on_order_event(venue(gw, coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    c = gw.cancel(CancelOrder(account=ACC, symbol="BTC/USDT", client_order_id=coid))
    assert c.result.status is OrderStatus.PENDING_CANCEL and c.send[0].venue_order_id == "77"
    gw.on_order_event(venue(gw, coid, OrderEventKind.FILL, OrderStatus.FILLED, fill(coid, "t9", "0.01")))
    # The venue answers the cancel: unknown order (it had filled). The order stays FILLED with its fill.
    assert gw.on_order_event(venue(gw, coid, OrderEventKind.CANCEL_REJECTED, OrderStatus.FILLED, n=2)) == []
    assert gw.orders.get(coid).status is OrderStatus.FILLED and gw.state.position(0, 0)["qty"] == 1000
    assert open_orders(gw) == 0


def test_filled_before_new_and_late_events(gw, caplog):
    coid = gw.place(place()).result.client_order_id
    gw.on_order_event(venue(gw, coid, OrderEventKind.FILL, OrderStatus.FILLED, fill(coid, "t1", "0.01")))
    assert gw.on_order_event(venue(gw, coid, OrderEventKind.ACCEPTED, OrderStatus.NEW)) == []  # late NEW
    assert gw.on_order_event(venue(gw, coid, OrderEventKind.CANCELED, OrderStatus.CANCELED)) == []  # illegal
    assert gw.dropped["illegal_transition"] == 1 and gw.orders.get(coid).status is OrderStatus.FILLED
    assert gw.on_order_event(venue(gw, "oms-nobody", OrderEventKind.ACCEPTED, OrderStatus.NEW)) == []
    assert gw.dropped["unknown_order"] == 1 and "dropped (unknown_order" in caplog.text
    bad = venue(gw, coid, OrderEventKind.FILL, OrderStatus.FILLED, fill(coid, "t2", "0.000001"))
    assert gw.on_order_event(bad) == [] and gw.dropped["bad_fill"] == 1


def test_base_asset_commission_is_valued_at_the_fill_price(gw):
    coid = gw.place(place()).result.client_order_id
    gw.on_order_event(
        venue(
            gw,
            coid,
            OrderEventKind.FILL,
            OrderStatus.FILLED,
            fill(coid, "t1", "0.01", commission="0.00001", asset="BTC"),
        )
    )
    assert int(gw.state.acc[A_FEES, 0]) == money_to_units("0.6")  # 0.00001 BTC x 60,000


def test_cancel_all_and_unknown_cancels(gw):
    coids = [gw.place(place(intent=str(n))).result.client_order_id for n in range(2)]
    d = gw.cancel_all(CancelAll(account=ACC))
    assert sorted(c.client_order_id for c in d.send) == sorted(coids)
    assert {gw.orders.get(c).status for c in coids} == {OrderStatus.PENDING_CANCEL}
    u = gw.cancel(CancelOrder(account=ACC, symbol="BTC/USDT", client_order_id="oms-none"))
    assert not u.result.ok and u.result.code == "unknown_order"


def test_nats_request_in_reply_out(gw):
    req = CommandRequest(request_id="r1", commands=(place(intent="a"), place(qty="5", intent="b")))
    reply, d = gw.handle_request(encode_request(req), ACC)
    assert reply.request_id == "r1" and [r.ok for r in reply.results] == [True, False]
    assert reply.results[1].code == "risk:MAX_ORDER_NOTIONAL" and len(d.send) == 1 and len(d.events) == 1
    bad, _ = gw.handle_request(b"{", ACC)
    assert bad.code == "malformed" and gw.rejections["malformed"] == 1


def _fresh_gateway() -> OrderGateway:
    return btc_gateway(["sub_mm"], cash="100000", n_accounts=4, n_instruments=4, clock=Clock(),
                       max_order_notional=money_to_units("5000"), max_open_orders=4)  # fmt: skip


def _batch() -> list[PlaceOrder]:
    return [
        place(intent="1"),
        place(qty="1", intent="2"),  # risk: notional
        place(intent="1"),  # the first one again, in the same batch: known, not sent twice
        place(price="60000.001", intent="3"),  # bad number
        place(symbol="ETH/USDT", intent="4"),  # unknown symbol
        place(intent="5"),
        place(intent="6", client_order_id="mine-1"),
        place(intent="7"),  # the 4th open order: the limit is 4
        place(intent="8"),  # risk: open orders
    ]


def test_a_batch_decides_as_the_same_commands_one_by_one():
    one, batch = _fresh_gateway(), _fresh_gateway()
    singles = [one.place(c) for c in _batch()]
    batched = batch.place_batch(_batch())
    assert [d.result for d in batched] == [d.result for d in singles]
    assert [d.send for d in batched] == [d.send for d in singles]
    assert [[(e.kind, e.reason, e.code) for e in d.events] for d in batched] == [
        [(e.kind, e.reason, e.code) for e in d.events] for d in singles
    ]
    assert [d.result.code for d in batched] == [
        "", "risk:MAX_ORDER_NOTIONAL", "", "bad_number", "unknown_symbol", "", "", "", "risk:MAX_OPEN_ORDERS"
    ]  # fmt: skip
    assert batched[2].send == [] and batched[2].result.client_order_id == batched[0].result.client_order_id
    # the same state, but for when the token bucket last counted (one clock reading per batch)
    for s in (one, batch):
        s.state.acc[A_TOKENS_NS] = 0
    assert same(snapshot(one), snapshot(batch)) and batch.accepted == one.accepted == 4
    assert batch.rejections == one.rejections


def test_a_request_keeps_the_order_of_its_commands(gw):
    first = place(intent="a").with_client_order_id()
    req = CommandRequest(
        request_id="r2",
        commands=(
            first,
            place(intent="b"),
            CancelOrder(account=ACC, symbol="BTC/USDT", client_order_id=first.client_order_id),
            place(intent="c"),
            place(intent="d"),  # the 4th open order: over the limit of 3 (the cancel is only sent)
        ),
    )
    reply, d = gw.handle_request(encode_request(req), ACC)
    assert [r.status for r in reply.results] == [
        OrderStatus.PENDING_NEW, OrderStatus.PENDING_NEW, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_NEW,
        OrderStatus.REJECTED,
    ]  # fmt: skip
    assert [type(c).__name__ for c in d.send] == ["PlaceOrder", "PlaceOrder", "CancelOrder", "PlaceOrder"]
    assert reply.results[4].code == "risk:MAX_OPEN_ORDERS" and len(d.events) == 1


def slowly(gw: OrderGateway, cmd: PlaceOrder):
    """``gw.place(cmd)`` through ``_prepare``, never the batch path's inline common case (which takes only
    orders of a route already known): the reference the request path is held to."""
    gw._routes.clear()
    return gw.place(cmd)


def test_a_request_decides_as_its_commands_placed_one_by_one():
    """The request path (one decode, commands owned by the gateway, one kernel call per run of placements)
    against ``place`` per command: the same replies, ids, sends, event bytes, records and kernel state,
    through risk rejections, refusals, a duplicate within the request and a retry of the whole request."""
    clock = lambda: T0  # noqa: E731 - one reading for both, so the events' bytes can be compared
    one, batch = _fresh_gateway(), _fresh_gateway()
    one.clock = batch.clock = clock
    cmds = _batch() + [place(side=Side.SELL, intent="9", reduce_only=True)]  # risk: reduce-only, nothing to reduce
    data = encode_request(CommandRequest(request_id="r", commands=tuple(cmds)))
    singles = [slowly(one, c) for c in cmds] + [slowly(one, c) for c in cmds]  # then the retry: all known
    replies = [batch.handle_request(data, ACC) for _ in range(2)]
    assert [r for reply, _ in replies for r in reply.results] == [d.result for d in singles]
    assert [s for _, d in replies for s in d.send] == [s for d in singles for s in d.send]
    assert [encode(e) for _, d in replies for e in d.events] == [encode(e) for d in singles for e in d.events]
    codes = [r.code for r in replies[0][0].results]
    assert codes == ["", "risk:MAX_ORDER_NOTIONAL", "", "bad_number", "unknown_symbol", "", "", "",
                     "risk:MAX_OPEN_ORDERS", "risk:REDUCE_ONLY_REJECTED"]  # fmt: skip
    assert replies[1][1].send == [] and [r.code for r in replies[1][0].results] == codes  # the retry sends nothing
    assert [(r.client_order_id, r.status) for r in batch.orders] == [(r.client_order_id, r.status) for r in one.orders]
    assert list(batch.orders) == list(one.orders)
    assert same(snapshot(one), snapshot(batch)) and batch.accepted == one.accepted == 4
    assert batch.rejections == one.rejections
    assert [c.client_order_id for c in cmds] == [None] * 6 + ["mine-1"] + [None] * 3  # the caller's left as they were


def test_a_fills_trade_ids_are_its_orders_own(gw):
    """A record's trade ids are made at its first fill (not per order): never shared between orders."""
    a = gw.place(place(qty="0.02", intent="a")).result.client_order_id
    b = gw.place(place(qty="0.02", intent="b")).result.client_order_id
    for coid in (a, b):
        gw.on_order_event(venue(gw, coid, OrderEventKind.ACCEPTED, OrderStatus.NEW))
    part = venue(gw, a, OrderEventKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, fill(a, "t1", "0.01"))
    assert gw.on_order_event(part) and gw.on_order_event(part) == []  # the same fill twice counts once
    assert gw.orders.get(a).trade_ids == {"t1"} and gw.orders.get(b).trade_ids == set()
    other = venue(gw, b, OrderEventKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, fill(b, "t1", "0.01"))
    assert gw.on_order_event(other)  # the same trade id on another order is that order's own fill
    assert gw.orders.get(a).filled == gw.orders.get(b).filled == 1000 and gw.state.position(0, 0)["qty"] == 2000


def _exceptional_batch() -> list[PlaceOrder]:
    """Commands off the request path's common case, between ordinary ones."""
    return [
        place(intent="1", client_order_id="mine-2"),
        place(symbol="ETH/USDT", intent="2", client_order_id="mine-2"),  # the same id again: known, not refused
        place(order_type=OrderType.MARKET, price=None, intent="3"),
        place(order_type=OrderType.STOP_MARKET, price=None, stop_price="59000", intent="4"),
        place(order_type=OrderType.STOP_MARKET, price=None, intent="5"),  # bad number: no stop price
        place(qty="0.00777", intent="6"),  # a quantity and a price not seen before
        place(qty="0.011", intent="7"),  # scaled by the guard
        place(qty="0.013", intent="8"),  # refused by the guard
        place(price="60001", intent="9"),  # refused by the quote check
        place(qty="0.011", price="60001", intent="9b"),  # scaled by the guard, then refused by the quote check
        place(symbol="XRP/USDT", client_order_id="mine-3"),  # unknown symbol
        place(order_type=OrderType.TRAILING_STOP_MARKET, price=None, intent="10"),
        place(qty="0.00000001", intent="11"),  # finer than the lot step
    ]


def test_a_request_off_the_common_case_decides_as_one_by_one():
    """The request path's exceptions (a repeated client order id, market and stop orders, new numbers, the
    portfolio guard scaling or refusing, the quote check refusing, unknown symbols and order types) give what
    ``place`` one by one gives: replies, sends, event bytes, records, kernel state, counters."""

    def guard(a, i, side, ps, qty):
        return (1000, None) if qty == 1100 else (qty, ("guard:vol", "too volatile")) if qty == 1300 else (qty, None)

    def quote_check(a, i, side, otype, price, qty, reduce_only, ps):
        return ("quote:limit", "over the quote limit") if price == 6000100 else None

    one, batch = _fresh_gateway(), _fresh_gateway()
    for g in (one, batch):
        g.clock, g.guard, g.quote_check = (lambda: T0), guard, quote_check
        g.state.set_limits(0, max_order_notional=money_to_units("5000"), max_open_orders=20)
    cmds = _exceptional_batch()
    data = encode_request(CommandRequest(request_id="r", commands=tuple(cmds)))
    singles = [slowly(one, c) for c in cmds]
    reply, d = batch.handle_request(data, ACC)
    assert list(reply.results) == [s.result for s in singles]
    assert d.send == [s for x in singles for s in x.send]
    assert [encode(e) for e in d.events] == [encode(e) for x in singles for e in x.events]
    assert [r.code for r in reply.results] == [
        "", "", "", "", "bad_number", "", "", "guard:vol", "quote:limit", "quote:limit", "unknown_symbol",
        "unsupported_order_type", "bad_number",
    ]  # fmt: skip
    assert reply.results[1].client_order_id == "mine-2" and reply.results[6].reason.startswith("qty scaled")
    assert [s.qty for s in d.send if s.intent == "7"] == ["0.01"]
    assert [e.qty for e in d.events if e.client_order_id == reply.results[9].client_order_id] == ["0.01"]  # scaled
    assert list(batch.orders) == list(one.orders) and batch.accepted == one.accepted == 5
    assert same(snapshot(one), snapshot(batch)) and batch.rejections == one.rejections
