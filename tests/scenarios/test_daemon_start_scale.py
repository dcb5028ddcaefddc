"""Many accounts start at once: 24 accounts of one daemon against the local exchange start (lease, clients,
balances, user stream, reconciliation) up to ``start_concurrency`` at a time, within the IP's weight budget,
and every one of them trades afterwards."""

from __future__ import annotations

from decimal import Decimal

import yaml

from oms.model import OrderStatus
from stream.reconcile_hook import reconciler_of
from tests.stream.conftest import place, request, unique

N = 24


async def test_twenty_four_accounts_start_concurrently_within_the_weight_budget(bench, nc):
    names = [unique("many") for _ in range(N)]
    cfg = bench.write(names)
    doc = yaml.safe_load((cfg / "stream.yaml").read_text())
    assert "start_concurrency" not in doc["daemon"]  # the default: 16
    d = bench.daemon(ready_timeout_s=120.0)
    await d.start()
    try:
        assert d.settings.start_concurrency == 16
        not_trading = {n: s.refused for n, s in d.sessions.items() if not s.trading}
        assert not not_trading, not_trading
        assert d.start_peak == 16, d.start_peak  # 16 in flight at once, never more
        pacer = reconciler_of(d).pacer
        assert pacer.calls >= 2 * N and pacer.peak_share <= 0.8, (pacer.calls, pacer.peak_share)
        for ip in d.factory.limits.ips.values():  # the IP windows as the daemon's budget counts them
            for w in ip.weight.values():
                assert w.count <= 0.8 * w.limit, (w.name, w.count, w.limit)
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        for name in (names[0], names[-1]):  # the first and the last started both trade
            acct = bench.account(name)
            [r] = (await request(nc, acct, place(acct, "0.01", price, intent="after-start"))).results
            assert r.ok and r.status is OrderStatus.NEW, r
    finally:
        await d.stop()
