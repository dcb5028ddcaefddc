"""The contract's own machinery, without a connector: the seeded venue, its truth helpers, the book mirror
and the commands it sends (so a connector that fails the contract fails on the connector, not the harness)."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal

import aiohttp
import pytest

from kernels import book as kbook
from oms.model import BookSnapshot, DepthDiff, Instrument, InstrumentSpec, Market, OrderType, validate
from oms.venues import Capabilities, Endpoints
from tests.venues.contract import QTY, BookMirror, ContractVenue, Facets, VenueContract, canon


@pytest.fixture(scope="module")
def venue():
    yield from ContractVenue.start()


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_seeded_book_last_price_and_mark(venue):
    for prefix in ("/api/v3", "/fapi/v1"):
        snap = _get(f"{venue.url}{prefix}/depth?symbol=BTCUSDT&limit=100")
        assert len(snap["bids"]) == 10 and len(snap["asks"]) == 10
        assert Decimal(snap["bids"][0][0]) == 29999 and Decimal(snap["asks"][0][0]) == 30000
        trades = _get(f"{venue.url}{prefix}/trades?symbol=BTCUSDT")
        assert trades and Decimal(trades[-1]["price"]) == 30000
    assert Decimal(_get(f"{venue.url}/fapi/v1/premiumIndex?symbol=BTCUSDT")["markPrice"]) == 30000


async def test_trader_truth_helpers(venue):
    creds = venue.new_trader(Market.USDM, "binance")
    assert venue.admin_balances(creds.account, Market.SPOT)["USDT"] == (Decimal(1000000), Decimal(0))
    async with aiohttp.ClientSession() as http:
        venue.http = http
        rows = await venue.signed("GET", "/fapi/v3/positionRisk", creds, symbol="BTCUSDT")
        assert all(Decimal(r["positionAmt"]) == 0 for r in rows)
        account = await venue.signed("GET", "/api/v3/account", creds)
        assert any(b["asset"] == "BTC" and Decimal(b["free"]) == 10 for b in account["balances"])
    venue.http = None
    await venue.run(lambda: venue.trade(Market.SPOT, "BUY", QTY[Market.SPOT]))
    assert Decimal(_get(f"{venue.url}/api/v3/trades?symbol=BTCUSDT")[-1]["qty"]) == Decimal(QTY[Market.SPOT])


def test_book_mirror_applies_snapshots_and_diffs_and_flags_gaps():
    inst = Instrument(InstrumentSpec("BTC/USDT", tick_size="0.01", step_size="0.00001"))
    m = BookMirror(inst)
    m.snapshot(BookSnapshot(exchange="binance", symbol="BTC/USDT", last_update_id=10,
                            bids=(("100.00", "1"), ("99.5", "2")), asks=(("101", "3"),)))  # fmt: skip
    assert m.diff(DepthDiff(exchange="binance", symbol="BTC/USDT", first_update_id=5, last_update_id=10,
                            event_ns=1)) == kbook.STALE  # fmt: skip
    d = DepthDiff(exchange="binance", symbol="BTC/USDT", first_update_id=9, last_update_id=12,
                  bids=(("99.5", "0"), ("100.5", "0.5")), asks=(("101", "2.5"),), event_ns=1)  # fmt: skip
    assert m.diff(d) == kbook.APPLIED and m.last_id == 12 and m.applied == 1
    assert m.side(kbook.BID) == canon([("100.50", "0.50000"), ("100", "1")]) == [("100.5", "0.5"), ("100", "1")]
    assert m.side(kbook.ASK) == [("101", "2.5")]
    gap = DepthDiff(exchange="binance", symbol="BTC/USDT", first_update_id=14, last_update_id=15, event_ns=1)
    assert m.diff(gap) == kbook.GAP and m.gaps == 1


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
def test_commands_for_every_order_type_are_valid_messages(market):
    f = Facets(ctx=_Ctx(market), instruments=None, market_data=None, execution=None, user_data=None,
               symbol=VenueContract.SYMBOLS[market])  # fmt: skip
    ids = set()
    for order_type in OrderType:
        cmd = VenueContract().place_cmd(f, order_type)
        assert validate(cmd) == cmd and cmd.client_order_id.startswith("ct-")
        assert (cmd.price is not None) == order_type.has_limit_price
        assert (cmd.stop_price is not None) == order_type.has_trigger
        ids.add(cmd.client_order_id)
    assert len(ids) == len(OrderType)
    assert Capabilities(market=market).order_types <= set(OrderType)
    assert Endpoints("http://x").venue == "local"


class _Ctx:
    def __init__(self, market):
        self.market = market
        self.account = "binance/10000001"

    def __str__(self):
        return self.account
