"""The circuit breaker measures the platform's trades, not the inventory: an account funded with BTC (loaded as
reconciliation loads it) does not trip when BTC moves, while its trades' realised and unrealised losses and
fees do; ``pnl: account`` keeps the whole-account measure. Through the real gateway, positions kernel and
reconciliation's kernel sync."""

from __future__ import annotations

from kernels import codes as C
from kernels.state import L_TRADING_STATE
from oms.config import load_config
from oms.model import Balance, Fill, Market, OrderEvent, OrderEventKind, OrderStatus, Side
from oms.model.units import money_to_units
from stream.reconcile_state import KernelSync
from stream.risk import CircuitBreaker
from stream.risk.controls import RiskControls
from stream.risk.tradebook import TradeBook
from tests.stream.test_risk_controls import MIN, Desk, tier

TIERS = [tier(15, "500", C.REDUCE_ONLY), tier(60, "5000", C.HALTED)]


def funded_with_btc(desk: Desk, btc: str = "2") -> None:
    """Account a0 holds ``btc`` BTC it never traded here (reconciliation's view of a funded Spot account)."""
    sync = KernelSync(desk.state, desk.table)
    balances = [Balance(account="binance/a0", market=Market.SPOT, asset="USDT", free="1000000"),
                Balance(account="binance/a0", market=Market.SPOT, asset="BTC", free=btc)]  # fmt: skip
    sync.apply(0, "binance", Market.SPOT, balances, [])


def trade_breaker(desk: Desk) -> CircuitBreaker:
    br = CircuitBreaker(desk.state, desk.accounts, {0: TIERS, 1: TIERS}, [], clock=desk.clock,
                        trades=TradeBook(desk.state))  # fmt: skip
    desk.gw.on_fill = br.trades.on_fill
    return br


def fill(desk: Desk, side: Side, qty: str, price: str, commission: str = "0") -> None:
    d = desk.gw.place(desk.order("a0", "BTC/USDT", side, qty))
    assert d.result.ok, d.result
    coid = d.result.client_order_id
    f = Fill(account="binance/a0", symbol="BTC/USDT", client_order_id=coid, venue_order_id="1",
             trade_id=f"t{desk.trades}", side=side, price=price, qty=qty, commission=commission,
             commission_asset="USDT", event_ns=desk.clock.now)  # fmt: skip
    ev = OrderEvent(account="binance/a0", symbol="BTC/USDT", client_order_id=coid, venue_order_id="1",
                    kind=OrderEventKind.FILL, status=OrderStatus.FILLED, fill=f, event_ns=desk.clock.now)  # fmt: skip
    assert desk.gw.on_order_event(ev)
    assert not desk.gw.on_order_event(ev)  # a duplicate counts once


def test_inventory_moving_with_the_market_does_not_trip_the_breaker():
    desk = Desk()
    funded_with_btc(desk)
    br = trade_breaker(desk)
    whole = CircuitBreaker(desk.state, desk.accounts, {0: TIERS}, [], clock=desk.clock)  # pnl: account
    assert br.tick() == [] and whole.tick() == []
    for price in ("57000", "63000", "54000"):  # 2 BTC swing by up to 12,000 USDT
        desk.clock.now += MIN
        desk.mark("BTC/USDT", price)
        assert br.tick() == []
    assert desk.state.lim[L_TRADING_STATE, 0] == C.ACTIVE
    [trip] = whole.tick()  # the whole-account measure calls the inventory's drop a loss
    assert trip.loss == "12000" and trip.trading_state == "halted"


def test_a_trades_unrealised_loss_trips_but_not_the_inventorys_share():
    desk = Desk()
    funded_with_btc(desk)
    br = trade_breaker(desk)
    br.tick()
    fill(desk, Side.BUY, "0.1", "60000")  # on top of the 2 BTC held
    assert br.trades.position(0, desk.table.lookup("binance", "BTC/USDT")[0]) == 100  # 0.1 in 0.001 lots
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "54000")  # the trade loses 600; the inventory 12,000 (not counted)
    [trip] = br.tick()
    assert (trip.account, trip.trading_state, trip.loss) == ("binance/a0", "reduce_only", "600")


def test_realised_losses_and_fees_count_and_a_flat_book_stays_put():
    desk = Desk()
    funded_with_btc(desk)
    br = trade_breaker(desk)
    br.tick()
    fill(desk, Side.BUY, "0.1", "60000", commission="6")
    fill(desk, Side.SELL, "0.1", "54000", commission="5.4")  # realised -600, fees 11.4
    desk.clock.now += MIN
    [trip] = br.tick()
    assert trip.loss == "611.4" and trip.trading_state == "reduce_only"
    per, total = br.pnl()
    assert int(per[0]) == -money_to_units("611.4") and total == int(per[0])
    desk.state.lim[L_TRADING_STATE, 0] = C.ACTIVE  # cmd.resume
    br.resume(0)
    for price in ("50000", "70000"):  # flat: nothing the market does is a loss of the trades
        desk.clock.now += MIN
        desk.mark("BTC/USDT", price)
        assert br.tick() == []


def test_selling_inventory_is_measured_against_holding_it():
    desk = Desk()
    funded_with_btc(desk)
    br = trade_breaker(desk)
    br.tick()
    fill(desk, Side.SELL, "0.1", "60000")  # sells 0.1 of the 2 BTC held
    desk.clock.now += MIN
    desk.mark("BTC/USDT", "66000")  # had it been held: 600 more
    [trip] = br.tick()
    assert trip.loss == "600"


def test_the_configuration_picks_the_measure_and_attach_installs_the_fill_hook():
    desk = Desk()
    cfg = load_config(env={})
    assert cfg.risk.circuit_breaker.pnl == "trades" and cfg.risk.circuit_breaker.cancel_orders_on_halt
    controls = RiskControls.from_config(cfg.risk, desk.state, desk.accounts, desk.symbol, on_trip=None)
    controls.attach(desk.gw)
    assert controls.breaker.trades is not None and desk.gw.on_fill == controls.breaker.trades.on_fill
    whole = cfg.risk.circuit_breaker.model_copy(update={"pnl": "account"})
    risk = cfg.risk.model_copy(update={"circuit_breaker": whole})
    controls = RiskControls.from_config(risk, desk.state, desk.accounts, desk.symbol, on_trip=None)
    controls.attach(desk.gw)
    assert controls.breaker.trades is None and desk.gw.on_fill is None
