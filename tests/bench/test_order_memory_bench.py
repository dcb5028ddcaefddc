"""The daemon's memory of finished orders (stream.orders): what an ``OrderGateway`` retains after 200,000
orders placed, accepted, cancelled and confirmed cancelled (a quoting loop's life), and what a cycle costs,
with and without forgetting, in the same run.

Three trackers: nothing forgotten (the window and the cap out of reach: the daemon before the bounded memory),
the defaults (a 1 h window, 100,000 finished at most: the cap is what bites in a run of seconds), and a cap of
10,000. Memory: ``tracemalloc``'s traced bytes held after the run, less those before it (the gateway's records,
commands, maps; the events made per order are garbage by then). Cost: microseconds of CPU per order cycle
(place, accepted, cancel, canceled), 100,000 orders a round, the three round-robin, best of 3.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from kernels.state import UNLIMITED
from oms.model import (
    CancelOrder,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from stream.gateway import OrderGateway
from tests.harness.gateway_kit import btc_gateway

pytestmark = pytest.mark.bench
CANCELED = OrderStatus.CANCELED
ACC = "binance/mm"
N_MEMORY = 200_000
N_TIME = 100_000
CONFIGS = {  # name -> (retention_s, max_finished)
    "nothing forgotten": (1e9, 10**9),
    "defaults (1 h, 100,000)": (3600.0, 100_000),
    "cap 10,000": (3600.0, 10_000),
}


def build(retention_s: float, max_finished: int) -> OrderGateway:
    gw = btc_gateway(["mm"], cash="10000000", max_open_orders=UNLIMITED)
    gw.orders.set_limits(retention_s, max_finished)
    return gw


def cycle(gw: OrderGateway, start: int, n: int) -> None:
    """``n`` orders through their whole life: placed (a derived id, as a strategy's), accepted, cancelled."""
    for k in range(start, start + n):
        side = Side.BUY if k % 2 else Side.SELL
        cmd = PlaceOrder(account=ACC, symbol="BTC/USDT", side=side, order_type=OrderType.LIMIT, qty="0.001",
                         price=f"{59000 + k % 1000}.5", intent=f"mm:{k}:0")  # fmt: skip
        d = gw.place(cmd)
        coid = d.result.client_order_id
        vid = str(k)
        gw.on_order_event(OrderEvent(account=ACC, symbol="BTC/USDT", client_order_id=coid, venue_order_id=vid,
                                     kind=OrderEventKind.ACCEPTED, status=OrderStatus.NEW, event_ns=k))  # fmt: skip
        gw.cancel(CancelOrder(account=ACC, symbol="BTC/USDT", client_order_id=coid))
        gw.on_order_event(OrderEvent(account=ACC, symbol="BTC/USDT", client_order_id=coid, venue_order_id=vid,
                                     kind=OrderEventKind.CANCELED, status=CANCELED, event_ns=k))  # fmt: skip


def retained(retention_s: float, max_finished: int) -> tuple[int, int]:
    """(bytes the gateway holds after ``N_MEMORY`` order cycles, records it holds)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        gw = build(retention_s, max_finished)
        cycle(gw, 0, N_MEMORY)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held, len(gw.orders)


def test_order_memory():
    print(f"\ngateway memory after {N_MEMORY:,} orders placed, accepted and cancelled (tracemalloc, bytes held):")
    base = None
    for name, (ret, cap) in CONFIGS.items():
        held, n = retained(ret, cap)
        base = base or held
        print(f"  {name:26s} {held / 2**20:8.1f} MB  {n:8,} records  {held / N_MEMORY:7.0f} B/order placed"
              f"  ({held / base:.2f} of nothing forgotten)")  # fmt: skip
        if cap < N_MEMORY:
            assert n <= cap + 64  # (a sweep every 64 finishes)
    gws = {name: build(*limits) for name, limits in CONFIGS.items()}
    best = dict.fromkeys(CONFIGS, float("inf"))
    for r in range(3):
        for name, gw in gws.items():
            gc.collect()
            t0 = time.process_time()
            cycle(gw, r * N_TIME, N_TIME)
            best[name] = min(best[name], (time.process_time() - t0) / N_TIME * 1e6)
    base_us = best["nothing forgotten"]
    print(f"order cycle (place, accepted, cancel, canceled), CPU us per order, best of 3 x {N_TIME:,}:")
    for name, us in best.items():
        print(f"  {name:26s} {us:7.2f} us  ({us / base_us:.3f} of nothing forgotten)")
