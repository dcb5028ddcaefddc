"""A market maker's quote cycle through the daemon's in-process path against the local exchange: cancel the two
resting quotes (a cancel-all) and post a new bid and ask, as ``strategies/market_making`` emits them on each event.

The exchange runs as its own process, replaying real prices (``--no-rate-limits``: the figure is the path, not
Binance's order budget), so its work overlaps the daemon's on the machine's second core as a remote venue's
would. Measured, interleaved cycle by cycle in one run: the cycle pipelined (``execute(..., pipelined=True)``,
the hosted strategies' path: the cancels together, then the quotes together) beside the baseline of the same
commands each after the previous one's answer (``execute``'s default, a NATS request's path). Wall time per
cycle, p50 and p99, and their ratio. Each cycle starts once the account's order windows have room for its two
orders (the connector would otherwise hold the order back until they do: Binance Spot allows 100 orders per
10 s), so the bench takes about 70 s.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import numpy as np
import pytest

from oms.model import CancelAll, OrderStatus, Side
from oms.services.nats import NatsService
from tests.harness.remote_exchange import RemoteExchange
from tests.harness.servers import loopback_settings
from tests.localex.conftest import localex_process
from tests.stream.conftest import Bench, place

pytestmark = pytest.mark.bench
ROUNDS = 150


async def _cycles(bench: Bench) -> dict[bool, list[float]]:
    bench.write(["quoter"], risk={"quoter": {"orders_per_second": 10_000, "order_burst": 10_000}})
    acct = bench.account("quoter")
    d = bench.daemon()
    await d.start()
    n = 0

    def cycle() -> list:  # quotes 2% from the mid of now (the replay moves it; the venue's price band holds)
        nonlocal n
        n += 1
        ticker = bench.ticker()
        bid, ask = (str((ticker * Decimal(k)).quantize(Decimal("0.01"))) for k in ("0.98", "1.02"))
        return [CancelAll(account=acct, symbol="BTC/USDT"), place(acct, "0.001", bid, intent=f"b{n}"),
                place(acct, "0.001", ask, side=Side.SELL, intent=f"a{n}")]  # fmt: skip

    link = next(iter(d.sessions[acct].links.values()))
    budget = link.clients.context.limiter  # the account's order windows (Binance Spot: 100 orders per 10 s)

    async def timed(pipelined: bool) -> float:
        while budget.order_headroom() < 2:  # a cycle never waits for the venue's order budget inside the timing
            await asyncio.sleep(0.05)
        cmds = cycle()
        t0 = time.perf_counter()
        out = await d.router.execute(cmds, pipelined=pipelined)
        took = time.perf_counter() - t0
        assert [r.ok for r in out] == [True] * 3 and out[1].status is OrderStatus.NEW, out
        return took

    try:
        for _ in range(20):  # warm: connections, kernels
            await timed(True)
            await timed(False)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(ROUNDS):
            for mode in (False, True):
                times[mode].append(await timed(mode))
        return times
    finally:
        await d.stop()


@pytest.mark.timeout(600)
def test_quote_cycle_pipelined_against_one_by_one(tmp_path) -> None:
    nats = NatsService(loopback_settings(tmp_path / "nats"))
    nats.up()
    try:
        with localex_process(tmp_path / "lx", "--no-rate-limits", replay=True) as (_, url):
            bench = Bench(RemoteExchange.of(url, tmp_path / "lx"), nats, tmp_path)  # type: ignore[arg-type]
            times = asyncio.run(_cycles(bench))
    finally:
        nats.down()
    p = {m: np.percentile(np.array(t) * 1e3, [50, 99]) for m, t in times.items()}
    print(f"\nquote cycle (cancel-all of 2 + bid + ask), daemon in-process, local exchange process, {ROUNDS} each, ms:")
    print(f"  {'one by one (baseline)':24s} p50 {p[False][0]:7.3f}  p99 {p[False][1]:7.3f}")
    print(f"  {'pipelined':24s} p50 {p[True][0]:7.3f}  p99 {p[True][1]:7.3f}")
    print(f"  ratio pipelined / baseline: p50 {p[True][0] / p[False][0]:.2f}  p99 {p[True][1] / p[False][1]:.2f}")
