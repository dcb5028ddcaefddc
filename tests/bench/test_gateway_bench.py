"""Order gateway throughput in-process: decode a NATS command, client order id, account and instrument,
exact conversion, the risk kernel, the status machine and the reply's encoding (exchange I/O excluded).

Run with ``make bench``. 50,000 distinct LIMIT orders, one per ``CommandRequest`` (the worst case: no
batching), against 200 accounts of one ``KernelState``; best of 3 runs. Beside it, in the same run, the floor
of any gateway: ``msgspec`` decoding the same requests and encoding a reply for each, with no logic at all.
Target: >= 200,000 orders/s. A miss is a warning, never a failure.
"""

from __future__ import annotations

import gc
import time
import warnings

import msgspec
import pytest

from kernels.positions import transfer, update_mark
from kernels.state import UNLIMITED, AccountIndex, KernelState
from oms.model import Instrument, InstrumentKind, InstrumentSpec, OrderType, PlaceOrder, Side
from oms.model.commands import CommandReply, CommandRequest, CommandResult, encode_reply, encode_request
from oms.model.units import money_to_units
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable

pytestmark = pytest.mark.bench
N = 50_000
ACCOUNTS = 200


def build() -> tuple[OrderGateway, list[tuple[bytes, str]]]:
    state = KernelState(n_accounts=ACCOUNTS, n_instruments=4)
    accounts = AccountIndex([("binance", f"acct{k}") for k in range(ACCOUNTS)])
    table = InstrumentTable(state)
    spec = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                          min_qty="0.00001", max_qty="9000", min_notional="5")  # fmt: skip
    i = table.add("binance", Instrument(spec))
    b = tuple(state.blocks)
    for a in range(ACCOUNTS):
        state.set_limits(a, max_open_orders=UNLIMITED)
        transfer(*b, a, money_to_units("10000000"))
    update_mark(*b, i, Instrument(spec).mark_to_units("60000"))
    reqs = []
    for n in range(N):
        acct = f"binance/acct{n % ACCOUNTS}"
        side = Side.BUY if n % 2 else Side.SELL
        price = f"{59000 + n % 1000}.5"
        cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=side, order_type=OrderType.LIMIT, qty="0.001",
                         price=price, intent=str(n))  # fmt: skip
        reqs.append((encode_request(CommandRequest(request_id=str(n), commands=(cmd,))), acct))
    return OrderGateway(state, accounts, table), reqs


def run_gateway(gw: OrderGateway, reqs) -> float:
    t0 = time.perf_counter()
    for data, acct in reqs:
        reply, _ = gw.handle_request(data, acct)
        encode_reply(reply)
    return len(reqs) / (time.perf_counter() - t0)


def run_floor(reqs) -> float:
    dec = msgspec.json.Decoder(CommandRequest)
    t0 = time.perf_counter()
    for data, _ in reqs:
        req = dec.decode(data)
        encode_reply(CommandReply(request_id=req.request_id, results=(CommandResult(ok=True),)))
    return len(reqs) / (time.perf_counter() - t0)


def test_gateway_throughput():
    gc.disable()
    try:
        ours, floor = [], []
        for _ in range(3):
            gw, reqs = build()
            ours.append(run_gateway(gw, reqs))
            assert gw.accepted == N, gw.rejections
            floor.append(run_floor(reqs))
    finally:
        gc.enable()
    best, base = max(ours), max(floor)
    print(
        f"\ngateway in-process, {N:,} single-order requests over {ACCOUNTS} accounts: {best:,.0f} orders/s "
        f"({1e6 / best:.1f} us/order); floor (decode + reply encode only) {base:,.0f}/s; ratio {best / base:.2f}; "
        f"target 200,000/s"
    )
    if best < 200_000:
        warnings.warn(f"gateway at {best:,.0f} orders/s (target 200,000)", stacklevel=1)
