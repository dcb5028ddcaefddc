"""An order gateway over fresh kernel state with one instrument, BTC/USDT on Binance Spot (its real filters),
for the tests and benches that drive ``stream.gateway.OrderGateway`` directly (no venue, no NATS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from kernels.positions import transfer, update_mark
from kernels.state import AccountIndex, KernelState
from oms.model import Instrument, InstrumentKind, InstrumentSpec
from oms.model.units import money_to_units
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable

BTCUSDT = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5")  # fmt: skip


def btc_gateway(
    names: Sequence[str],
    *,
    cash: str,
    mark: str = "60000",
    funded: Sequence[int] | None = None,
    n_accounts: int | None = None,
    n_instruments: int = 1,
    clock: Callable[[], int] = time.time_ns,
    **limits: int,
) -> OrderGateway:
    """A gateway for the Binance accounts ``names`` (numbered in that order) trading BTC/USDT marked at ``mark``:
    each account of ``funded`` (default: all) holds ``cash`` USDT and has ``limits`` (``KernelState.set_limits``:
    e.g. ``max_open_orders``, ``max_order_notional`` in money units). ``n_accounts``/``n_instruments`` size the
    kernel state (default: just enough)."""
    state = KernelState(n_accounts=n_accounts or len(names), n_instruments=n_instruments)
    table = InstrumentTable(state)
    ins = Instrument(BTCUSDT)
    i = table.add("binance", ins)
    blocks = tuple(state.blocks)
    for a in funded if funded is not None else range(len(names)):
        if limits:
            state.set_limits(a, **limits)
        transfer(*blocks, a, money_to_units(cash))
    update_mark(*blocks, i, ins.mark_to_units(mark))
    return OrderGateway(state, AccountIndex([("binance", n) for n in names]), table, clock=clock)
