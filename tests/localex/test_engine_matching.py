"""Spot matching semantics against hand-worked examples."""

from __future__ import annotations

import pytest

from localex.engine import Exchange, ExchangeError, OrderEvent, OrderRequest

T0 = 1_700_000_000_000_000_000


def req(
    side: str, qty: str | None, price: str | None = None, type_: str = "LIMIT", tif: str | None = "GTC", **kw: object
) -> OrderRequest:
    if type_ != "LIMIT" and "tif" not in kw and price is None:
        tif = None
    return OrderRequest("spot", "BTCUSDT", side, type_, quantity=qty, price=price, time_in_force=tif, **kw)


@pytest.fixture
def ex() -> Exchange:
    clock = iter(range(T0, T0 + 10**12, 1000))
    return Exchange(clock=lambda: next(clock))


def funded(ex: Exchange, usdt: str = "100000", btc: str = "10") -> str:
    a = ex.create_account()
    ex.fund(a.account_id, "USDT", usdt)
    ex.fund(a.account_id, "BTC", btc)
    return a.account_id


def test_price_time_priority_partial_fills_and_fees(ex: Exchange) -> None:
    s1, s2, b = funded(ex), funded(ex), funded(ex)
    o1 = ex.place_order(s1, req("SELL", "0.3", "50000")).order
    o2 = ex.place_order(s2, req("SELL", "0.3", "50000")).order
    o3 = ex.place_order(s1, req("SELL", "1", "49990")).order
    res = ex.place_order(b, req("BUY", "1.4", "50000"))
    # best price first (49990), then time priority at 50000: o1 fully, o2 0.1
    assert [(f.price, f.qty) for f in res.fills] == [(4999000, 100000), (5000000, 30000), (5000000, 10000)]
    assert res.order.status == "FILLED" and res.order.executed_qty == 140000
    assert ex.get_order(s1, "spot", "BTCUSDT", o3.order_id).status == "FILLED"
    assert ex.get_order(s1, "spot", "BTCUSDT", o1.order_id).status == "FILLED"
    o2now = ex.get_order(s2, "spot", "BTCUSDT", o2.order_id)
    assert o2now.status == "PARTIALLY_FILLED" and o2now.executed_qty == 10000
    # quote spent: 1 * 49990 + 0.4 * 50000 = 69990 USDT; buyer got 1.4 BTC minus 0.1% taker fee
    bal = {x.asset: x for x in ex.balances(b)}
    assert bal["USDT"].free == (100000 - 69990) * 10**8
    assert bal["BTC"].free == 10 * 10**8 + 140_000_000 - 140_000
    # seller s2 got 0.1 * 50000 = 5000 USDT minus 0.1% maker fee, and has 0.2 BTC still locked
    b2 = {x.asset: x for x in ex.balances(s2)}
    assert b2["USDT"].free == (100000 + 5000 - 5) * 10**8
    assert b2["BTC"].locked == 20_000_000
    fees = {x.asset: x.free for x in ex.balances(ex.FEE_ACCOUNT)}
    assert fees == {"BTC": 140_000, "USDT": 6999 * 10**6}
    assert ex.totals() == {"USDT": 300000 * 10**8, "BTC": 30 * 10**8}


def test_taker_gets_makers_price_and_surplus_lock_returned(ex: Exchange) -> None:
    s, b = funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.1", "40000"))
    r = ex.place_order(b, req("BUY", "0.2", "41000"))
    assert r.fills[0].price == 4000000 and r.order.status == "PARTIALLY_FILLED"
    bal = ex.balance(b, "USDT")
    # 0.1 filled at 40000, 0.1 rests at 41000 locked exactly
    assert bal.locked == 4100 * 10**8 and bal.free == (100000 - 4000 - 4100) * 10**8


def test_market_by_quantity_and_by_quote(ex: Exchange) -> None:
    s, b = funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.5", "30000"))
    ex.place_order(s, req("SELL", "0.5", "30010"))
    r = ex.place_order(b, req("BUY", "0.7", type_="MARKET", tif=None))
    assert r.order.status == "FILLED" and [f.qty for f in r.fills] == [50000, 20000]
    assert r.order.cum_quote == (15000 + 6002) * 10**8
    r2 = ex.place_order(b, req("BUY", None, type_="MARKET", tif=None, quote_order_qty="3001"))
    # 3001 USDT at 30010 buys exactly 0.1 BTC
    assert r2.order.executed_qty == 10000 and r2.order.cum_quote == 3001 * 10**8
    assert r2.order.status == "FILLED"
    assert ex.balance(b, "USDT").locked == 0


def test_market_order_expires_remainder_when_book_runs_out(ex: Exchange) -> None:
    s, b = funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.1", "30000"))
    r = ex.place_order(b, req("BUY", "0.3", type_="MARKET", tif=None))
    assert r.order.status == "EXPIRED" and r.order.executed_qty == 10000
    assert ex.balance(b, "USDT").locked == 0


def test_ioc_fok_and_limit_maker(ex: Exchange) -> None:
    s, b = funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.1", "30000"))
    r = ex.place_order(b, req("BUY", "0.2", "30000", tif="IOC"))
    assert r.order.status == "EXPIRED" and r.order.executed_qty == 10000
    ex.place_order(s, req("SELL", "0.1", "30000"))
    r = ex.place_order(b, req("BUY", "0.2", "30000", tif="FOK"))
    assert r.order.status == "EXPIRED" and r.order.executed_qty == 0 and not r.fills
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, req("BUY", "0.1", "30000", type_="LIMIT_MAKER", tif=None))
    assert (e.value.code, e.value.msg) == (-2010, "Order would immediately match and take.")
    ok = ex.place_order(b, req("BUY", "0.1", "29999", type_="LIMIT_MAKER", tif=None))
    assert ok.order.status == "NEW"


@pytest.mark.parametrize(
    ("qty", "price", "msg"),
    [
        ("0.1", "30000.001", "Filter failure: PRICE_FILTER"),
        ("0.000001", "30000", "Filter failure: LOT_SIZE"),
        ("0.0001", "30000", "Filter failure: NOTIONAL"),
    ],
)
def test_filter_failures(ex: Exchange, qty: str, price: str, msg: str) -> None:
    b = funded(ex)
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, req("BUY", qty, price))
    assert (e.value.code, e.value.msg) == (-1013, msg)


def test_errors_insufficient_duplicate_unknown(ex: Exchange) -> None:
    b = funded(ex, usdt="100", btc="0")
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, req("BUY", "0.01", "20000"))
    assert (e.value.code, e.value.msg) == (-2010, "Account has insufficient balance for requested action.")
    ex.place_order(b, req("BUY", "0.001", "20000", client_order_id="abc"))
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, req("BUY", "0.001", "20000", client_order_id="abc"))
    assert (e.value.code, e.value.msg) == (-2010, "Duplicate order sent.")
    ex.cancel_order(b, "spot", "BTCUSDT", client_order_id="abc")
    with pytest.raises(ExchangeError) as e:
        ex.cancel_order(b, "spot", "BTCUSDT", client_order_id="abc")
    assert (e.value.code, e.value.msg) == (-2011, "Unknown order sent.")
    with pytest.raises(ExchangeError) as e:
        ex.get_order(b, "spot", "BTCUSDT", order_id=999)
    assert (e.value.code, e.value.msg) == (-2013, "Order does not exist.")
    with pytest.raises(ExchangeError) as e:
        ex.place_order(b, OrderRequest("spot", "DOGEUSDT", "BUY", "LIMIT", "1", "1", time_in_force="GTC"))
    assert e.value.code == -1121
    # the client id is free again after the cancel
    ex.place_order(b, req("BUY", "0.001", "20000", client_order_id="abc"))
    assert ex.balance(b, "USDT").locked == 20 * 10**8


def test_stop_loss_limit_triggers_on_last_price(ex: Exchange) -> None:
    s, b, t = funded(ex), funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.1", "30000"))
    ex.place_order(b, req("BUY", "0.1", "30000"))  # last = 30000
    with pytest.raises(ExchangeError) as e:
        ex.place_order(t, req("SELL", "0.1", "29000", type_="STOP_LOSS_LIMIT", stop_price="30500"))
    assert e.value.msg == "Stop price would trigger immediately."
    stop = ex.place_order(t, req("SELL", "0.1", "28900", type_="STOP_LOSS_LIMIT", stop_price="29000")).order
    assert not stop.is_working and ex.balance(t, "BTC").locked == 10_000_000
    ex.place_order(b, req("BUY", "0.3", "28950"))
    ex.place_order(s, req("SELL", "0.1", "28950"))  # trade at 28950 <= 29000: trigger
    now = ex.get_order(t, "spot", "BTCUSDT", stop.order_id)
    assert now.is_working and now.type == "LIMIT" and now.orig_type == "STOP_LOSS_LIMIT"
    assert now.status == "FILLED" and now.executed_qty == 10000  # sold into the resting bid at 28950


def test_self_trade_prevention_expire_taker(ex: Exchange) -> None:
    a = funded(ex)
    ex.place_order(a, req("SELL", "0.1", "30000"))
    r = ex.place_order(a, req("BUY", "0.1", "30000"))
    assert r.order.status == "EXPIRED_IN_MATCH" and not r.fills
    assert len(ex.open_orders(a, "spot", "BTCUSDT")) == 1


def test_events_and_depth_sequence(ex: Exchange) -> None:
    events: list[object] = []
    ex.add_listener(events.append)
    s, b = funded(ex), funded(ex)
    ex.place_order(s, req("SELL", "0.1", "30000"))
    ex.place_order(b, req("BUY", "0.05", "30000"))
    kinds = [(type(e).__name__, getattr(e, "exec_type", None)) for e in events]
    assert ("OrderEvent", "NEW") in kinds and ("TradeEvent", None) in kinds
    trades = [e for e in events if isinstance(e, OrderEvent) and e.exec_type == "TRADE"]
    assert {t.order.status for t in trades} == {"PARTIALLY_FILLED", "FILLED"}
    assert {t.fill.is_maker for t in trades if t.fill} == {True, False}
    depth = [e for e in events if type(e).__name__ == "DepthEvent"]
    for prev, nxt in zip(depth, depth[1:], strict=False):
        assert nxt.first_update_id == prev.last_update_id + 1
        assert nxt.prev_last_update_id == prev.last_update_id
    assert depth[-1].asks == [(3000000, 5000)]
    assert ex.depth("spot", "BTCUSDT").last_update_id == depth[-1].last_update_id
    acct = [e for e in events if type(e).__name__ == "AccountEvent" and e.account_id == b]
    assert acct and {x.asset for x in acct[-1].balances} == {"BTC", "USDT"}
    aggs = [e for e in events if type(e).__name__ == "AggTradeEvent"]
    assert [(a.agg_id, a.first_trade_id, a.last_trade_id, a.qty) for a in aggs] == [(1, 1, 1, 5000)]
    kl = ex.klines("spot", "BTCUSDT", "1m")
    assert kl[-1].volume == 5000 and kl[-1].close == 3000000 and kl[-1].trades == 1


def test_accounts_keys_transfers(ex: Exchange) -> None:
    main = ex.create_account("desk@example.com")
    sub = ex.create_account(parent_id=main.account_id)
    assert [a.account_id for a in ex.sub_accounts(main.account_id)] == [sub.account_id]
    assert all(not a.internal for a in ex.accounts())
    k = ex.create_api_key(sub.account_id, {"SPOT"})
    assert ex.lookup_api_key(k.api_key) is k and k.permissions == frozenset({"SPOT"})
    ex.revoke_api_key(k.api_key)
    assert ex.lookup_api_key(k.api_key) is None
    ex.fund(main.account_id, "USDT", "1000")
    ex.transfer(main.account_id, sub.account_id, "USDT", "250.5")
    ex.transfer(sub.account_id, sub.account_id, "USDT", "50", "SPOT", "FUTURES")
    with pytest.raises(ExchangeError) as e:
        ex.transfer(sub.account_id, main.account_id, "USDT", "500")
    assert e.value.code == -5002
    assert ex.balance(sub.account_id, "USDT").free == 20050 * 10**6
    assert ex.balance(sub.account_id, "USDT", "FUTURES").free == 50 * 10**8
    hist = ex.transfers(sub.account_id)
    assert [t.type for t in hist] == ["MASTER_TO_SUB", "MAIN_UMFUTURE"]


def test_self_trade_prevention_expire_maker_then_rest(ex: Exchange) -> None:
    a = funded(ex)
    maker = ex.place_order(a, req("SELL", "0.1", "30000")).order
    r = ex.place_order(a, req("BUY", "0.1", "30000", self_trade_prevention_mode="EXPIRE_MAKER"))
    assert r.order.status == "NEW" and not r.fills
    assert ex.get_order(a, "spot", "BTCUSDT", maker.order_id).status == "EXPIRED_IN_MATCH"
    assert ex.balance(a, "BTC").locked == 0 and ex.balance(a, "USDT").locked == 3000 * 10**8


def test_agg_trade_spans_one_takers_fills_at_one_price(ex: Exchange) -> None:
    events: list[object] = []
    ex.add_listener(events.append)
    s1, s2, b = funded(ex), funded(ex), funded(ex)
    ex.place_order(s1, req("SELL", "0.1", "30000"))
    ex.place_order(s2, req("SELL", "0.1", "30000"))
    ex.place_order(s1, req("SELL", "0.1", "30001"))
    ex.place_order(b, req("BUY", "0.3", "30001"))
    aggs = [(e.price, e.qty, e.first_trade_id, e.last_trade_id) for e in events if type(e).__name__ == "AggTradeEvent"]
    assert aggs == [(3000000, 20000, 1, 2), (3000100, 10000, 3, 3)]
    assert [a.agg_id for a in ex.agg_trades("spot", "BTCUSDT")] == [1, 2]


def test_parse_cache_keeps_filters() -> None:
    """Cached price/quantity strings parse as before; rejected strings stay rejected on every try."""
    ex = Exchange(clock=lambda: T0)
    a = funded(ex)
    for _ in range(2):
        with pytest.raises(ExchangeError, match="PRICE_FILTER"):
            ex.place_order(a, req("BUY", "0.01", "50000.001"))
        with pytest.raises(ExchangeError, match="LOT_SIZE"):
            ex.place_order(a, req("BUY", "0.0000001", "50000"))
        assert ex.place_order(a, req("BUY", "0.01", "50000.01")).order.price == 5000001
    with pytest.raises(ExchangeError, match="MARKET_LOT_SIZE"):  # cached "0.01" is fine, the market cap is not
        ex.spec("spot", "BTCUSDT").parse_qty("200", market_order=True)
    ex.spec("spot", "BTCUSDT").parse_qty("200")
    with pytest.raises(ExchangeError, match="MARKET_LOT_SIZE"):
        ex.spec("spot", "BTCUSDT").parse_qty("200", market_order=True)


def test_klines_same_with_and_without_listener() -> None:
    """Without listeners same-minute trades are folded into the klines later; the candles must match."""
    import random

    from localex.engine import INTERVALS

    def run(listen: bool) -> list[object]:
        now = [T0]
        ex = Exchange(clock=lambda: now[0])
        if listen:
            ex.add_listener(lambda e: None)
        a, b = funded(ex, "10000000", "100"), funded(ex, "10000000", "100")
        rng = random.Random(3)
        seen = []
        for i in range(400):
            now[0] += rng.choice((10**9, 10**9, 10**9, 70 * 10**9, 4000 * 10**9, -30 * 10**9))
            p = str(29_990 + rng.randrange(20))
            ex.place_order(a if i % 2 else b, req(rng.choice(["BUY", "SELL"]), "0.01", p))
            if i % 37 == 0:
                ex.record_path_price("spot", "BTCUSDT", 3_000_000 + rng.randrange(5000))
            if i % 53 == 0:
                seen.append(ex.klines("spot", "BTCUSDT", "1m", limit=3))
        seen += [ex.klines("spot", "BTCUSDT", iv, limit=2000) for iv in INTERVALS]
        seen.append(ex.ticker_24h("spot", "BTCUSDT"))
        return seen

    assert run(False) == run(True)


def test_open_order_limits_spot_and_futures(ex: Exchange) -> None:
    """MAX_NUM_ORDERS (200 per account and symbol) and MAX_NUM_ALGO_ORDERS (5 spot, 10 futures), as exchangeInfo
    advertises: the order over the limit is rejected before anything is reserved; other accounts and symbols
    are unaffected, and closing one order makes room again."""
    a, other = funded(ex, usdt="10000000"), funded(ex)
    spec = ex.spec("spot", "BTCUSDT")
    assert (spec.max_num_orders, spec.max_num_algo_orders) == (200, 5)
    first = [ex.place_order(a, req("BUY", "0.001", f"{10000 + i}")).order for i in range(200)]
    locked = ex.balance(a, "USDT").locked
    with pytest.raises(ExchangeError) as err:
        ex.place_order(a, req("BUY", "0.001", "9000"))
    assert (err.value.code, err.value.msg) == (-1013, "Filter failure: MAX_NUM_ORDERS")
    assert ex.balance(a, "USDT").locked == locked and len(ex.open_orders(a, "spot", "BTCUSDT")) == 200
    ex.place_order(other, req("BUY", "0.001", "9000"))  # another account: its own count
    ex.place_order(
        a, OrderRequest("spot", "ETHUSDT", "BUY", "LIMIT", quantity="0.01", price="1000", time_in_force="GTC")
    )  # another symbol: its own count
    ex.cancel_order(a, "spot", "BTCUSDT", first[0].order_id)
    ex.place_order(a, req("BUY", "0.001", "9000"))  # room again
    for _ in range(5):
        ex.place_order(other, req("SELL", "0.01", "1000", "STOP_LOSS_LIMIT", stop_price="1000"))
    with pytest.raises(ExchangeError) as err:
        ex.place_order(other, req("SELL", "0.01", "1000", "STOP_LOSS_LIMIT", stop_price="1000"))
    assert (err.value.code, err.value.msg) == (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
    ex.place_order(other, req("BUY", "0.001", "9001"))  # plain orders still fit under MAX_NUM_ORDERS

    f = ex.create_account().account_id
    ex.fund(f, "USDT", "10000000", wallet="FUTURES")
    fut = ex.spec("usdm", "BTCUSDT")
    assert (fut.max_num_orders, fut.max_num_algo_orders) == (200, 10)
    for i in range(10):
        ex.place_order(
            f, OrderRequest("usdm", "BTCUSDT", "SELL", "STOP_MARKET", quantity="0.2", stop_price=f"{1000 + i}")
        )
    with pytest.raises(ExchangeError) as err:
        ex.place_order(f, OrderRequest("usdm", "BTCUSDT", "SELL", "STOP_MARKET", quantity="0.2", stop_price="999"))
    assert (err.value.code, err.value.msg) == (-4045, "Reach max stop order limit.")
    for i in range(190):
        ex.place_order(
            f,
            OrderRequest("usdm", "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price=f"{20000 + i}", time_in_force="GTC"),
        )
    with pytest.raises(ExchangeError) as err:
        ex.place_order(
            f, OrderRequest("usdm", "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="19000", time_in_force="GTC")
        )
    assert (err.value.code, err.value.msg) == (-2025, "Reach max open order limit.")
