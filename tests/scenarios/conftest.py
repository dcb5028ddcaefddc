"""Fault scenarios of the stream daemon: the daemon's test bench (a real local exchange replaying market data,
a real nats-server, funded accounts, a configs/ folder) and the three-way ledger every scenario ends with:
the exchange's own record, JetStream's, and the daemon's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from kernels.state import P_QTY
from oms.model import Fill, Market, Order, OrderEvent
from tests.flows.conftest import clean_runs, venue  # noqa: F401  (fixtures the rebalance scenario shares)
from tests.flows.test_rebalance_flow import desk  # noqa: F401
from tests.stream.conftest import bench, exchange, nc, stream_nats  # noqa: F401  (fixtures for this folder)
from tests.stream.test_daemon_orders import events
from tests.venues.binance.conftest import Harness

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Every test of this folder is a scenario (the hook sees the whole session's items: only ours)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.scenario)


@dataclass
class Ledger:
    """The three views of one account after a scenario."""

    venue_fills: list[Fill]
    venue_open: list[Order]
    venue_btc: Decimal
    stream_fills: list[Fill]
    stream_orders: list[OrderEvent]
    daemon_open: set[str]
    daemon_btc: Decimal
    base_fees: Decimal  # BTC commissions of the fills since the daemon last reconciled

    def check(self) -> None:
        """0 fills lost, 0 duplicated, 0 orders duplicated, positions equal."""
        venue_ids = Counter(f.trade_id for f in self.venue_fills)
        stream_ids = Counter(f.trade_id for f in self.stream_fills)
        assert set(stream_ids) == set(venue_ids), (
            f"{self.venue_fills} {self.stream_fills} fills lost {set(venue_ids) - set(stream_ids)}, "
            + (f"unknown {set(stream_ids) - set(venue_ids)}")
        )
        assert max(stream_ids.values(), default=1) == 1, (
            f"fills stored twice: {[k for k, n in stream_ids.items() if n > 1]}"
        )
        per_coid: dict[str, set[str]] = {}
        for f in self.venue_fills:
            per_coid.setdefault(f.client_order_id, set()).add(f.venue_order_id)
        for o in self.venue_open:
            per_coid.setdefault(o.client_order_id, set()).add(o.venue_order_id or "")
        dup = {c: v for c, v in per_coid.items() if len(v) > 1}
        assert not dup, f"client order ids placed more than once on the venue: {dup}"
        assert {o.client_order_id for o in self.venue_open} == self.daemon_open, "open orders differ"
        # the kernel books a Spot buy's BTC commission as a fee in USDT; the venue takes it from the BTC balance
        held = self.venue_btc + self.base_fees
        assert self.daemon_btc == held, f"BTC position {self.daemon_btc} != the venue's {self.venue_btc} + fees"


async def ledger(bench, nc, daemon, name: str, since_ns: int, reconciled_ns: int) -> Ledger:  # noqa: F811
    """Read the exchange (through its own client with the account's key), JetStream and the daemon."""
    h = Harness(bench.exchange)
    try:
        c = await h.account(Market.SPOT, existing=bench.accounts[name], name=name)
        venue_fills = await c.execution.fills("BTC/USDT", since_ns)
        venue_open = await c.execution.open_orders("BTC/USDT")
        btc = sum((Decimal(b.free) + Decimal(b.locked) for b in await c.execution.balances() if b.asset == "BTC"),
                  Decimal(0))  # fmt: skip
    finally:
        await h.close()
    subj = f"binance.{name}"
    stream_fills = [e for e in await events(nc, "TRADES", f"trades.{subj}.>") if isinstance(e, Fill)]
    stream_orders = [e for e in await events(nc, "ORDERS", f"orders.{subj}.>") if isinstance(e, OrderEvent)]
    s = daemon.sessions[f"binance/{name}"]
    gw = daemon.gateway
    i, ins = gw.instruments.lookup("binance", "BTC/USDT")
    daemon_btc = Decimal(ins.qty_str(int(gw.state.pos[P_QTY, s.number, i, 0])))
    daemon_open = {r.client_order_id for r in gw.orders.open_orders(s.number)}
    fees = sum(
        (Decimal(f.commission) for f in venue_fills if f.commission_asset == "BTC" and f.event_ns > reconciled_ns),
        Decimal(0),
    )
    return Ledger(venue_fills, venue_open, btc, stream_fills, stream_orders, daemon_open, daemon_btc, fees)


async def stream_counts(nc, name: str) -> dict[str, int]:  # noqa: F811
    js = nc.jetstream()
    out = {}
    for stream, kind in (
        ("ORDERS", "orders"),
        ("TRADES", "trades"),
        ("BALANCES", "balances"),
        ("POSITIONS", "positions"),
    ):
        info = await js.stream_info(stream, subjects_filter=f"{kind}.binance.{name}.>")
        out[stream] = sum((info.state.subjects or {}).values())
    return out
