"""The SMA cross on the real BTC-USD hourly history gives exactly the fills of an independent loop.

The reference below is plain Python over the dataset's decimal strings (no engine code): next-open
fills, all cash in whole 0.00001 BTC lots, 0.1% fee rounded up to 1e-8 USDT, flat on a cross down.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from backtest.run import Account, run
from oms.archive.market import read_coinbase
from strategies.api import F_PRICE, F_QTY, F_SIDE
from strategies.sma_cross import STRATEGY
from tests.backtest.conftest import DATASETS

FEE = Decimal("0.001")
LOT = Decimal("0.00001")
CENT = Decimal("0.00000001")


def reference_sma_cross(
    fast: int, slow: int, cash: Decimal, order: Decimal | None = None
) -> tuple[list[tuple[int, Decimal, Decimal]], Decimal]:
    """(side, price, qty) of every fill and the final equity, from the CSV's strings alone."""
    bars, rejected = read_coinbase(DATASETS / "Coinbase_BTCUSD_1h.csv")
    assert rejected == 0
    closes = [Decimal(b.close) for b in bars]
    opens = [Decimal(b.open) for b in bars]
    fills: list[tuple[int, Decimal, Decimal]] = []
    held = Decimal(0)
    prev_sign = None
    for k in range(slow - 1, len(bars)):
        fast_ma = sum(closes[k - fast + 1 : k + 1]) / fast
        slow_ma = sum(closes[k - slow + 1 : k + 1]) / slow
        diff = sum(closes[k - fast + 1 : k + 1]) * slow - sum(closes[k - slow + 1 : k + 1]) * fast
        sign = (diff > 0) - (diff < 0)
        assert (fast_ma > slow_ma) == (sign > 0)
        cross_up = prev_sign is not None and prev_sign < 0 and sign > 0
        cross_down = prev_sign is not None and prev_sign > 0 and sign < 0
        prev_sign = sign
        if k + 1 >= len(bars):
            break  # a signal on the last bar has no next open to trade at
        price = opens[k + 1]
        if cross_up and held == 0:
            budget = cash if order is None else min(cash, order)
            qty = (budget / (price * (1 + FEE)) / LOT).to_integral_value(ROUND_FLOOR) * LOT
            while qty > 0 and qty * price + (qty * price * FEE).quantize(CENT, ROUND_CEILING) > budget:
                qty -= LOT
            cash -= qty * price + (qty * price * FEE).quantize(CENT, ROUND_CEILING)
            held = qty
            fills.append((1, price, qty))
        elif cross_down and held > 0:
            cash += held * price - (held * price * FEE).quantize(CENT, ROUND_CEILING)
            fills.append((-1, price, held))
            held = Decimal(0)
    return fills, cash + held * closes[-1]


def test_sma_cross_matches_an_independent_loop_fill_for_fill(btc_hourly, btc):
    expected, expected_equity = reference_sma_cross(10, 30, Decimal(100_000))
    res = run(STRATEGY, {"fast_window": 10, "slow_window": 30}, btc_hourly, [Account("spot", "100000")])
    got = [
        (int(f[F_SIDE]), Decimal(btc.price_str(int(f[F_PRICE]))), Decimal(btc.qty_str(int(f[F_QTY]))))
        for f in res.trades
    ]
    assert len(got) > 500  # hundreds of round trips over 2017-2019
    assert got == expected
    assert res.counters["rejects"] == 0
    assert res.final_equity() == expected_equity


def test_other_windows_match_too(btc_hourly, btc):
    for fast, slow in ((5, 20), (24, 96)):
        expected, equity = reference_sma_cross(fast, slow, Decimal(25_000))
        res = run(STRATEGY, {"fast_window": fast, "slow_window": slow}, btc_hourly, [Account("a", "25000")])
        assert len(res.trades) == len(expected)
        assert [(int(f[F_SIDE]), int(f[F_PRICE]), int(f[F_QTY])) for f in res.trades] == [
            (s, btc.price(str(p)), btc.qty(str(q))) for s, p, q in expected
        ]
        assert res.final_equity() == equity


def test_a_fixed_order_size_spends_at_most_that_per_entry(btc_hourly, btc):
    expected, equity = reference_sma_cross(10, 30, Decimal(100_000), order=Decimal(1_000))
    res = run(STRATEGY, {"fast_window": 10, "slow_window": 30, "order_usdt": "1000"}, btc_hourly,
              [Account("a", "100000")])  # fmt: skip
    assert [(int(f[F_SIDE]), int(f[F_PRICE]), int(f[F_QTY])) for f in res.trades] == [
        (s, btc.price(str(p)), btc.qty(str(q))) for s, p, q in expected
    ]
    assert res.final_equity() == equity
    buys = res.trades[res.trades[:, F_SIDE] > 0]
    spent = buys[:, F_PRICE] * buys[:, F_QTY] * btc.mult + buys[:, 6]
    assert spent.max() <= 1_000 * 10**8 and spent.min() > 990 * 10**8
