"""The circuit breaker and the portfolio guards through the real gateway, risk and positions kernels:
a scripted loss trips reduce-only then halt (per account and globally), correlated entries are refused,
volatile instruments' entries are scaled; and their config mistakes name file, key and reason."""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from kernels import codes as C
from kernels.positions import transfer, update_mark
from kernels.state import G_TRADING_STATE, L_TRADING_STATE, AccountIndex, KernelState
from oms.config import DEFAULT_CONFIG_DIR, ConfigError, load_config
from oms.model import (
    Fill,
    Instrument,
    InstrumentKind,
    InstrumentSpec,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from oms.model.units import money_to_units
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.risk import CircuitBreaker, PortfolioGuards, Tier
from stream.risk.controls import RiskControls
from stream.risk.guards import GuardSettings

T0 = 1_800_000_000_000_000_000
MIN = 60 * 10**9
SYMBOLS = ("BTC/USDT", "ETH/USDT", "XRP/USDT")
PRICES = {"BTC/USDT": "60000", "ETH/USDT": "3000", "XRP/USDT": "1"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class Desk:
    """Two accounts, three spot instruments, a gateway and a clock the test moves."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.state = KernelState(n_accounts=2, n_instruments=4)
        self.accounts = AccountIndex([("binance", "a0"), ("binance", "a1")])
        self.table = InstrumentTable(self.state)
        for sym in SYMBOLS:
            spec = InstrumentSpec(symbol=sym, kind=InstrumentKind.SPOT, tick_size="0.0001", step_size="0.001",
                                  min_qty="0.001", max_qty="1000000", min_notional="1")  # fmt: skip
            self.table.add("binance", Instrument(spec))
            self.mark(sym, PRICES[sym])
        for a in range(2):
            transfer(*self.state.blocks, a, money_to_units("1000000"))
        self.gw = OrderGateway(self.state, self.accounts, self.table, clock=self.clock)
        self.trades = 0

    def symbol(self, i: int) -> str:
        return self.table.instrument(i)[1].symbol

    def mark(self, symbol: str, price: str) -> None:
        i, ins = self.table.lookup("binance", symbol)
        update_mark(*self.state.blocks, i, ins.mark_to_units(price))

    def order(self, account: str, symbol: str, side: Side, qty: str, **kw) -> PlaceOrder:
        self.trades += 1
        return PlaceOrder(account=f"binance/{account}", symbol=symbol, side=side, order_type=OrderType.MARKET,
                          qty=qty, intent=str(self.trades), **kw)  # fmt: skip

    def buy_filled(self, account: str, symbol: str, qty: str, price: str) -> None:
        d = self.gw.place(self.order(account, symbol, Side.BUY, qty))
        assert d.result.ok, d.result
        coid = d.result.client_order_id
        fill = Fill(account=f"binance/{account}", symbol=symbol, client_order_id=coid, venue_order_id="1",
                    trade_id=f"t{self.trades}", side=Side.BUY, price=price, qty=d.send[0].qty, commission="0",
                    commission_asset="USDT", event_ns=self.clock.now)  # fmt: skip
        ev = OrderEvent(account=f"binance/{account}", symbol=symbol, client_order_id=coid, venue_order_id="1",
                        kind=OrderEventKind.FILL, status=OrderStatus.FILLED, fill=fill,
                        event_ns=self.clock.now)  # fmt: skip
        assert self.gw.on_order_event(ev)


def tier(minutes: int, usdt: str, state: int) -> Tier:
    return Tier(minutes * MIN, money_to_units(usdt), state, f"{minutes}m")


@pytest.fixture
def desk() -> Desk:
    return Desk()


def breaker(desk: Desk, account_tiers=None, global_tiers=()) -> CircuitBreaker:
    tiers = account_tiers or [tier(15, "500", C.REDUCE_ONLY), tier(60, "1000", C.HALTED)]
    return CircuitBreaker(desk.state, desk.accounts, {0: tiers, 1: tiers}, list(global_tiers), clock=desk.clock)


def test_breaker_trips_reduce_only_then_halt_on_a_scripted_loss(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    br = breaker(desk)
    assert br.tick() == []
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "54000")  # 0.1 BTC lose 600 USDT
    [trip] = br.tick()
    assert (trip.account, trip.trading_state, trip.window, trip.loss, trip.limit) == (
        "binance/a0", "reduce_only", "15m", "600", "500"
    )  # fmt: skip
    assert "binance/a0 lost 600 USDT within 15m" in trip.reason
    assert desk.state.lim[L_TRADING_STATE, 0] == C.REDUCE_ONLY and desk.state.lim[L_TRADING_STATE, 1] == C.ACTIVE
    refused = desk.gw.place(desk.order("a0", "ETH/USDT", Side.BUY, "1"))
    assert refused.result.code == "risk:ACCOUNT_REDUCE_ONLY"
    assert desk.gw.place(desk.order("a0", "BTC/USDT", Side.SELL, "0.05")).result.ok  # reducing is allowed
    assert desk.gw.place(desk.order("a1", "ETH/USDT", Side.BUY, "1")).result.ok  # the other account trades on
    assert br.tick() == []  # tripped once, not at every tick
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "48000")  # 1,200 USDT down from the window's high
    [trip] = br.tick()
    assert trip.trading_state == "halted" and trip.window == "60m" and trip.loss == "1200"
    assert desk.gw.place(desk.order("a0", "BTC/USDT", Side.SELL, "0.01")).result.code == "risk:ACCOUNT_HALTED"
    assert [t.trading_state for t in br.trips] == ["reduce_only", "halted"]


def test_resume_starts_the_windows_afresh_and_the_breaker_can_trip_again(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    br = breaker(desk)
    br.tick()
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "54000")
    assert br.tick()
    desk.state.lim[L_TRADING_STATE, 0] = C.ACTIVE  # cmd.resume, by hand
    br.resume(0)
    desk.clock.now += MIN
    assert br.tick() == []  # the old loss no longer counts
    assert desk.gw.place(desk.order("a0", "ETH/USDT", Side.BUY, "1")).result.ok
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "48500")  # a new loss of 550 since the resume
    [trip] = br.tick()
    assert trip.trading_state == "reduce_only" and trip.loss == "550"


def test_losses_outside_the_window_and_transfers_do_not_trip(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    br = breaker(desk, [tier(15, "500", C.REDUCE_ONLY)])
    br.tick()
    for price in ("58000", "56000", "54000", "52000"):  # 200 USDT per 10 minutes: never 500 within 15m
        desk.clock.now += 10 * MIN
        desk.mark("BTC/USDT", price)
        assert br.tick() == []
    transfer(*desk.state.blocks, 0, -money_to_units("50000"))  # a rebalance sweep is not a loss
    desk.clock.now += MIN
    assert br.tick() == [] and desk.state.lim[L_TRADING_STATE, 0] == C.ACTIVE


def test_global_tiers_act_on_the_sum_over_accounts(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    desk.buy_filled("a1", "BTC/USDT", "0.1", "60000")
    br = breaker(desk, [tier(15, "5000", C.HALTED)], [tier(15, "700", C.REDUCE_ONLY), tier(15, "5000", C.HALTED)])
    br.tick()
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "56000")  # 400 each, 800 together
    [trip] = br.tick()
    assert trip.account == "*" and trip.trading_state == "reduce_only" and trip.loss == "800"
    assert desk.state.glob[G_TRADING_STATE] == C.REDUCE_ONLY
    assert desk.gw.place(desk.order("a1", "ETH/USDT", Side.BUY, "1")).result.code == "risk:GLOBAL_REDUCE_ONLY"


def test_breaker_never_loosens_a_state_set_by_hand(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    br = breaker(desk)
    br.tick()
    desk.state.lim[L_TRADING_STATE, 0] = C.HALTED  # cmd.halt
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "54000")
    assert br.tick() == [] and desk.state.lim[L_TRADING_STATE, 0] == C.HALTED


def test_breaker_from_the_example_configuration(cfg_dir):
    path = cfg_dir / "risk.yaml"
    path.write_text(path.read_text().replace(OVERRIDE_COMMENTED, OVERRIDE))
    cfg = load_config(cfg_dir, env={})
    accounts = AccountIndex([("binance", "main"), ("binance", "sub_market_making")])
    br = CircuitBreaker.from_config(cfg.risk.circuit_breaker, KernelState(2, 2), accounts)
    assert [(t.label, t.state) for t in br.tiers[0]] == [("15m", C.REDUCE_ONLY), ("1h", C.HALTED)]
    assert br.tiers[1][0].label == "5m" and br.tiers[1][0].max_loss == money_to_units("1000")
    assert [t.max_loss for t in br.tiers[-1]] == [money_to_units("25000"), money_to_units("50000")]


async def test_the_timers_trip_the_breaker_and_refresh_the_guards_off_the_loop(desk):
    desk.buy_filled("a0", "BTC/USDT", "0.1", "60000")
    tripped: list = []
    got = asyncio.Event()

    async def on_trip(trip):
        tripped.append(trip)
        got.set()

    guards = PortfolioGuards(desk.state, GuardSettings(60, 60, 20, 0.8, 10.0, 0.1), desk.symbol, desk.clock)
    controls = RiskControls(breaker(desk), guards, on_trip, breaker_interval_s=0.02)
    controls.attach(desk.gw)
    assert desk.gw.guard == guards.check
    controls.start()
    try:
        while controls.ticks < 2:  # the breaker has its baseline
            await asyncio.sleep(0.01)
        desk.clock.now += MIN
        desk.mark("BTC/USDT", "54000")
        await asyncio.wait_for(got.wait(), 10)
        assert tripped[0].account == "binance/a0" and tripped[0].trading_state == "reduce_only"
        assert await controls.tick_guards() == 0 and guards.computed_ns == desk.clock.now
    finally:
        await controls.stop()
    controls.resume(0)
    desk.clock.now += MIN
    assert await controls.tick_breaker() == []


def test_controls_from_the_example_configuration(desk):
    cfg = load_config(env={})
    controls = RiskControls.from_config(cfg.risk, desk.state, desk.accounts, desk.symbol, on_trip=None)
    assert controls.breaker is not None and controls.guards is not None and controls.breaker_interval_s == 1.0
    assert controls.guards.settings.max_correlation == 0.85 and controls.guards.settings.interval_s == 60


OVERRIDE_COMMENTED = """  # overrides:                   # per account, replacing `accounts` (the account must exist)
  #   binance:
  #     sub_market_making:
  #       - {window: 5m, max_loss_usdt: 1000, action: reduce_only}"""
OVERRIDE = """  overrides:
    binance:
      sub_market_making:
        - {window: 5m, max_loss_usdt: 1000, action: reduce_only}"""


# ----------------------------------------------------------------------------------------------- guards
def run_marks(desk: Desk, guards: PortfolioGuards, n: int, rng: np.random.Generator, xrp_jump: float = 0.001):
    btc = 60000.0
    xrp = 1.0
    for k in range(n):
        step = rng.normal(0, 0.01)
        btc *= math.exp(step)
        eth = btc / 20 * math.exp(rng.normal(0, 0.001))  # moves with BTC
        xrp *= math.exp(xrp_jump if k % 2 else -xrp_jump)  # on its own
        desk.mark("BTC/USDT", f"{btc:.4f}")
        desk.mark("ETH/USDT", f"{eth:.4f}")
        desk.mark("XRP/USDT", f"{xrp:.4f}")
        guards.tick()


def test_correlated_entries_are_refused_naming_the_position_and_hedges_pass(desk):
    desk.buy_filled("a0", "BTC/USDT", "1", "60000")
    guards = PortfolioGuards(desk.state, GuardSettings(60, 60, 20, 0.8, 10.0, 0.1), desk.symbol)
    run_marks(desk, guards, 60, np.random.default_rng(7))
    desk.gw.guard = guards.check
    assert guards.corr[0, 1] > 0.9 and abs(guards.corr[0, 2]) < 0.5
    d = desk.gw.place(desk.order("a0", "ETH/USDT", Side.BUY, "1"))
    assert d.result.code == "guard:correlation" and d.events[0].kind is OrderEventKind.REJECTED
    assert "adds to the long BTC/USDT position" in d.result.reason and "exceeds the limit 0.80" in d.result.reason
    assert desk.gw.place(desk.order("a0", "ETH/USDT", Side.SELL, "1")).result.ok  # a hedge of the BTC long
    assert desk.gw.place(desk.order("a0", "XRP/USDT", Side.BUY, "10")).result.ok  # uncorrelated
    assert desk.gw.place(desk.order("a0", "BTC/USDT", Side.SELL, "0.5")).result.ok  # reducing: never guarded
    assert desk.gw.place(desk.order("a1", "ETH/USDT", Side.BUY, "1")).result.ok  # a1 holds nothing
    assert guards.refused["guard:correlation"] == 1 and desk.gw.rejections["guard:correlation"] == 1


def test_entry_sizes_scale_with_volatility_and_tiny_ones_are_refused(desk):
    guards = PortfolioGuards(desk.state, GuardSettings(60, 60, 20, 0.99, 1.0, 0.1), desk.symbol)
    run_marks(desk, guards, 60, np.random.default_rng(3), xrp_jump=0.05)  # XRP: ~5% a minute, huge annualised
    desk.gw.guard = guards.check
    i = desk.table.lookup("binance", "XRP/USDT")[0]
    assert guards.vols[i] > 10 and guards.scale_ppm[i] == 100_000  # at the floor: a tenth of the size
    d = desk.gw.place(desk.order("a0", "XRP/USDT", Side.BUY, "100"))
    assert d.result.ok and d.send[0].qty == "10" and "scaled from 100 to 10" in d.result.reason
    rec = desk.gw.orders.get(d.result.client_order_id)
    assert rec.cmd.qty == "10" and rec.qty == 10_000  # reserved at the scaled size (lots of 0.001)
    tiny = desk.gw.place(desk.order("a0", "XRP/USDT", Side.BUY, "0.005"))
    assert tiny.result.code == "guard:volatility" and "below the instrument's minimum" in tiny.result.reason
    assert desk.gw.place(desk.order("a0", "XRP/USDT", Side.BUY, "1", reduce_only=True)).result.code.startswith(
        "risk:"
    )  # reduce-only orders skip the guard (and the kernel refuses this one: nothing to reduce)


# ----------------------------------------------------------------------------------------------- config
@pytest.fixture()
def cfg_dir(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("{window: 15m, max_loss_usdt: 2500,", "{window: 15x, max_loss_usdt: 2500,",
         "circuit_breaker.accounts.0.window"),
        ("max_loss_usdt: 2500,", "max_loss_usdt: -5,", "circuit_breaker.accounts.0.max_loss_usdt"),
        ("{window: 1h, max_loss_usdt: 5000, action: halt}", "{window: 1h, max_loss_usdt: 2000, action: halt}",
         "the reduce-only tier would never act"),
        ("action: reduce_only}\n    - {window: 1h", "action: stop}\n    - {window: 1h",
         "circuit_breaker.accounts.0.action"),
        (OVERRIDE_COMMENTED, OVERRIDE.replace("sub_market_making", "sub_mm_typo"),
         "circuit_breaker.overrides.binance.sub_mm_typo: 'sub_mm_typo' is not an account of binance"),
        ("  max_correlation: 0.85", "  max_correlation: 1.5", "portfolio_guards.max_correlation"),
        ("  min_observations: 30", "  min_observations: 300", "must be below lookback"),
    ],
)  # fmt: skip
def test_risk_controls_config_mistakes_name_file_key_and_reason(cfg_dir, old, new, expected):
    path = cfg_dir / "risk.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir, env={})
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("risk.yaml: ") and expected in p for p in found), found
