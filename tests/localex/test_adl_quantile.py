"""``GET /fapi/v1/adlQuantile`` and ``GET /fapi/v1/symbolConfig`` on the local exchange, as Binance documents
them: one quantile row per symbol with an open position (0..4 under ``BOTH`` in one-way mode, ``LONG``/``SHORT``
in hedge mode), positions of a side ranked among every account's, weight 5, an unknown symbol -1121, and the
Binance connector reading it by (symbol, position side); each symbol's leverage and margin type as set (and
positionRisk v2 reporting an isolated margin type, which it used to spell "cross")."""

from __future__ import annotations

import json
import urllib.request

from oms.model import Market, OrderType, PlaceOrder, PositionSide, Side
from tests.localex.rest_support import Ctx, call, signed
from tests.venues.binance.conftest import Harness


def weight_of_adl(c: Ctx) -> int:
    """The IP weight one adlQuantile request costs (X-MBX-USED-WEIGHT-1M before and after)."""

    def used(path: str) -> int:
        url = c.url + path + "?" + signed(c.secret, {})
        req = urllib.request.Request(url, headers={"X-MBX-APIKEY": c.key})
        with urllib.request.urlopen(req, timeout=5) as resp:
            json.loads(resp.read())
            return int(resp.headers["X-MBX-USED-WEIGHT-1M"])

    first = used("/fapi/v1/adlQuantile")
    return used("/fapi/v1/adlQuantile") - first


def test_quantiles_rank_the_positions_of_a_side_and_one_way_reports_both(server):
    a, b, c = Ctx(server), Ctx(server), Ctx(server)
    assert a.sig("GET", "/fapi/v1/adlQuantile") == []  # no position, no row
    a.sig("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=20)
    b.sig("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=2)
    for ctx in (a, b):
        ctx.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.05")
    c.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")
    [row_a] = a.sig("GET", "/fapi/v1/adlQuantile")
    [row_b] = b.sig("GET", "/fapi/v1/adlQuantile", symbol="BTCUSDT")
    [row_c] = c.sig("GET", "/fapi/v1/adlQuantile")
    assert row_a["symbol"] == "BTCUSDT" and set(row_a["adlQuantile"]) == {"LONG", "SHORT", "BOTH"}
    qa, qb, qc = (r["adlQuantile"]["BOTH"] for r in (row_a, row_b, row_c))
    assert all(1 <= q <= 4 for q in (qa, qb, qc))
    assert row_a["adlQuantile"]["LONG"] == row_a["adlQuantile"]["SHORT"] == 0
    risk = {r["symbol"]: r for r in a.sig("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")}  # type: ignore[union-attr]
    assert risk["BTCUSDT"]["leverage"] == "20"
    assert weight_of_adl(a) == 5
    bad = call(a.url + "/fapi/v1/adlQuantile?" + signed(a.secret, {"symbol": "NOPEUSDT"}), "GET",
               {"X-MBX-APIKEY": a.key})  # fmt: skip
    assert bad[0] == 400 and bad[1]["code"] == -1121  # type: ignore[index]


async def test_the_binance_connector_reads_the_quantiles(server):
    h = Harness(server)
    try:
        c = await h.account(Market.USDM)
        assert await c.execution.adl_quantiles() == {}
        await c.execution.place(
            PlaceOrder(
                account=str(c.ctx.account),
                symbol="BTC/USDT:USDT",
                side=Side.BUY,
                order_type=OrderType.MARKET,
                qty="0.05",
                intent="adl",
            ).with_client_order_id()  # fmt: skip
        )
        got = await c.execution.adl_quantiles()
        assert set(got) == {("BTC/USDT:USDT", s) for s in PositionSide}
        assert 1 <= got[("BTC/USDT:USDT", PositionSide.BOTH)] <= 4 and got[("BTC/USDT:USDT", PositionSide.LONG)] == 0
    finally:
        await h.close()


def test_symbol_config_and_position_risk_report_the_margin_type_and_leverage_set(server):
    c = Ctx(server)
    c.sig("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=7)
    c.sig("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    [conf] = c.sig("GET", "/fapi/v1/symbolConfig", symbol="BTCUSDT")
    assert (conf["symbol"], conf["marginType"], conf["leverage"]) == ("BTCUSDT", "ISOLATED", 7)
    assert {r["symbol"] for r in c.sig("GET", "/fapi/v1/symbolConfig")} >= {"BTCUSDT", "ETHUSDT"}
    [row] = c.sig("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    assert (row["marginType"], row["leverage"]) == ("isolated", "7")  # was always "cross" before
