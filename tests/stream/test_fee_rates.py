"""The daemon's fee input is the account's own commission, fetched from the venue (the local exchange's Binance
endpoints through the real connector) on its timer; without it (a refused key here) an account keeps what it
fetched before, else takes the venue metadata's base tier, and says why in the log once."""

from __future__ import annotations

import logging

from kernels import book as K
from kernels import codes as C
from oms.venues.binance.metadata import USDM_METADATA
from stream.fees import FeeRates
from tests.stream.conftest import unique, until


async def test_the_daemon_fetches_the_accounts_commission_and_falls_back_with_a_reason(bench, caplog):
    name = unique()
    bench.write([name], usdm=("BTC/USDT:USDT",))
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        fees = d.fees
        assert fees is not None and fees.interval_s == 3600.0  # stream.yaml daemon.fee_refresh_s

        def fetched():
            got = {sym: r for (a, sym), r in fees.rates.items() if a == acct}
            return got if len(got) == 2 else None

        rates = await until(fetched, what="the account's commission on both markets")
        spot, perp = rates["BTC/USDT"], rates["BTC/USDT:USDT"]
        assert (spot.maker, spot.taker, spot.source) == ("0.001", "0.001", "venue")  # /api/v3/account/commission
        assert (perp.maker, perp.taker, perp.source) == ("0.0002", "0.0005", "venue")  # /fapi/v1/commissionRate
        a = d.sessions[acct].number
        i_spot = d.wiring.instruments.lookup("binance", "BTC/USDT")[0]
        i_perp = d.wiring.instruments.lookup("binance", "BTC/USDT:USDT")[0]
        assert (fees.maker_ppm(a, i_perp), fees.taker_ppm(a, i_perp), fees.taker_ppm(a, i_spot)) == (200, 500, 1000)
        # the strategies' QUOTE_QTY sizing reads it: a budget that buys q lots at the account's 0.05% taker fee
        # buys a lot less at the 0.1% the daemon assumed before
        ins = d.wiring.instruments.instrument(i_perp)[1]
        lv, meta = d.strategies.books
        best = await until(lambda: int(K.best(lv, meta, i_perp, K.ASK)[0]) or None, what="a USD-M ask")
        unit, q = best * ins.mult, 40 * ins.lot
        budget = q * unit + q * unit * 500 // 1_000_000
        assert q * unit + q * unit * 1000 // 1_000_000 > budget
        assert d.strategies._size_budget(budget, i_perp, C.BUY, ins, a) == q
        assert d.strategies._size_budget(budget, i_perp, C.BUY, ins) == q - ins.lot  # no account: 1,000 ppm

        # the key is refused now: the rates fetched before stay, and the log says why
        bench.exchange.admin("DELETE", f"/admin/v1/keys/{bench.accounts[name][1]}")
        with caplog.at_level(logging.WARNING, logger="stream.fees"):
            assert await fees.refresh() == 0
            assert await fees.refresh() == 0
        kept = [r for r in caplog.records if acct in r.getMessage() and "keeping the rates fetched before" in r.message]
        assert len(kept) == 2  # once per symbol, not once per pass
        assert fees.rates[(acct, "BTC/USDT:USDT")].source == "venue" and fees.taker_ppm(a, i_perp) == 500

        # a source that never fetched: the metadata's base tier, with the reason
        fresh = FeeRates(d.sessions, d.wiring.instruments)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="stream.fees"):
            assert await fresh.refresh() == 0
        perp = fresh.rates[(acct, "BTC/USDT:USDT")]
        tier = USDM_METADATA.fee()
        assert perp.source == "metadata" and fresh.fallbacks == 2
        assert (perp.maker, perp.taker) == (tier.maker, tier.taker) == ("0.0002", "0.0005")
        assert fresh.taker_ppm(a, i_perp) == 500 and fresh.taker_ppm(a, i_spot) == 1000
        assert any("using the metadata's tier 0" in r.getMessage() for r in caplog.records)
    finally:
        await d.stop()
