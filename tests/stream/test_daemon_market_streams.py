"""Klines and funding through the daemon's market data, against the local exchange: bars of the configured
intervals on Spot and USD-M, and each perpetual's mark price with its funding rate and next funding time, are
normalised events on core NATS ``md.{exchange}.{market}.{symbol}`` beside the trades and books; the mark
moves the perpetual's mark in the kernel state."""

from __future__ import annotations

from decimal import Decimal

import yaml

from kernels.state import I_MARK
from oms.model import Kline, MarkPrice
from oms.model.codec import decode
from tests.stream.conftest import unique, until

PERP = "BTC/USDT:USDT"


async def test_klines_and_mark_prices_with_funding_go_out_on_md_subjects(bench, nc):
    name = unique("md")
    cfg = bench.write([name], usdm=(PERP,))  # the daemon streams the markets it trades
    doc = yaml.safe_load((cfg / "stream.yaml").read_text())
    doc["daemon"]["kline_intervals"] = ["1m", "5m"]
    (cfg / "stream.yaml").write_text(yaml.safe_dump(doc))
    got: dict[str, list] = {"spot": [], "usdm": []}

    def collector(market: str):
        async def collect(msg) -> None:
            got[market].append(decode(msg.data))

        return collect

    subs = [await nc.subscribe(f"md.binance.{m}.BTC-USDT", cb=collector(m)) for m in got]
    d = bench.daemon()
    await d.start()
    try:

        def seen(market: str, kind: type) -> list:
            return [e for e in got[market] if isinstance(e, kind)]

        for market, symbol in (("spot", "BTC/USDT"), ("usdm", PERP)):
            await until(lambda m=market: {k.interval for k in seen(m, Kline)} >= {"1m", "5m"}, timeout=30,
                        what=f"{market} klines of both intervals")  # fmt: skip
            for k in seen(market, Kline):
                assert k.symbol == symbol and k.exchange == "binance" and k.open_ns < k.close_ns
                assert Decimal(k.low) <= Decimal(k.close) <= Decimal(k.high)
        marks = await until(lambda: [m for m in seen("usdm", MarkPrice) if m.funding_rate is not None], timeout=30,
                            what="mark prices with the funding rate")  # fmt: skip
        last = marks[-1]
        assert last.symbol == PERP and Decimal(last.mark_price) > 0 and last.next_funding_ns > 0
        assert not seen("spot", MarkPrice)  # Spot has no mark-price stream
        feed = next(f for f in d.feeds if f.market.value == "usdm")
        i = feed.numbers[PERP]
        ins = d.wiring.instruments.instrument(i)[1]
        await until(lambda: d.wiring.state.ins[I_MARK, i] > 0, what="the perpetual's mark in the kernel")
        mark = Decimal(ins.price_str(int(d.wiring.state.ins[I_MARK, i])))
        assert abs(mark / Decimal(last.mark_price) - 1) < Decimal("0.05")
        body = d.metrics.render().decode()
        assert 'oms_md_events_total{kind="Kline"}' in body and 'oms_md_events_total{kind="MarkPrice"}' in body
    finally:
        for sub in subs:
            await sub.unsubscribe()
        await d.stop()
