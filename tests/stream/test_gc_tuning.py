"""The daemon's collector settings (``stream.gc_tuning``), and the untracked structs they rely on."""

from __future__ import annotations

import gc

from oms.model import Fill, OrderEvent, OrderEventKind, OrderStatus, OrderType, PlaceOrder, Side
from oms.model.commands import CommandResult, parse_request
from stream.gc_tuning import GC_THRESHOLDS, tune_gc
from stream.orders import OrderRecord


def test_tune_gc_freezes_the_start_and_raises_the_thresholds():
    before = gc.get_threshold()
    survivor = [object()]  # a container alive at the call: frozen with the rest
    try:
        assert tune_gc() == before
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(survivor)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_live_orders_are_not_walked_by_the_collector():
    cmd = PlaceOrder(
        account="binance/mm", symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="1", price="2"
    )
    rec = OrderRecord(cmd, 0, 0, 1, 0, 100)
    rec.add_trade("t1")
    fill = Fill(account="binance/mm", symbol="BTC/USDT", client_order_id="x", venue_order_id="1", trade_id="t",
                side=Side.BUY, price="1", qty="1", event_ns=1)  # fmt: skip
    ev = OrderEvent(account="binance/mm", symbol="BTC/USDT", client_order_id="x", kind=OrderEventKind.FILL,
                    status=OrderStatus.FILLED, fill=fill, event_ns=1)  # fmt: skip
    result = CommandResult(ok=True, client_order_id="x")
    data = b'{"v":1,"commands":[{"type":"place_order","account":"binance/mm","symbol":"BTC/USDT","side":"buy",'
    data += b'"order_type":"limit","qty":"1","price":"2"}]}'
    decoded = parse_request(data, "binance/mm")
    for obj in (cmd, rec, ev, fill, result, decoded, decoded.commands[0]):
        assert not gc.is_tracked(obj), type(obj).__name__
    assert gc.is_tracked(rec.trade_ids)  # the containers they hold are tracked as ever
