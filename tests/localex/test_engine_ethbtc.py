"""ETHBTC, a market quoted in a coin: tick 0.00001 x step 0.0001 = 1e-9 BTC, below the ledger's 1e-8.

Notionals are exact in 1e-12 BTC (filters); each fill settles its quote value truncated to 1e-8, the same
amount leaving the buyer and reaching the seller; a buy locks its exact value rounded up. Nothing is created or
destroyed (the exchange's conservation check), hand-worked examples below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from localex.engine import Exchange, ExchangeError, OrderRequest, Replay
from oms.archive.market import load_price_path
from oms.archive.pricepath import PRICE_SCALE, CrossPath

T0 = 1_700_000_000_000_000_000
E8 = 10**8
DATASETS = Path(__file__).resolve().parents[2] / "datasets" / "market"


def req(side: str, qty: str | None, price: str | None = None, type_: str = "LIMIT", **kw: object) -> OrderRequest:
    tif = "GTC" if type_ == "LIMIT" else None
    return OrderRequest("spot", "ETHBTC", side, type_, quantity=qty, price=price, time_in_force=tif, **kw)


@pytest.fixture
def ex() -> Exchange:
    clock = iter(range(T0, T0 + 10**12, 1000))
    return Exchange(clock=lambda: next(clock))


def funded(ex: Exchange, btc: str = "1", eth: str = "10") -> str:
    a = ex.create_account().account_id
    ex.fund(a, "BTC", btc)
    ex.fund(a, "ETH", eth)
    return a


def bal(ex: Exchange, account: str) -> dict[str, tuple[int, int]]:
    return {b.asset: (b.free, b.locked) for b in ex.balances(account)}


def conserved(ex: Exchange) -> bool:
    return ex.totals() == {asset: units for (wallet, asset), units in ex.deposits.items() if wallet == "SPOT"}


def test_ethbtc_is_listed_with_binance_filters_and_exact_notionals(ex: Exchange) -> None:
    s = ex.spec("spot", "ETHBTC")
    assert (s.base_asset, s.quote_asset, s.tick_size, s.step_size) == (
        "ETH",
        "BTC",
        Decimal("0.00001"),
        Decimal("0.0001"),
    )
    assert (s.quote_decimals, s.quote_scale, s.notional_unit) == (12, 10**4, 1000)  # 1e-9 BTC = 1000 x 1e-12
    assert s.min_notional_units == 10**8  # 0.0001 BTC in 1e-12
    assert s.fmt_price(s.parse_price("0.03512")) == "0.03512000"
    usdt = ex.spec("spot", "BTCUSDT")
    assert (usdt.quote_decimals, usdt.quote_scale, usdt.notional_unit) == (8, 1, 10)  # unchanged
    assert s.settled_quote(101_848_000) == 10184 and s.lock_quote(101_848_000) == 10185
    assert s.settled_quote(101_840_000) == s.lock_quote(101_840_000) == 10184  # exact: no rounding either way


def test_notional_filter_is_exact_below_1e8(ex: Exchange) -> None:
    a = funded(ex)
    with pytest.raises(ExchangeError, match="NOTIONAL"):
        ex.place_order(a, req("BUY", "0.0028", "0.03512"))  # 0.000098336 BTC < 0.0001
    o = ex.place_order(a, req("BUY", "0.0032", "0.03125")).order  # 0.0001 BTC exactly: allowed
    assert o.status == "NEW" and o.locked == 10000
    with pytest.raises(ExchangeError, match="NOTIONAL"):
        ex.place_order(a, req("BUY", "0.0001", "0.03512"))  # 0.000003512 BTC


def test_a_fill_settles_its_quote_truncated_to_1e8_on_both_sides(ex: Exchange) -> None:
    seller, buyer = funded(ex), funded(ex)
    ex.place_order(seller, req("SELL", "0.0029", "0.03512"))
    res = ex.place_order(buyer, req("BUY", "0.0029", "0.03513"))
    # 0.0029 x 0.03512 = 0.000101848 BTC exactly; settled 0.00010184 (the taker's better price: its surplus returns)
    (fill,) = res.fills
    assert (res.order.status, fill.quote_qty, res.order.cum_quote) == ("FILLED", 10184, 10184)
    assert fill.commission == 290 and fill.commission_asset == "ETH"  # 0.1% of 0.0029 ETH
    assert bal(ex, buyer) == {"BTC": (E8 - 10184, 0), "ETH": (10 * E8 + 290_000 - 290, 0)}
    # the seller receives the same 0.00010184 less its 0.1% maker fee (0.000000101840 -> 10, half-up)
    assert bal(ex, seller) == {"BTC": (E8 + 10184 - 10, 0), "ETH": (10 * E8 - 290_000, 0)}
    assert bal(ex, ex.FEE_ACCOUNT) == {"BTC": (10, 0), "ETH": (290, 0)}
    assert conserved(ex)


def test_a_buy_locks_its_exact_value_rounded_up_and_covers_every_truncated_fill(ex: Exchange) -> None:
    makers = [funded(ex) for _ in range(3)]
    buyer = funded(ex)
    rest = ex.place_order(buyer, req("BUY", "0.0031", "0.03513")).order
    assert rest.locked == 10891 and bal(ex, buyer)["BTC"] == (E8 - 10891, 10891)  # 0.000108903 rounded up
    ex.cancel_order(buyer, "spot", "ETHBTC", rest.order_id)
    assert bal(ex, buyer)["BTC"] == (E8, 0)
    for m, price in zip(makers, ("0.03511", "0.03512", "0.03513"), strict=True):
        ex.place_order(m, req("SELL", "0.0029", price))
    res = ex.place_order(buyer, req("BUY", "0.0090", "0.03513"))  # locks 0.00031617 exactly
    # fills 0.000101819, 0.000101848, 0.000101877 -> 10181 + 10184 + 10187; 0.0003 ETH rests at 0.03513
    assert [f.quote_qty for f in res.fills] == [10181, 10184, 10187]
    o = res.order
    assert (o.status, o.executed_qty, o.cum_quote) == ("PARTIALLY_FILLED", 87, 30552)
    assert o.locked == 1054  # 0.0003 x 0.03513 = 0.000010539, rounded up; the surplus went back to free
    assert bal(ex, buyer)["BTC"] == (E8 - 30552 - 1054, 1054)
    assert conserved(ex)
    ex.cancel_order(buyer, "spot", "ETHBTC", o.order_id)
    assert bal(ex, buyer)["BTC"] == (E8 - 30552, 0) and conserved(ex)


def test_a_partly_filled_maker_accumulates_truncated_fills(ex: Exchange) -> None:
    seller, b1, b2 = funded(ex), funded(ex), funded(ex)
    o = ex.place_order(seller, req("SELL", "0.01", "0.03512")).order
    ex.place_order(b1, req("BUY", "0.0029", "0.03512"))
    ex.place_order(b2, req("BUY", "0.0029", "0.03512"))
    now = ex.get_order(seller, "spot", "ETHBTC", o.order_id)
    assert (now.status, now.cum_quote, now.executed_qty) == ("PARTIALLY_FILLED", 2 * 10184, 58)
    trades = ex.my_trades(seller, "spot", "ETHBTC")
    assert [t.quote_qty for t in trades] == [10184, 10184] and sum(t.commission for t in trades) == now.commission
    assert bal(ex, seller)["BTC"] == (E8 + 2 * 10184 - now.commission, 0)
    assert conserved(ex)


def test_a_quote_quantity_market_buy_never_spends_more_than_asked(ex: Exchange) -> None:
    seller, buyer = funded(ex), funded(ex)
    ex.place_order(seller, req("SELL", "1", "0.03512"))
    res = ex.place_order(buyer, req("BUY", None, type_="MARKET", quote_order_qty="0.0002"))
    # floor(0.0002 / 0.000003512) = 56 lots = 0.0056 ETH: 0.000196672 BTC exactly, settled 0.00019667
    assert (res.order.status, res.order.executed_qty, res.order.cum_quote) == ("FILLED", 56, 19667)
    assert bal(ex, buyer)["BTC"] == (E8 - 19667, 0) and conserved(ex)
    with pytest.raises(ExchangeError, match="NOTIONAL"):
        ex.place_order(buyer, req("BUY", None, type_="MARKET", quote_order_qty="0.00009999"))


def test_the_replayed_ethbtc_price_is_the_cross_of_its_legs() -> None:
    eth = load_price_path("ETHUSDT", "1d", archive=Path("/nonexistent"), datasets=DATASETS)
    btc = load_price_path("BTCUSDT", "1h", archive=Path("/nonexistent"), datasets=DATASETS)
    cross = CrossPath("ETHBTC", eth, btc)
    assert cross.start_ms == max(eth.start_ms, btc.start_ms) and cross.end_ms == min(eth.end_ms, btc.end_ms)
    t = cross.start_ms + 5 * 86_400_000 + 7_200_000
    want = Decimal(eth.price_at(t)) / Decimal(btc.price_at(t))
    assert abs(Decimal(cross.price_at(t)) / PRICE_SCALE - want) <= Decimal("0.000000005")
    now = [T0]
    ex = Exchange(clock=lambda: now[0], seed=3)
    Replay(ex, {"ETHUSDT": eth, "BTCUSDT": btc, "ETHBTC": cross}, speed=3600.0, start_data_ms=t)
    spec = ex.spec("spot", "ETHBTC")
    center = (cross.price_at(t) + spec.price_unit // 2) // spec.price_unit
    book = ex.depth("spot", "ETHBTC", 20)
    assert book.bids and book.asks and book.bids[0][0] < center < book.asks[0][0]
    assert center - book.bids[0][0] <= 2 and book.asks[0][0] - center <= 2  # 5 bp of ~0.03 BTC: a tick or two
    # levels worth about 0.1 BTC (jittered up to +50%), not 5000
    level_btc = book.asks[0][0] * book.asks[0][1] * spec.notional_unit / Decimal(10**12)
    assert Decimal("0.1") <= level_btc <= Decimal("0.1501")
    buyer = funded(ex)
    res = ex.place_order(buyer, req("BUY", "0.01", None, type_="MARKET"))
    assert res.order.status == "FILLED" and res.fills[0].price == book.asks[0][0]
    assert bal(ex, buyer)["BTC"] == (E8 - sum(f.quote_qty for f in res.fills), 0)
    now[0] += 60 * 10**9  # a minute of clock is an hour of history: both legs move, the cross follows
    ex.advance(now[0])
    moved = (cross.price_at(ex.replay.data_ms) + spec.price_unit // 2) // spec.price_unit  # type: ignore[union-attr]
    book = ex.depth("spot", "ETHBTC", 1)
    assert book.bids[0][0] < moved < book.asks[0][0]
