"""What the risk controls cost: the guard hook per order, and the breaker's and guards' timer work.

Run with ``make bench``. Each figure beside a baseline measured in the same run:

* per-order cost of ``PortfolioGuards.check`` inside ``OrderGateway.place`` (200 accounts, 64 instruments,
  open positions everywhere, tables full): gateway ``place`` with the hook vs without;
* one ``CircuitBreaker.tick`` (200 accounts x 256 instruments, two tiers each, and global tiers) vs the
  ``account_summary`` kernel call alone, which it contains;
* one ``PortfolioGuards.recompute`` (256 instruments x 240 samples) vs NumPy's ``corrcoef`` of the same
  returns (no missing values, no tables);
* one ``QuoteLimits.push_rates`` (the USDT rates of BTC-quoted instruments into the kernel state) vs the
  breaker tick over the same state.

Nothing is asserted about time (a slow machine warns, never fails).
"""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from kernels import codes as C
from kernels.fixed import PPM
from kernels.positions import S_FIELDS, account_summary, recompute_caches, transfer, update_mark
from kernels.state import I_MARK, P_QTY, UNLIMITED, AccountIndex, KernelState
from oms.model import Instrument, InstrumentKind, InstrumentSpec, OrderType, PlaceOrder, Side
from oms.model.units import money_to_units
from stream.coin_cash import CoinCash
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.risk import CircuitBreaker, PortfolioGuards, Tier
from stream.risk.guards import GuardSettings
from stream.risk.quotes import QuoteLimits

pytestmark = pytest.mark.bench
ACCOUNTS = 200


def desk(n_instruments: int) -> tuple[KernelState, InstrumentTable, AccountIndex]:
    state = KernelState(n_accounts=ACCOUNTS, n_instruments=n_instruments)
    accounts = AccountIndex([("binance", f"acct{k}") for k in range(ACCOUNTS)])
    table = InstrumentTable(state)
    for n in range(n_instruments):
        spec = InstrumentSpec(symbol=f"C{n}/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.001",
                              min_qty="0.001", max_qty="9000000", min_notional="1")  # fmt: skip
        i = table.add("binance", Instrument(spec))
        update_mark(*state.blocks, i, Instrument(spec).mark_to_units("100"))
    for a in range(ACCOUNTS):
        state.set_limits(a, max_open_orders=UNLIMITED)
        transfer(*state.blocks, a, money_to_units("100000000"))
    return state, table, accounts


def best(fn, repeat: int = 5) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def test_guard_hook_cost_per_order():
    state, table, accounts = desk(64)
    guards = PortfolioGuards(state, GuardSettings(60, 60, 20, 0.9, 0.5, 0.1))
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, 60).cumsum()
    for k in range(60):  # a common factor and a high volatility: entries are scaled (flat accounts: none refused)
        state.ins[I_MARK, :] = (100 * np.exp(base[k] + rng.normal(0, 0.002, 64))) * 100
        guards.tick()
    orders = [
        PlaceOrder(
            account=f"binance/acct{n % ACCOUNTS}",
            symbol=f"C{n % 64}/USDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty="1",
            price="100",
            intent=str(n),
        )  # fmt: skip
        for n in range(20_000)
    ]

    def run(with_guard: bool) -> float:
        gw = OrderGateway(state, accounts, table)
        gw.guard = guards.check if with_guard else None
        t0 = time.perf_counter()
        for cmd in orders:
            gw.place(cmd)
        assert gw.accepted + sum(gw.rejections.values()) == len(orders)
        return (time.perf_counter() - t0) / len(orders) * 1e6

    gc.disable()
    try:
        plain = min(run(False) for _ in range(3))
        scaled = min(run(True) for _ in range(3))
        assert guards.scaled > 0
        guards.scale_ppm = np.full_like(guards.scale_ppm, PPM)  # calm markets: the hook only looks
        looked = min(run(True) for _ in range(3))
    finally:
        gc.enable()
    print(f"\ngateway place: {looked:.2f} us/order with the guard hook passing the order, {scaled:.2f} us/order "
          f"with it scaling every order, {plain:.2f} us/order without the hook (baseline, same run)")  # fmt: skip


def test_breaker_tick_and_guards_recompute():
    state, table, accounts = desk(256)
    state.pos[P_QTY, :, :, 0] = 1000  # every account holds every instrument
    recompute_caches(*state.blocks)
    tiers = [Tier(15 * 60 * 10**9, money_to_units("500"), C.REDUCE_ONLY, "15m"),
             Tier(3600 * 10**9, money_to_units("1000"), C.HALTED, "1h")]  # fmt: skip
    clock = iter(range(10**18, 10**18 + 10**12, 10**9))
    br = CircuitBreaker(state, accounts, dict.fromkeys(range(ACCOUNTS), tiers), tiers, clock=lambda: next(clock))
    summary = np.zeros((S_FIELDS, ACCOUNTS), dtype=np.int64)
    account_summary(*state.blocks, summary)
    br.tick()
    tick = best(br.tick)
    kernel = best(lambda: account_summary(*state.blocks, summary))
    print(f"\nbreaker tick, {ACCOUNTS} accounts x 256 instruments: {tick * 1e3:.2f} ms "
          f"(baseline account_summary kernel alone: {kernel * 1e3:.2f} ms)")  # fmt: skip

    guards = PortfolioGuards(state, GuardSettings(60, 240, 30, 0.9, 0.5, 0.1))
    rng = np.random.default_rng(2)
    for _ in range(240):
        state.ins[I_MARK, :] = (100 * np.exp(rng.normal(0, 0.01, 256))) * 100
        guards.sample()
    guards.recompute()
    recompute = best(guards.recompute, 3)
    returns = np.diff(np.log(guards.marks), axis=1)
    numpy = best(lambda: np.corrcoef(returns), 3)
    print(f"guards recompute, 256 instruments x 240 samples, {ACCOUNTS} accounts each holding all 256 (the "
          f"worst case), in a worker thread off the event loop: {recompute * 1e3:.1f} ms "
          f"(baseline numpy corrcoef of the same returns alone: {numpy * 1e3:.1f} ms)")  # fmt: skip


def test_quote_rate_push():
    """``QuoteLimits.push_rates`` (the timer's and the breaker tick's first step): 256 instruments of which 64 are
    BTC-quoted, 200 accounts holding all of them, the BTC mark moving so every cross rate changes (64 revaluations
    of 200 accounts), beside the same pass with the mark unchanged (nothing to write) and the breaker tick."""
    state = KernelState(n_accounts=ACCOUNTS, n_instruments=257)
    accounts = AccountIndex([("binance", f"acct{k}") for k in range(ACCOUNTS)])
    table = InstrumentTable(state)
    btc = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip
    b = table.add("binance", Instrument(btc))
    for n in range(256):
        quote = "BTC" if n % 4 == 0 else "USDT"
        spec = InstrumentSpec(symbol=f"C{n}/{quote}", kind=InstrumentKind.SPOT, tick_size="0.00001",
                              step_size="0.001", min_qty="0.001", max_qty="9000000", min_notional="0.0001",
                              quote_asset=quote)  # fmt: skip
        i = table.add("binance", Instrument(spec))
        update_mark(*state.blocks, i, Instrument(spec).mark_to_units("0.01"))
    state.pos[P_QTY, :, 1:, 0] = 1000
    quotes = QuoteLimits(state, table)
    marks = iter(range(9_000_000, 10_000_000))
    update_mark(*state.blocks, b, next(marks))
    quotes.push_rates()
    recompute_caches(*state.blocks)

    def moved():
        update_mark(*state.blocks, b, next(marks))
        assert quotes.push_rates() == 64

    push = best(moved)
    same = best(quotes.push_rates)
    tiers = [Tier(15 * 60 * 10**9, money_to_units("500"), C.REDUCE_ONLY, "15m")]
    clock = iter(range(10**18, 10**18 + 10**12, 10**9))
    br = CircuitBreaker(state, accounts, dict.fromkeys(range(ACCOUNTS), tiers), tiers, clock=lambda: next(clock))
    br.tick()
    tick = best(br.tick)
    print(
        f"\nquote rates push, 64 of 256 instruments BTC-quoted x {ACCOUNTS} accounts: {push * 1e3:.3f} ms when BTC "
        f"moved, {same * 1e3:.3f} ms unchanged (baseline breaker tick over the same state: {tick * 1e3:.2f} ms)"
    )


def test_coin_cash_revalue():
    """``CoinCash.revalue`` (the step after ``push_rates`` on the rate timer): 200 accounts whose cash is BTC,
    each holding 16 BTC-quoted pairs of 64 instruments, BTC moving so every cash and cross rate changes; beside
    the same run's ``push_rates`` alone (the baseline, h-xquote's step)."""
    state = KernelState(n_accounts=ACCOUNTS, n_instruments=65)
    table = InstrumentTable(state)
    btc = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip
    b = table.add("binance", Instrument(btc))
    for n in range(64):
        quote = "BTC" if n % 4 == 0 else "USDT"
        spec = InstrumentSpec(symbol=f"C{n}/{quote}", kind=InstrumentKind.SPOT, tick_size="0.00001",
                              step_size="0.001", min_qty="0.001", max_qty="9000000", min_notional="0.0001",
                              quote_asset=quote)  # fmt: skip
        i = table.add("binance", Instrument(spec))
        update_mark(*state.blocks, i, Instrument(spec).mark_to_units("0.01"))
    state.pos[P_QTY, :, 1:, 0] = 1000
    quotes = QuoteLimits(state, table)
    coins = CoinCash(state, table, quotes.pair_of, quotes.push_rates)
    marks = iter(range(9_000_000, 10_000_000))
    update_mark(*state.blocks, b, next(marks))
    quotes.push_rates()
    recompute_caches(*state.blocks)
    for a in range(ACCOUNTS):
        coins.anchor(a, "binance", "BTC", 2 * 10**12)

    def rates_only():
        update_mark(*state.blocks, b, next(marks))
        assert quotes.push_rates() == 16

    def rates_and_cash():
        update_mark(*state.blocks, b, next(marks))
        assert quotes.push_rates() == 16
        assert coins.revalue() == ACCOUNTS

    base = best(rates_only)
    both = best(rates_and_cash)
    print(
        f"\nrate push, 16 of 64 instruments BTC-quoted x {ACCOUNTS} accounts whose cash is BTC: push_rates alone "
        f"{base * 1e3:.3f} ms (baseline), with the BTC cash revalued {both * 1e3:.3f} ms "
        f"(revalue {(both - base) * 1e3:.3f} ms, {(both - base) / ACCOUNTS * 1e6:.2f} us an account)"
    )
