"""USD-M futures: positions, PnL, margin, reduce-only, post-only, stops and trailing stops."""

from __future__ import annotations

import pytest

from localex.engine import Exchange, ExchangeError, OrderRequest

T0 = 1_700_000_000_000_000_000
U = 10**8


def freq(side: str, qty: str | None, price: str | None = None, type_: str = "LIMIT", **kw: object) -> OrderRequest:
    tif = kw.pop("tif", "GTC" if price is not None else None)
    return OrderRequest("usdm", "BTCUSDT", side, type_, quantity=qty, price=price, time_in_force=tif, **kw)


@pytest.fixture
def ex() -> Exchange:
    clock = iter(range(T0, T0 + 10**12, 1000))
    return Exchange(clock=lambda: next(clock))


def trader(ex: Exchange, usdt: str = "10000") -> str:
    a = ex.create_account().account_id
    ex.fund(a, "USDT", usdt, "FUTURES")
    return a


def test_open_reduce_realised_pnl_fees_and_conservation(ex: Exchange) -> None:
    a, b = trader(ex), trader(ex)
    ex.place_order(a, freq("SELL", "0.1", "30000"))
    ex.place_order(b, freq("BUY", "0.1", "30000"))
    pa = ex.position_risk(a, "BTCUSDT")[0]
    pb = ex.position_risk(b, "BTCUSDT")[0]
    assert (pa.position_amt, pb.position_amt) == (-100, 100)
    assert str(pb.entry_price) == "30000.00000000"
    # b closes at 31000: +100 USDT realised; fees: maker 0.02%, taker 0.05% of notional
    ex.place_order(a, freq("SELL", "0.1", "31000"))
    r = ex.place_order(b, freq("SELL", "0.1", "31000", reduce_only=False))
    assert r.order.status == "NEW"  # same side as a's ask: it rests behind it
    ex.cancel_all(a, "usdm", "BTCUSDT")
    ex.place_order(a, freq("BUY", "0.1", "31000"))  # a buys from b: a closes short at a loss
    assert ex.position_risk(b, "BTCUSDT")[0].position_amt == 0
    fb = ex.my_trades(b, "usdm", "BTCUSDT")
    assert fb[-1].realized_pnl == 100 * U and fb[-1].is_maker
    wallet_b = ex.balance(b, "USDT", "FUTURES").free
    assert wallet_b == 10000 * U + 100 * U - 150 * 10**6 - 62 * 10**6  # taker 1.5, maker 0.62
    assert ex.futures_equity_total() == 20000 * U
    assert ex.position_risk(a, "BTCUSDT")[0].position_amt == 0


def test_margin_insufficient_and_leverage(ex: Exchange) -> None:
    a, b = trader(ex, "100"), trader(ex)
    ex.set_leverage(a, "BTCUSDT", 10)
    with pytest.raises(ExchangeError) as e:
        ex.place_order(a, freq("BUY", "0.1", "30000"))  # 3000 notional / 10 = 300 > 100
    assert (e.value.code, e.value.msg) == (-2019, "Margin is insufficient.")
    ex.set_leverage(a, "BTCUSDT", 125)
    ex.place_order(a, freq("BUY", "0.1", "30000"))  # 24 USDT margin
    assert ex.futures_account(a).open_order_initial_margin == 24 * U
    with pytest.raises(ExchangeError) as e:
        ex.set_leverage(a, "BTCUSDT", 126)
    assert e.value.code == -4028
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, freq("BUY", "0.001", "30000"))
    assert e.value.code == -4164


def test_reduce_only_post_only_and_margin_type(ex: Exchange) -> None:
    a, b = trader(ex), trader(ex)
    with pytest.raises(ExchangeError) as e:
        ex.place_order(a, freq("SELL", "0.1", "30000", reduce_only=True))
    assert (e.value.code, e.value.msg) == (-2022, "ReduceOnly Order is rejected.")
    ex.place_order(b, freq("SELL", "0.1", "30000"))
    with pytest.raises(ExchangeError) as e:
        ex.place_order(a, freq("BUY", "0.1", "30000", tif="GTX"))
    assert e.value.code == -5022
    ex.set_margin_type(a, "BTCUSDT", "ISOLATED")
    with pytest.raises(ExchangeError) as e:
        ex.set_margin_type(a, "BTCUSDT", "ISOLATED")
    assert e.value.code == -4046
    ex.place_order(a, freq("BUY", "0.1", "30000"))
    risk = ex.position_risk(a, "BTCUSDT")[0]
    assert risk.margin_type == "isolated" and risk.isolated_margin == 150 * U  # 3000 / 20x
    with pytest.raises(ExchangeError) as e:
        ex.set_margin_type(a, "BTCUSDT", "CROSSED")
    assert e.value.code == -4048
    # reduce-only larger than the position is clipped to it
    ex.place_order(b, freq("BUY", "0.5", "29000"))
    r = ex.place_order(a, freq("SELL", "0.5", None, type_="MARKET", reduce_only=True))
    assert r.order.executed_qty == 100 and ex.position_risk(a, "BTCUSDT")[0].position_amt == 0


def test_stop_market_on_mark_price_and_trailing_stop(ex: Exchange) -> None:
    a, lp = trader(ex), trader(ex, "1000000")
    ex.place_order(lp, freq("SELL", "1", "30000"))
    ex.place_order(a, freq("BUY", "0.1", None, type_="MARKET"))
    ex.place_order(lp, freq("BUY", "1", "29000"))
    ex.set_mark_price("BTCUSDT", 300000)
    with pytest.raises(ExchangeError) as e:
        ex.place_order(
            a,
            freq("SELL", None, type_="STOP_MARKET", stop_price="30100", close_position=True, working_type="MARK_PRICE"),
        )
    assert (e.value.code, e.value.msg) == (-2021, "Order would immediately trigger.")
    stop = ex.place_order(
        a, freq("SELL", None, type_="STOP_MARKET", stop_price="29500", close_position=True, working_type="MARK_PRICE")
    ).order
    ex.set_mark_price("BTCUSDT", 294000)
    o = ex.get_order(a, "usdm", "BTCUSDT", stop.order_id)
    assert o.status == "FILLED" and o.executed_qty == 100 and o.type == "MARKET"
    assert ex.position_risk(a, "BTCUSDT")[0].position_amt == 0
    # trailing stop: sell after a 1% pullback from the high since activation
    ex.place_order(a, freq("BUY", "0.1", "29000", type_="LIMIT"))  # fills? no: lp bid is 29000, we rest
    ex.cancel_all(a, "usdm", "BTCUSDT")
    ex.place_order(lp, freq("SELL", "1", "30000"))
    ex.place_order(a, freq("BUY", "0.1", None, type_="MARKET"))
    tr = ex.place_order(
        a,
        freq(
            "SELL",
            "0.1",
            None,
            type_="TRAILING_STOP_MARKET",
            callback_rate="1",
            working_type="MARK_PRICE",
            reduce_only=True,
        ),
    ).order
    for mark in (300000, 305000, 310000, 307000):  # high 31000; 1% below = 30690
        ex.set_mark_price("BTCUSDT", mark)
        assert ex.get_order(a, "usdm", "BTCUSDT", tr.order_id).status == "NEW"
    ex.set_mark_price("BTCUSDT", 306800)
    assert ex.get_order(a, "usdm", "BTCUSDT", tr.order_id).status == "FILLED"


def test_hedge_mode_positions(ex: Exchange) -> None:
    a, b = trader(ex), trader(ex)
    ex.set_position_mode(a, True)
    with pytest.raises(ExchangeError):
        ex.place_order(a, freq("BUY", "0.1", "30000"))  # positionSide BOTH in hedge mode
    ex.place_order(b, freq("SELL", "0.2", "30000"))
    ex.place_order(a, freq("BUY", "0.1", "30000", position_side="LONG"))
    ex.place_order(b, freq("BUY", "0.1", "29000"))
    ex.place_order(a, freq("SELL", "0.1", "29000", position_side="SHORT"))
    rows = {r.position_side: r.position_amt for r in ex.position_risk(a, "BTCUSDT")}
    assert rows == {"LONG": 100, "SHORT": -100}
    with pytest.raises(ExchangeError) as e:
        ex.set_position_mode(a, False)
    assert e.value.code == -4068


def test_percent_price_band_around_mark(ex: Exchange) -> None:
    """USD-M PERCENT_PRICE (exchangeInfo multiplierUp 1.05 / multiplierDown 0.95): LIMIT prices outside the
    band around the mark price are rejected with Binance's messages, at placement and on modify."""
    a = trader(ex, "1000000")
    ex.place_order(a, freq("BUY", "0.1", "1000"))  # no mark price yet: no band
    ex.set_mark_price("BTCUSDT", 300000)  # 30000.0
    with pytest.raises(ExchangeError) as e:
        ex.place_order(a, freq("SELL", "0.1", "31500.1"))
    assert (e.value.code, e.value.msg) == (-4016, "Limit price can't be higher than 31500.00.")
    with pytest.raises(ExchangeError) as e:
        ex.place_order(a, freq("BUY", "0.1", "28499.9"))
    assert (e.value.code, e.value.msg) == (-4024, "Limit price can't be lower than 28500.00.")
    edge = ex.place_order(a, freq("BUY", "0.1", "28500")).order  # the band's edges are inside
    ex.place_order(a, freq("SELL", "0.1", "31500"))
    with pytest.raises(ExchangeError) as e:
        ex.modify_order(a, "usdm", "BTCUSDT", order_id=edge.order_id, side="BUY", quantity="0.1", price="28000")
    assert e.value.code == -4024
    assert ex.get_order(a, "usdm", "BTCUSDT", edge.order_id).price == 285000  # unchanged, still resting
    ex.place_order(a, freq("SELL", "0.1", None, type_="STOP_MARKET", stop_price="25000"))  # stops: no band


def test_margin_type_and_position_mode_refused_with_open_orders_or_a_position(ex: Exchange) -> None:
    """Binance's USD-M codes: an open order alone refuses a margin-type change with -4047 and a position-mode
    change with -4067; a position refuses them with -4048 / -4068; unchanged is -4046 / -4059."""
    a, b = trader(ex), trader(ex)
    resting = ex.place_order(a, freq("BUY", "0.1", "29000")).order
    with pytest.raises(ExchangeError) as e:
        ex.set_margin_type(a, "BTCUSDT", "ISOLATED")
    assert (e.value.code, e.value.msg) == (-4047, "Margin type cannot be changed if there exists open orders.")
    with pytest.raises(ExchangeError) as e:
        ex.set_position_mode(a, True)
    assert (e.value.code, e.value.msg) == (-4067, "Position side cannot be changed if there exists open orders.")
    assert ex.margin_type(a, "BTCUSDT") == "CROSSED" and ex.position_mode(a) is False  # nothing half-applied
    ex.cancel_order(a, "usdm", "BTCUSDT", order_id=resting.order_id)
    ex.place_order(b, freq("SELL", "0.1", "30000"))
    ex.place_order(a, freq("BUY", "0.1", "30000"))  # a position, no open order
    with pytest.raises(ExchangeError) as e:
        ex.set_margin_type(a, "BTCUSDT", "ISOLATED")
    assert e.value.code == -4048
    with pytest.raises(ExchangeError) as e:
        ex.set_position_mode(a, True)
    assert e.value.code == -4068
    with pytest.raises(ExchangeError) as e:
        ex.set_position_mode(a, False)
    assert e.value.code == -4059
