"""REST bodies against Binance's documented examples, one row per body (``rest_body_cases``).

The key lists (``rest_body_keys``) are copied from Binance's documentation (response examples), one table row per body:
- Spot: binance-spot-api-docs ``rest-api.md`` (https://developers.binance.com/docs/binance-spot-api-docs/rest-api)
  and ``faqs/commission_faq.md`` (commission and ``computeCommissionRates`` bodies).
- USD-M futures: https://developers.binance.com/docs/derivatives/usds-margined-futures (Market Data, Trade,
  Account pages: "New Order", "Position Information V2/V3", "Account Information V2/V3", ...).
- SAPI: https://developers.binance.com/docs/sub_account and /docs/wallet (universalTransfer, asset/transfer).
Each row names the exact key set, in Binance's order where the docs fix one, and each value's JSON type:
``DEC`` a decimal string ("0.01000000", never a float or "0E-8"), ``INT`` an integer (ids, ms times).
"""

from __future__ import annotations

import re

import pytest

from tests.localex.rest_body_cases import CASES, Fetch
from tests.localex.rest_support import DEC, INT, Ctx, funded_ctx, type_ok


@pytest.fixture(scope="module")
def ctx(server) -> Ctx:
    return funded_ctx(server)


@pytest.mark.parametrize(("name", "fetch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_body_matches_documented_keys_and_types(ctx: Ctx, name: str, fetch: Fetch, expected: dict[str, str]) -> None:
    body = fetch(ctx)
    assert isinstance(body, dict), body
    assert list(body) == list(expected), f"{name}: keys differ from Binance's documented example"
    bad = {k: body[k] for k, kind in expected.items() if not type_ok(kind, body[k])}
    assert not bad, f"{name}: values of the wrong JSON type: {bad}"


def test_klines_rows_are_ints_and_decimal_strings(ctx: Ctx) -> None:
    kinds = [INT, DEC, DEC, DEC, DEC, DEC, INT, DEC, INT, DEC, DEC, DEC]  # rest-api.md "Kline/Candlestick data"
    for path in ("/api/v3/klines", "/fapi/v1/klines"):
        rows = ctx.pub(path, symbol="BTCUSDT", interval="1m", limit=3)
        assert rows and all(len(r) == 12 and all(type_ok(k, v) for k, v in zip(kinds, r, strict=True)) for r in rows)


def test_decimal_formats_follow_binance(ctx: Ctx) -> None:
    order = ctx.sig("GET", "/api/v3/allOrders", symbol="BTCUSDT")[0]
    assert order["type"] == "MARKET" and order["timeInForce"] == "GTC"  # Binance prints GTC for MARKET orders
    assert re.fullmatch(r"[0-9]+\.[0-9]{8}", order["origQty"])  # spot: 8 decimals
    risk = ctx.sig("GET", "/fapi/v2/positionRisk", symbol="ETHUSDT")[0]  # no position: zeros, never "0E-8"
    assert "E" not in risk["entryPrice"] + risk["liquidationPrice"] and float(risk["entryPrice"]) == 0
    fut = ctx.pub("/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", fut["priceChange"])  # BTCUSDT pricePrecision 2
    assert ctx.sig("GET", "/fapi/v3/positionRisk", symbol="ETHUSDT") == []  # v3: only active positions
    ack = ctx.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    assert (ack["status"], float(ack["executedQty"])) == ("NEW", 0)  # default ACK: the order as accepted
    assert ctx.sig("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=ack["orderId"])["status"] == "FILLED"
