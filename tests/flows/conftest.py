"""Shared pieces of the flow tests: the hand-checked fill sequence of tests/archive/test_pnl.py written as
trade and funding logs, and a helper that removes a flow's runs from the session's shared Prefect server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.archive.records import Funding
from oms.model import Fill

DAY = 86_400 * 10**9
T0 = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp()) * 10**9  # 29, 30 Nov, 1 Dec: a month boundary
PERP = "BTC/USDT:USDT"


def fill(acct: str, i: int, side: str, price: str, qty: str, t: int, fee: str, sym: str = PERP) -> Fill:
    return Fill(account=acct, symbol=sym, client_order_id=f"c{i}", venue_order_id=f"v{i}", trade_id=str(i),
                side=side, price=price, qty=qty, commission=fee, commission_asset="USDT", event_ns=t)  # fmt: skip


def write_known_fills(data: Path) -> Layout:
    """sub_a: long 3 (2 @ 100, 1 @ 110), sells 2 @ 120 (+40) and 2 @ 90 (-20, short 1), funding -0.5, buys 1 @ 80
    (+10); sub_b: long 1 @ 95 left open (marked at the symbol's last price of each day)."""
    layout = Layout(data)
    a = "binance/sub_a"
    with LogWriter(layout) as w:
        w.extend([
            fill(a, 1, "buy", "100", "2", T0 + 1, "0.2"),
            fill(a, 2, "buy", "110", "1", T0 + 2, "0.11"),
            fill(a, 3, "sell", "120", "2", T0 + DAY + 1, "0.24"),
            fill(a, 4, "sell", "90", "2", T0 + DAY + 2, "0.18"),
            fill(a, 5, "buy", "80", "1", T0 + 2 * DAY, "0.08"),
            fill("binance/sub_b", 1, "buy", "95", "1", T0, "0.095"),
        ])  # fmt: skip
        w.append(Funding(account=a, symbol=PERP, asset="USDT", amount="-0.5", rate="0.0001", event_ns=T0 + DAY + 5))
    return layout


def delete_runs_of(*flow_names: str) -> None:
    """Leave the session's shared Prefect server as found: other tests count its flow runs."""
    from prefect import get_client

    async def go() -> None:
        async with get_client() as client:
            for run_ in await client.read_flow_runs():
                if (await client.read_flow(run_.flow_id)).name in flow_names:
                    await client.delete_flow_run(run_.id)

    asyncio.run(go())


def artifacts() -> dict:
    """The latest artifact of each key on the Prefect server."""
    from prefect import get_client

    async def go():
        async with get_client() as client:
            return await client.read_artifacts()

    found: dict = {}
    for a in sorted(asyncio.run(go()), key=lambda a: a.created):
        found[a.key] = a
    return found
