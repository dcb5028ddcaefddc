"""Property tests: random order flows keep the book uncrossed, balances conserved, fills bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localex.engine import Exchange, ExchangeError, OrderRequest

T0 = 1_700_000_000_000_000_000

op = st.tuples(
    st.sampled_from(["limit", "limit", "limit", "market", "ioc", "fok", "cancel", "stop", "maker"]),
    st.integers(0, 2),  # account
    st.sampled_from(["BUY", "SELL"]),
    st.integers(29_900, 30_100),  # price in whole USDT
    st.integers(1, 40),  # qty in 0.005 BTC / 0.005 contracts
)


def _check_spot(ex: Exchange, users: list[str]) -> None:
    book = ex.matcher.books[("spot", "BTCUSDT")]
    assert not book.crossed()
    assert ex.totals("SPOT") == {a: v for (w, a), v in ex.deposits.items() if w == "SPOT"}
    locked: dict[tuple[str, str], int] = {}
    for o in ex.matcher.orders[("spot", "BTCUSDT")].values():
        assert 0 <= o.executed_qty <= o.orig_qty or o.quote_order_qty
        if o.is_open:
            asset = "USDT" if o.side == "BUY" else "BTC"
            locked[(o.account_id, asset)] = locked.get((o.account_id, asset), 0) + o.locked
        else:
            assert o.locked == 0
    for u in users:
        for b in ex.balances(u):
            assert b.free >= 0 and b.locked == locked.get((u, b.asset), 0)
    for price, level in book.bids.levels.items():
        assert book.bids.qty[price] == sum(o.orig_qty - o.executed_qty for o in level) > 0
    for price, level in book.asks.levels.items():
        assert book.asks.qty[price] == sum(o.orig_qty - o.executed_qty for o in level) > 0


def _run(ex: Exchange, users: list[str], market: str, ops: list[tuple[str, int, str, int, int]]) -> None:
    for kind, who, side, price, q in ops:
        acc = users[who]
        qty = f"{q * 5 / 1000:.3f}"
        px = str(price)
        try:
            if kind == "cancel":
                opens = ex.open_orders(acc, market, "BTCUSDT")
                if opens:
                    ex.cancel_order(acc, market, "BTCUSDT", opens[q % len(opens)].order_id)
                continue
            if kind == "market":
                r = OrderRequest(market, "BTCUSDT", side, "MARKET", quantity=qty)
            elif kind == "stop":
                t = "STOP_LOSS_LIMIT" if market == "spot" else "STOP"
                r = OrderRequest(market, "BTCUSDT", side, t, quantity=qty, price=px, stop_price=px, time_in_force="GTC")
            elif kind == "maker":
                r = (
                    OrderRequest(market, "BTCUSDT", side, "LIMIT_MAKER", quantity=qty, price=px)
                    if market == "spot"
                    else OrderRequest(market, "BTCUSDT", side, "LIMIT", quantity=qty, price=px, time_in_force="GTX")
                )
            else:
                tif = {"limit": "GTC", "ioc": "IOC", "fok": "FOK"}[kind]
                r = OrderRequest(market, "BTCUSDT", side, "LIMIT", quantity=qty, price=px, time_in_force=tif)
            ex.place_order(acc, r)
        except ExchangeError as exc:
            assert exc.code in (-2010, -2019, -2021, -2022, -5021, -5022, -1013, -4164), exc.msg
        if market == "spot":
            _check_spot(ex, users)
        else:
            assert not ex.matcher.books[("usdm", "BTCUSDT")].crossed()
            for o in ex.matcher.orders[("usdm", "BTCUSDT")].values():
                assert 0 <= o.executed_qty <= o.orig_qty
            deposits = ex.deposits.get(("FUTURES", "USDT"), 0)
            assert ex.futures_equity_total() == deposits


def _exchange(market: str) -> tuple[Exchange, list[str]]:
    clock = iter(range(T0, T0 + 10**15, 1000))
    ex = Exchange(clock=lambda: next(clock))
    users = []
    for _ in range(3):
        a = ex.create_account().account_id
        if market == "spot":
            ex.fund(a, "USDT", "20000")
            ex.fund(a, "BTC", "1")
        else:
            ex.fund(a, "USDT", "2000", "FUTURES")
        users.append(a)
    return ex, users


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=60))
def test_spot_invariants(ops: list[tuple[str, int, str, int, int]]) -> None:
    ex, users = _exchange("spot")
    _run(ex, users, "spot", ops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=60), st.lists(st.integers(299_000, 301_000), min_size=1, max_size=5))
def test_futures_invariants(ops: list[tuple[str, int, str, int, int]], marks: list[int]) -> None:
    ex, users = _exchange("usdm")
    _run(ex, users, "usdm", ops)
    for m in marks:  # conservation of wallet + unrealised PnL holds at any common mark
        ex.set_mark_price("BTCUSDT", m)
        assert ex.futures_equity_total() == ex.deposits[("FUTURES", "USDT")]
