"""Startup reconciliation of 200 accounts against the local exchange (its own process), beside a baseline.

Every account has a resting order the daemon does not know, and half of them fills; JetStream (a real
nats-server) starts empty. Measured for ``Reconciler.run`` (16 accounts at a time, every call paced within
80% of the IP's weight budget, Binance's 6000/min Spot):

* wall time of the whole startup reconciliation (adoption, fills published, balances, kernel, KV);
* peak share of the IP weight budget (the fixed one-minute windows Binance counts in) and the busiest 60 s;
* resident memory of this process (the daemon side: 200 accounts' clients, gateway, kernels; the exchange
  runs elsewhere), which must stay under 1 GB.

Baseline, same run, same clients: the same venue calls (open orders, balances, fills per account) made one
after the other with the limits lifted, i.e. what a naive startup does: its time and the share of the budget
it would have used in its busiest minute.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time

import pytest

from localex.admin_client import AdminClient
from oms.model import Market, OrderType, PlaceOrder, Side
from oms.venues.ratelimit import Window
from stream.reconcile_pacing import WeightPacer
from tests.harness.remote_exchange import RemoteExchange
from tests.localex.conftest import localex_process
from tests.stream.reconcile_kit import SPOT, connect_bus, new_daemon, reconciler, target
from tests.venues.binance.conftest import Harness

pytestmark = pytest.mark.bench
ACCOUNTS = 200
IP_LIMIT = 6000  # Binance Spot request weight per IP and minute


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class Tally:
    """Weight charged to the IP over time (from the budget's own counts), for the busiest 60 s."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.weight: list[int] = []

    def add(self, w: int) -> None:
        self.at.append(time.monotonic())
        self.weight.append(w)

    def busiest_60s(self) -> int:
        best, total, lo = 0, 0, 0
        for hi in range(len(self.at)):
            total += self.weight[hi]
            while self.at[hi] - self.at[lo] > 60:
                total -= self.weight[lo]
                lo += 1
            best = max(best, total)
        return best


def ip_count(h: Harness) -> int:
    ip = next(iter(h.limits.ips.values()))
    w = ip.weight[60]
    w._roll(time.time_ns())
    return w.count


async def _setup(h: Harness, remote: RemoteExchange):
    created = [remote.new_account(spot={"USDT": "100000", "BTC": "1"}) for _ in range(ACCOUNTS)]
    names = [f"bench{k:03d}" for k in range(ACCOUNTS)]
    clients = []
    for i in range(0, ACCOUNTS, 25):
        clients.extend(
            await asyncio.gather(
                *(h.account(Market.SPOT, existing=created[k], name=names[k]) for k in range(i, min(ACCOUNTS, i + 25)))
            )
        )

    def order(c, side: Side, price: str, intent: str) -> PlaceOrder:
        return PlaceOrder(
            account=str(c.ctx.account), symbol=SPOT, side=side, order_type=OrderType.LIMIT, qty="0.001", price=price,
            intent=intent,
        ).with_client_order_id()  # fmt: skip

    for i in range(0, ACCOUNTS, 25):  # a resting order each, unknown to the daemon
        await asyncio.gather(*(c.execution.place(order(c, Side.BUY, "5000.00", "rest")) for c in clients[i : i + 25]))
    for k in range(0, ACCOUNTS, 2):  # pairs trade with each other: every account has a fill
        a, b = clients[k], clients[k + 1]
        await a.execution.place(order(a, Side.SELL, f"{6000 + k}.00", "cross"))
        await b.execution.place(order(b, Side.BUY, f"{6000 + k}.00", "cross"))
    return names, clients


async def _run(url: str, admin_token: str, nats_server, tmp) -> dict:
    remote = RemoteExchange(url, AdminClient(url, admin_token))
    h = Harness(remote)  # type: ignore[arg-type]
    bus = await connect_bus(nats_server, tmp / "outbox")
    try:
        names, clients = await _setup(h, remote)
        rss_before = rss_mb()
        await asyncio.sleep(61 - time.time() % 60)  # a fresh weight window: setup's weight not counted
        d = await new_daemon(h, names)
        pacer = WeightPacer(0.8)
        r = reconciler(d, bus, pacer=pacer, concurrency=16)
        t0 = time.perf_counter()
        reports = await r.run([target(c) for c in clients])
        took = time.perf_counter() - t0
        assert all(rep.ok for rep in reports), [rep.error for rep in reports if not rep.ok][:3]
        assert sum(len(rep.adopted) for rep in reports) >= ACCOUNTS
        assert all(rep.fills_new >= 1 for rep in reports)
        rss_after = rss_mb()
        peak = pacer.peak_share

        # baseline: the same calls one after the other, limits lifted
        for w in [
            *(b.weight[60] for b in h.limits.accounts.values()),
            *(ip.weight[60] for ip in h.limits.ips.values()),
        ]:
            w.limit = 10**9
        for b in h.limits.accounts.values():
            b.orders = {k: Window(w.name, w.interval_ns / 1e9, 10**9) for k, w in b.orders.items()}
        tally = Tally()
        since = time.time_ns() - 3600 * 10**9
        t1 = time.perf_counter()
        for c in clients:
            for call in (c.execution.open_orders(SPOT), c.execution.balances(), c.execution.fills(SPOT, since)):
                before = ip_count(h)
                await call
                tally.add(max(0, ip_count(h) - before))
        base_took = time.perf_counter() - t1
        events = sum(rep.events for rep in reports)
        return {
            "took": took, "peak": peak, "rss_before": rss_before, "rss_after": rss_after, "events": events,
            "calls": sum(rep.calls for rep in reports), "base_took": base_took,
            "base_peak": tally.busiest_60s() / IP_LIMIT, "base_weight": sum(tally.weight),
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }  # fmt: skip
    finally:
        await h.close()
        await bus.close()


def test_startup_reconciliation_of_200_accounts(nats_server, tmp_path) -> None:
    with localex_process(tmp_path / "lx", "--no-rate-limits", "--max-open-orders", "1000000") as (_, url):
        token = (tmp_path / "lx" / "localex-admin-token").read_text().strip()
        out = asyncio.run(_run(url, token, nats_server, tmp_path))
    print(f"\nStartup reconciliation, {ACCOUNTS} Spot accounts on the local exchange (IP budget {IP_LIMIT}/min):")
    print(f"  Reconciler.run (16 at a time, paced at 80%)  {out['took']:7.1f} s  {out['calls']} calls  "
          f"{out['events']} events  peak {out['peak']:.0%} of the IP budget (fixed 1-min windows)")  # fmt: skip
    print(f"  baseline: same calls sequential, no limits   {out['base_took']:7.1f} s  "
          f"weight {out['base_weight']}  busiest 60 s {out['base_peak']:.0%} of the IP budget")  # fmt: skip
    print(f"  resident memory: {out['rss_before']:.0f} MB with the clients, {out['rss_after']:.0f} MB after "
          f"reconciliation (peak {out['maxrss']:.0f} MB)")  # fmt: skip
    print(json.dumps({k: round(v, 3) for k, v in out.items()}))
    assert out["peak"] <= 0.8, "reconciliation must stay within 80% of the IP's weight budget"
    assert out["rss_after"] < 1024, "200 accounts must fit in 1 GB"
