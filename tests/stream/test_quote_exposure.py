"""The account-wide limits in USDT for positions quoted in another asset: an ETH/BTC position's exposure, equity
and losses count in USDT at the BTC/USDT rate pushed into the kernel state (per account, globally, and in the
circuit breaker), exactly and rounded against the account; while a held position has no rate, entries are
refused with a clear reason. Through the real gateway, risk controls and kernels (no venue)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest

from kernels import codes as C
from kernels.positions import apply_fill, recompute_caches, transfer, update_mark
from kernels.quote_rates import set_quote_rate
from kernels.reference.model import World
from kernels.reference.positions import apply_fill as ref_fill
from kernels.reference.positions import set_mark as ref_mark
from kernels.reference.positions import set_quote_rate as ref_rate
from kernels.reference.risk import check_order as ref_check
from kernels.risk import would_accept
from kernels.state import (
    A_CASH,
    A_COST_PERP,
    A_GROSS,
    A_UNPRICED,
    A_VALUE,
    G_COST_PERP,
    G_GROSS,
    G_MAX_GROSS,
    G_UNPRICED,
    G_VALUE,
    I_RATE_DEN,
    I_RATE_NUM,
    L_TRADING_STATE,
    AccountIndex,
    KernelState,
)
from oms.model import Instrument, InstrumentKind, InstrumentSpec, OrderType, PlaceOrder, Side
from oms.model.units import money_from_units, money_to_units
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.risk import CircuitBreaker
from stream.risk.breaker import Tier
from stream.risk.controls import RiskControls
from stream.risk.tradebook import TradeBook

ETHBTC = InstrumentSpec(symbol="ETH/BTC", kind=InstrumentKind.SPOT, tick_size="0.00001", step_size="0.0001",
                        min_qty="0.0001", max_qty="100000", min_notional="0.0001", quote_asset="BTC")  # fmt: skip
BTCUSDT = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip
ETHUSDT = InstrumentSpec(symbol="ETH/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.0001",
                         min_qty="0.0001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip
ACCOUNTS = [("binance", "a0"), ("binance", "a1")]
MIN = 60 * 1_000_000_000


async def _no_trip(trip) -> None:
    raise AssertionError(trip)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.now


class Desk:
    """Two accounts of 1,000,000 USDT; ETH/BTC, BTC/USDT and ETH/USDT; the risk controls attached."""

    def __init__(self, *, btcusdt: bool = True) -> None:
        self.state = KernelState(n_accounts=2, n_instruments=4)
        for a in range(2):
            transfer(*self.state.blocks, a, money_to_units("1000000"))
        self.table = InstrumentTable(self.state)
        self.eth = Instrument(ETHBTC)
        self.table.add("binance", self.eth)
        self.table.add("binance", Instrument(ETHUSDT))
        if btcusdt:
            self.table.add("binance", Instrument(BTCUSDT))
        self.clock = Clock()
        self.gw = OrderGateway(self.state, AccountIndex(ACCOUNTS), self.table, clock=self.clock)
        self.controls = RiskControls(None, None, _no_trip)
        self.controls.attach(self.gw)
        self.mark("ETH/BTC", "0.05")
        self.mark("ETH/USDT", "4500")
        self.n = 0

    def i(self, symbol: str) -> int:
        return self.table.lookup("binance", symbol)[0]

    def mark(self, symbol: str, price: str) -> None:
        i, ins = self.table.lookup("binance", symbol)
        update_mark(*self.state.blocks, i, ins.mark_to_units(price))

    def hold_eth(self, a: int, qty: str, price: str = "0.05") -> None:
        """A bought ETH/BTC position of account a (the positions kernel's fill)."""
        r = apply_fill(*self.state.blocks, a, self.i("ETH/BTC"), C.BUY, C.POS_BOTH, self.eth.price(price),
                       self.eth.qty(qty), 0)  # fmt: skip
        assert r == C.OK

    def order(self, account: str, symbol: str, qty: str, price: str | None = None, side: Side = Side.BUY):
        self.n += 1
        otype = OrderType.LIMIT if price is not None else OrderType.MARKET
        cmd = PlaceOrder(account=f"binance/{account}", symbol=symbol, side=side, order_type=otype, qty=qty,
                         price=price, intent=str(self.n))  # fmt: skip
        return self.gw.place(cmd).result

    def usdt(self, units) -> Decimal:
        return money_from_units(int(units))


def test_a_btc_quoted_position_counts_in_usdt_in_the_gross_exposure_and_equity():
    d = Desk()
    d.mark("BTC/USDT", "90000")
    assert d.controls.quotes.push_rates() == 1  # ETH/BTC's rate: BTC/USDT's mark x (1e-12 BTC / 1e-8 USDT)
    d.hold_eth(0, "10")  # 0.5 BTC of ETH at 0.05, paid at 90,000: 45,000 USDT
    s = d.state
    assert d.usdt(s.acc[A_GROSS, 0]) == Decimal("45000") and d.usdt(s.acc[A_VALUE, 0]) == Decimal("45000")
    assert d.usdt(s.acc[A_CASH, 0]) == Decimal("955000") and d.usdt(s.equity(0)) == Decimal("1000000")
    d.mark("BTC/USDT", "80000")
    assert d.usdt(s.acc[A_GROSS, 0]) == Decimal("45000")  # the kernel's rate moves on the push, not per tick
    assert d.controls.quotes.push_rates() == 1
    assert d.usdt(s.acc[A_GROSS, 0]) == Decimal("40000") and d.usdt(s.equity(0)) == Decimal("995000")
    assert d.usdt(s.glob[G_GROSS]) == Decimal("40000") and d.usdt(s.glob[G_VALUE]) == Decimal("40000")
    # the caches are the sum of the positions' converted values: a rebuild gives the same numbers
    before = s.acc.copy(), s.glob.copy()
    recompute_caches(*s.blocks)
    assert np.array_equal(before[0], s.acc) and np.array_equal(before[1], s.glob)


def test_the_account_and_global_exposure_limits_see_the_btc_position():
    d = Desk()
    d.state.set_limits(0, max_gross_exposure=money_to_units("50000"))
    d.mark("BTC/USDT", "90000")
    d.controls.quotes.push_rates()
    d.hold_eth(0, "10")  # 45,000 USDT of exposure (450,000,000,000 BTC units would dwarf any USDT limit)
    assert d.order("a0", "ETH/USDT", "1", "4500").ok  # 49,500 USDT
    r = d.order("a0", "ETH/USDT", "1.2", "4500")  # 50,400 USDT
    assert r.code == "risk:MAX_ACCOUNT_EXPOSURE"
    d.mark("BTC/USDT", "80000")
    d.controls.quotes.push_rates()  # the BTC position is worth 40,000 USDT now
    assert d.order("a0", "ETH/USDT", "1.2", "4500").ok
    # the global limit over both accounts: a1 holds 20 ETH of ETH/BTC = 80,000 USDT
    d.state.glob[G_MAX_GROSS] = money_to_units("125000")
    d.hold_eth(1, "20")
    assert d.usdt(d.state.glob[G_GROSS]) == Decimal("120000")  # 40,000 + 80,000
    assert d.order("a1", "ETH/USDT", "1.2", "4500").code == "risk:MAX_GLOBAL_EXPOSURE"  # 125,400
    assert d.order("a1", "ETH/USDT", "1.2", "4500", side=Side.SELL).code == "risk:MAX_GLOBAL_EXPOSURE"
    assert d.order("a1", "ETH/USDT", "1", "4500").ok  # 124,500


def test_the_daily_loss_and_leverage_limits_count_the_btc_position_in_usdt():
    d = Desk()
    d.state.set_limits(0, max_daily_loss=money_to_units("5000"), max_leverage_ppm=100_000)  # 0.1x leverage
    d.mark("BTC/USDT", "90000")
    d.controls.quotes.push_rates()
    d.hold_eth(0, "20")  # 1 BTC = 90,000 USDT of 1,000,000 equity: within 0.1x
    assert d.order("a0", "ETH/USDT", "2.3", "4500").code == "risk:MAX_LEVERAGE"  # 100,350 > 100,000
    assert d.order("a0", "ETH/USDT", "2.2", "4500").ok  # 99,900
    d.mark("BTC/USDT", "85000.01")  # the position loses 4,999.99 USDT
    d.controls.quotes.push_rates()
    assert d.usdt(d.state.equity(0)) == Decimal("995000.01")
    assert d.order("a0", "ETH/USDT", "0.01", "4500").ok  # within the daily loss (and 0.1x of the equity)
    d.mark("BTC/USDT", "84999.99")  # 5,000.01 USDT lost: over max_daily_loss_usdt
    d.controls.quotes.push_rates()
    assert d.order("a0", "ETH/USDT", "0.01", "4500").code == "risk:DAILY_LOSS"
    assert d.order("a1", "ETH/USDT", "0.01", "4500").ok  # the other account lost nothing


def test_a_held_position_without_a_rate_refuses_entries_with_a_reason():
    d = Desk(btcusdt=False)  # BTC/USDT is not streamed: ETH/BTC has no rate
    d.hold_eth(0, "1")
    s = d.state
    assert d.order("a0", "ETH/USDT", "0.01", "4500").ok  # no limit on exposure or equity: nothing unchecked
    d.state.set_limits(0, max_daily_loss=money_to_units("5000"))
    d.state.glob[G_MAX_GROSS] = money_to_units("10000000")
    assert int(s.ins[I_RATE_NUM, d.i("ETH/BTC")]) == 0 and s.acc[A_UNPRICED, 0] == 1 and s.glob[G_UNPRICED] == 1
    assert s.acc[A_GROSS, 0] == 0  # unknown, so not counted: and therefore no entry passes unchecked
    r = d.order("a0", "ETH/USDT", "0.01", "4500")
    assert r.code == "risk:UNPRICED_EXPOSURE" and "no USDT rate" in r.reason
    r = d.order("a1", "ETH/USDT", "0.01", "4500")  # another account: the global limits cannot be checked
    assert r.code == "risk:GLOBAL_UNPRICED_EXPOSURE"
    assert d.order("a0", "ETH/BTC", "0.5", "0.05", side=Side.SELL).ok  # reducing it is always allowed
    # the pair appears: the next push prices the position and the refusals end
    d.table.add("binance", Instrument(BTCUSDT))
    d.mark("BTC/USDT", "90000")
    assert d.controls.quotes.push_rates() == 1
    assert s.acc[A_UNPRICED, 0] == 0 and s.glob[G_UNPRICED] == 0
    assert d.usdt(s.acc[A_GROSS, 0]) == Decimal("4500")
    assert d.order("a1", "ETH/USDT", "0.01", "4500").ok


def test_the_breaker_measures_btc_quoted_losses_in_usdt():
    """A cross position's PnL is its own (BTC) PnL at the USDT rate now, in both breaker measures; the breaker's
    tick pushes the rates first. Unconverted, a 0.0054 BTC loss would read as 54 USDT."""

    async def run() -> None:
        d = Desk()
        d.mark("BTC/USDT", "90000")
        tiers = [Tier(15 * MIN, money_to_units("500"), C.REDUCE_ONLY, "15m")]
        accounts = AccountIndex(ACCOUNTS)
        breaker = CircuitBreaker(d.state, accounts, {0: tiers}, [], clock=d.clock)  # pnl: account
        trips = []

        async def on_trip(trip) -> None:
            trips.append(trip)

        controls = RiskControls(breaker, None, on_trip)
        controls.attach(d.gw)
        trades = CircuitBreaker(d.state, accounts, {1: tiers}, [], clock=d.clock, trades=TradeBook(d.state))
        d.hold_eth(0, "2")  # 0.1 BTC of ETH at 0.05
        trades.trades.on_fill(1, d.i("ETH/BTC"), C.BUY, d.eth.price("0.05"), d.eth.qty("2"), 0)
        assert await controls.tick_breaker() == [] and trades.tick() == []
        d.clock.now += MIN
        d.mark("ETH/BTC", "0.0473")  # 2 ETH lose 0.0054 BTC = 486 USDT at 90,000: below the tier
        assert await controls.tick_breaker() == [] and trades.tick() == []
        d.clock.now += MIN
        d.mark("BTC/USDT", "93000")  # the same 0.0054 BTC is 502.20 USDT now
        [trip] = await controls.tick_breaker()
        assert (trip.account, trip.trading_state, Decimal(trip.loss)) == ("binance/a0", "reduce_only", Decimal("502.2"))
        assert trips == [trip] and d.state.lim[L_TRADING_STATE, 0] == C.REDUCE_ONLY
        [trip] = trades.tick()  # the trade book reads the rate the tick pushed
        assert trip.account == "binance/a1" and Decimal(trip.loss) == Decimal("502.2")

    asyncio.run(run())


def test_the_risk_controls_push_rates_on_their_timer():
    async def run() -> None:
        d = Desk()
        d.controls.rates_interval_s = 0.01
        d.hold_eth(0, "10")  # no rate yet: unpriced
        i = d.i("ETH/BTC")
        tasks = d.controls.start()
        try:
            d.mark("BTC/USDT", "90000")
            for _ in range(500):
                if d.state.ins[I_RATE_NUM, i] != 0:
                    break
                await asyncio.sleep(0.01)
            num, den = int(d.state.ins[I_RATE_NUM, i]), int(d.state.ins[I_RATE_DEN, i])
            assert Decimal(num) / Decimal(den) == Decimal("9")  # 1e-12 BTC x 9,000,000 ticks of 0.01 USDT
            assert d.usdt(d.state.acc[A_GROSS, 0]) == Decimal("45000")
        finally:
            await d.controls.stop()
        assert all(t.done() for t in tasks)

    asyncio.run(run())


@pytest.mark.parametrize("seed", range(6))
def test_the_kernels_match_the_reference_with_rates(seed: int):
    """Fills, marks, rate changes (to none and back) in the kernels and the readable reference: identical
    state and caches, and the same risk decisions, with non-trivial rates rounding both ways."""
    rng = np.random.default_rng(seed)
    ks = KernelState(3, 3)
    for i, kind in enumerate((C.SPOT, C.PERP, C.SPOT)):
        ks.set_raw_instrument(i, kind=kind, mult=int(rng.integers(1, 50)))
        update_mark(*ks.blocks, i, int(rng.integers(100, 10_000)))
    for a in range(3):
        transfer(*ks.blocks, a, int(rng.integers(10**9, 10**12)))
        ks.set_limits(a, max_gross_exposure=int(rng.integers(10**8, 10**11)), max_leverage_ppm=5_000_000,
                      max_daily_loss=int(rng.integers(10**7, 10**10)))  # fmt: skip
    world = World.from_state(ks)
    for _ in range(300):
        op = rng.integers(0, 4)
        a, i = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        if op == 0:
            num, den = (int(rng.integers(0, 4)) and int(rng.integers(1, 10**7))), int(rng.integers(1, 10**6))
            set_quote_rate(*ks.blocks, i, num, den)
            ref_rate(world, i, num, den)
        elif op == 1:
            mark = int(rng.integers(100, 10_000))
            update_mark(*ks.blocks, i, mark)
            ref_mark(world, i, mark)
        elif op == 2:
            side, qty = int(rng.choice([C.BUY, C.SELL])), int(rng.integers(1, 500))
            price = int(rng.integers(100, 10_000))
            fee = int(rng.integers(0, 1000))
            assert apply_fill(*ks.blocks, a, i, side, C.POS_BOTH, price, qty, fee) == ref_fill(
                world, a, i, side, C.POS_BOTH, price, qty, fee
            )
        else:
            side, qty = int(rng.choice([C.BUY, C.SELL])), int(rng.integers(1, 5000))
            args = (a, i, side, C.LIMIT, world.instruments[i].mark, qty, 0, C.POS_BOTH, 0)
            assert would_accept(*ks.blocks, *args) == ref_check(world, *args, commit=False)
        assert world.differences(ks) == []
        assert int(ks.acc[A_COST_PERP].sum()) == int(ks.glob[G_COST_PERP])  # the global sum holds
    caches = ks.acc.copy()
    recompute_caches(*ks.blocks)
    assert np.array_equal(caches, ks.acc)
