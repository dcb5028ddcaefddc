"""USD-M position monitoring inside the daemon, against the local exchange: a 20x long bought over NATS shows in
``/health/{exchange}/{account}`` with its position mode, liquidation price, liquidation distance and ADL
quantile (the exchange's own ``adlQuantile``); crossing the configured thresholds raises one
``liquidation_risk`` and one ``adl_risk`` event on ``risk.binance.{account}`` and a log line each, not one per
tick; closing the position ends both."""

from __future__ import annotations

import json
import logging
import urllib.request
from decimal import ROUND_UP, Decimal

import aiohttp
import yaml

from oms.model import MarginType, Market, OrderType, PlaceOrder, PositionSide, Side
from tests.stream.conftest import request, unique, until
from tests.stream.test_daemon_risk_webhook import risk_events

PERP = "BTC/USDT:USDT"


def futures_mid(bench) -> Decimal:
    with urllib.request.urlopen(f"{bench.exchange.url}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", timeout=5) as r:
        doc = json.loads(r.read())
    return (Decimal(doc["bidPrice"]) + Decimal(doc["askPrice"])) / 2


async def test_liquidation_distance_and_adl_are_monitored_with_alerts(bench, nc, caplog):
    name = unique("fut")
    cfg = bench.write([name], usdm=(PERP,))
    risk = yaml.safe_load((cfg / "risk.yaml").read_text())
    risk["futures_monitor"] = {"interval_s": 1, "min_liquidation_distance_pct": 50, "adl_alert_quantile": 1}
    risk["defaults"]["max_leverage"] = 20
    (cfg / "risk.yaml").write_text(yaml.safe_dump(risk))
    acct = bench.account(name)
    caplog.set_level(logging.INFO, logger="stream.futures")
    d = bench.daemon()
    await d.start()
    try:
        assert d.futures is not None
        execution = d.sessions[acct].links[Market.USDM].clients.execution
        assert (await execution.set_leverage(PERP, 20)).leverage == 20
        settled = await execution.set_margin_type(PERP, MarginType.ISOLATED)  # a liquidation price of its own
        assert [x.margin_type for x in await execution.symbol_settings(PERP)] == [MarginType.ISOLATED], settled
        qty = str((Decimal(300) / futures_mid(bench)).quantize(Decimal("0.001"), ROUND_UP))
        buy = PlaceOrder(account=acct, symbol=PERP, side=Side.BUY, order_type=OrderType.MARKET, qty=qty, intent="in")
        [r] = (await request(nc, acct, buy)).results
        assert r.ok, r
        views = await until(lambda: d.futures.views.get(acct), timeout=30, what="the position in the monitor")
        [v] = views
        assert v.symbol == PERP and Decimal(v.qty) == Decimal(qty) and v.position_mode == "one_way"
        assert v.margin_type == "isolated" and v.leverage == 20
        assert v.liquidation_price is not None and Decimal(v.liquidation_price) < Decimal(v.entry_price)
        # 20x: the mark is about 5% above the liquidation price
        assert 0 < Decimal(v.liquidation_distance_pct) < 50, v
        assert v.adl_quantile == (await execution.adl_quantiles())[(PERP, PositionSide.BOTH)] >= 1
        events = await until(lambda: _alerts(nc, name), timeout=30, what="the two alerts")
        assert sorted(e.action for e in events) == ["adl_risk", "liquidation_risk"], events
        assert any(f"from the liquidation price {v.liquidation_price}" in e.reason for e in events)
        ticks = d.futures.ticks
        await until(lambda: d.futures.ticks >= ticks + 2, what="two more monitor ticks")
        assert len(await _alerts(nc, name)) == 2  # raised once, not at every tick
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bench.health_port}/health/binance/{name}") as resp:
                health = await resp.json()
        assert health["futures"][0]["liquidation_price"] == v.liquidation_price
        assert sum("futures monitor" in m and "liquidation_risk" in m for m in caplog.messages) == 1

        sell = PlaceOrder(account=acct, symbol=PERP, side=Side.SELL, order_type=OrderType.MARKET, qty=qty,
                          reduce_only=True, intent="out")  # fmt: skip
        [r] = (await request(nc, acct, sell)).results
        assert r.ok, r
        await until(lambda: d.futures.views.get(acct) == [], timeout=30, what="the closed position gone")
        assert not d.futures.active and any("liquidation_risk over" in m for m in caplog.messages)
    finally:
        await d.stop()


async def _alerts(nc, name: str):
    return [e for e in await risk_events(nc, name) if e.action in ("liquidation_risk", "adl_risk")]
