"""Cash held in BTC counted in the kernels' USDT (``stream.coin_cash``): reconciliation values the BTC wallet at the
BTC/USDT mark, fills move the BTC held by their exact amounts, every rate push values it again (a position in BTC,
revalued with the rate); without a rate the account's reconciliation is refused and nothing changes. Through the
real reconciliation writer (``KernelSync``), risk controls, gateway and kernels (no venue); the daemon test
(tests/stream/test_daemon_btc_cash.py) does the same against the local exchange."""

from __future__ import annotations

import random
from decimal import ROUND_FLOOR, Decimal

import pytest

from kernels import codes as C
from kernels.positions import apply_fill, recompute_caches, update_mark
from kernels.state import (
    A_CASH,
    A_DAY_START_EQUITY,
    A_PEAK_EQUITY,
    G_CASH,
    I_MARK,
    P_QTY,
    AccountIndex,
    KernelState,
)
from oms.model import Balance, Instrument, InstrumentKind, InstrumentSpec, Market
from oms.model.units import money_from_units
from stream.coin_cash import NoCashRate
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.reconcile_state import KernelSync
from stream.risk.controls import RiskControls

ETHBTC = InstrumentSpec(symbol="ETH/BTC", kind=InstrumentKind.SPOT, tick_size="0.00001", step_size="0.0001",
                        min_qty="0.0001", max_qty="100000", min_notional="0.0001", quote_asset="BTC")  # fmt: skip
BTCUSDT = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip
BTC, USDT = 0, 1  # account 0's cash is BTC, account 1's USDT


async def _no_trip(trip) -> None:
    raise AssertionError(trip)


class Desk:
    def __init__(self, *, btcusdt: bool = True, mark: str | None = "90000") -> None:
        self.state = KernelState(n_accounts=2, n_instruments=2)
        self.table = InstrumentTable(self.state)
        self.eth = Instrument(ETHBTC)
        self.table.add("binance", self.eth)
        if btcusdt:
            self.btc = Instrument(BTCUSDT)
            self.table.add("binance", self.btc)
        self.gw = OrderGateway(self.state, AccountIndex([("binance", "b"), ("binance", "u")]), self.table)
        self.controls = RiskControls(None, None, _no_trip)
        self.controls.attach(self.gw)
        self.sync = KernelSync(self.state, self.table, self.controls.coins)
        self.mark("ETH/BTC", "0.05")
        if btcusdt and mark is not None:
            self.mark("BTC/USDT", mark)

    def mark(self, symbol: str, price: str) -> None:
        i, ins = self.table.lookup("binance", symbol)
        update_mark(*self.state.blocks, i, ins.mark_to_units(price))

    def reconcile(self, a: int, assets: tuple[str, ...], **wallet: str) -> None:
        balances = [
            Balance(account=f"binance/{'bu'[a]}", market=Market.SPOT, asset=k, free=v) for k, v in wallet.items()
        ]
        self.sync.apply(a, "binance", Market.SPOT, balances, [], assets)

    def i(self, symbol: str) -> int:
        return self.table.lookup("binance", symbol)[0]

    def btc_usdt(self) -> Decimal:
        i, ins = self.table.lookup("binance", "BTC/USDT")
        return int(self.state.ins[I_MARK, i]) * ins.price_unit


def usdt(units: int) -> Decimal:
    return money_from_units(int(units))


def at_mark(btc: Decimal, price: Decimal) -> int:
    """``btc`` in 1e-8 USDT at ``price``, rounded down: computed from the numbers alone."""
    return int((btc * price * 10**8).to_integral_value(rounding=ROUND_FLOOR))


def test_reconciled_btc_cash_is_its_usdt_value_and_is_revalued_with_the_rate():
    d = Desk()
    s = d.state
    d.reconcile(BTC, ("BTC",), BTC="1.5", USDT="1000", ETH="3")
    d.reconcile(USDT, ("USDT",), BTC="0.5", USDT="1000")
    assert usdt(s.acc[A_CASH, BTC]) == Decimal("135000")  # 1.5 BTC at 90,000; its USDT is not its cash
    assert int(s.pos[P_QTY, BTC, d.i("ETH/BTC"), 0]) == d.eth.qty("3")  # quoted in its cash: the ETH balance
    assert int(s.pos[P_QTY, BTC, d.i("BTC/USDT"), 0]) == 0  # its BTC is cash, not a BTC/USDT position
    assert usdt(s.equity(BTC)) == Decimal("135000") + 3 * Decimal("0.05") * 90000
    assert s.acc[A_DAY_START_EQUITY, BTC] == s.equity(BTC) == s.acc[A_PEAK_EQUITY, BTC]
    # a USDT account is as before: its USDT at par, its BTC a BTC/USDT position
    assert usdt(s.acc[A_CASH, USDT]) == Decimal("1000")
    assert int(s.pos[P_QTY, USDT, d.i("BTC/USDT"), 0]) == d.btc.qty("0.5")

    d.mark("BTC/USDT", "80000")
    assert usdt(s.acc[A_CASH, BTC]) == Decimal("135000")  # moved by the push, as the rates are
    assert d.controls.push_rates() == 2  # ETH/BTC's rate and the BTC cash
    assert usdt(s.acc[A_CASH, BTC]) == Decimal("120000") and usdt(s.acc[A_CASH, USDT]) == Decimal("1000")
    assert usdt(s.equity(BTC)) == Decimal("120000") + 3 * Decimal("0.05") * 80000
    assert usdt(s.equity(USDT)) == Decimal("1000") + Decimal("0.5") * 80000  # the same BTC, the same move
    assert d.controls.push_rates() == 0  # nothing moved
    d.mark("BTC/USDT", "100000.01")
    d.controls.push_rates()
    assert s.acc[A_CASH, BTC] == at_mark(Decimal("1.5"), Decimal("100000.01"))
    assert s.acc[A_PEAK_EQUITY, BTC] == s.equity(BTC)  # a rise raises the peak, as for a position
    cash = s.glob[G_CASH]
    assert cash == s.acc[A_CASH, BTC] + s.acc[A_CASH, USDT]
    recompute_caches(*s.blocks)
    assert s.glob[G_CASH] == cash


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fills_move_the_btc_held_exactly_and_each_push_values_it_at_the_rate(seed):
    rng = random.Random(seed)
    d = Desk()
    s = d.state
    d.reconcile(BTC, ("BTC",), BTC="2.00000001")
    held = Decimal("2.00000001")
    i = d.i("ETH/BTC")
    fills = 0
    for _ in range(200):
        if rng.random() < 0.3:
            d.mark("BTC/USDT", str(Decimal(rng.randrange(5_000_000, 15_000_000)) / 100))
            d.controls.push_rates()
            assert s.acc[A_CASH, BTC] == at_mark(held, d.btc_usdt())
            fills = 0
            continue
        if rng.random() < 0.2:
            d.mark("ETH/BTC", str(Decimal(rng.randrange(4000, 6000)) / 100000))
        q = int(s.pos[P_QTY, BTC, i, 0])
        side = C.SELL if q > 0 and rng.random() < 0.5 else C.BUY
        qty = rng.randrange(1, 2000) if side == C.BUY else rng.randrange(1, q + 1)
        price = rng.randrange(4000, 6000)
        fee = rng.randrange(0, 10**6)  # in 1e-12 BTC, as the gateway books it
        assert apply_fill(*s.blocks, BTC, i, side, C.POS_BOTH, price, qty, fee) == C.OK
        paid = Decimal(price) * d.eth.price_unit * Decimal(qty) * d.eth.qty_unit
        held += (-paid if side == C.BUY else paid) - Decimal(fee) / 10**12
        fills += 1
        assert Decimal(d.controls.coins.held(BTC)) / 10**12 == held  # exact, fill by fill
        # between pushes the fill moved the cash at the rate of the moment: off by its rounding only
        assert abs(s.acc[A_CASH, BTC] - at_mark(held, d.btc_usdt())) <= fills
    d.controls.push_rates()
    assert s.acc[A_CASH, BTC] == at_mark(held, d.btc_usdt())


def test_without_a_rate_the_reconciliation_is_refused_and_changes_nothing():
    d = Desk(btcusdt=False)
    before = d.state.acc.copy(), d.state.pos.copy()
    with pytest.raises(NoCashRate, match="BTC/USDT is not an instrument of this daemon on binance") as no_pair:
        d.reconcile(BTC, ("BTC",), BTC="1", ETH="2")
    assert not no_pair.value.waiting  # nothing will bring a rate
    assert (d.state.acc == before[0]).all() and (d.state.pos == before[1]).all()

    d = Desk(mark=None)
    before = d.state.acc.copy(), d.state.pos.copy()
    with pytest.raises(NoCashRate, match="no BTC/USDT mark yet") as no_mark:
        d.reconcile(BTC, ("BTC",), BTC="1", ETH="2")
    assert no_mark.value.waiting  # the pair's market data will bring one
    assert (d.state.acc == before[0]).all() and (d.state.pos == before[1]).all()
    d.mark("BTC/USDT", "90000")
    d.reconcile(BTC, ("BTC",), BTC="1", ETH="2")
    assert usdt(d.state.acc[A_CASH, BTC]) == Decimal("90000")
