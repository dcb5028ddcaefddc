"""Risk limits across quote currencies, through the real gateway and risk kernel with the shipped risk.yaml
limits: an ETH/BTC order's BTC notional is converted into the limits' USDT at the live BTC/USDT mark (order and
position limits), an order is refused with a clear reason while no rate is known, and risk.yaml's
``quote_rates`` is validated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernels import codes as C
from kernels.positions import apply_fill, transfer, update_mark
from kernels.risk_limits import load_risk_limits
from kernels.state import P_OPEN_BUY, AccountIndex, KernelState
from oms.config import DEFAULT_CONFIG_DIR, ConfigError, load_config
from oms.model import (
    AmendOrder,
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
from stream.risk.controls import RiskControls

ACCOUNT = ("binance", "sub_market_making")  # risk.yaml defaults: max order 50,000 USDT, max position 100,000
ETHBTC = InstrumentSpec(symbol="ETH/BTC", kind=InstrumentKind.SPOT, tick_size="0.00001", step_size="0.0001",
                        min_qty="0.0001", max_qty="100000", min_notional="0.0001", quote_asset="BTC")  # fmt: skip
BTCUSDT = InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_notional="5", quote_asset="USDT")  # fmt: skip


async def _on_trip(trip) -> None:  # no breaker here
    raise AssertionError(trip)


class Desk:
    def __init__(self, *, btcusdt: bool = True, rates: dict[str, str] | None = None) -> None:
        self.state = KernelState(n_accounts=1, n_instruments=4)
        load_risk_limits(DEFAULT_CONFIG_DIR, [ACCOUNT]).apply(self.state)
        transfer(*self.state.blocks, 0, money_to_units("1000000"))
        self.table = InstrumentTable(self.state)
        self.eth = Instrument(ETHBTC)
        self.table.add("binance", self.eth)
        if btcusdt:
            self.table.add("binance", Instrument(BTCUSDT))
        self.gw = OrderGateway(self.state, AccountIndex([ACCOUNT]), self.table)
        self.controls = RiskControls(None, None, _on_trip, quote_rates=rates)
        self.controls.attach(self.gw)
        self.mark("ETH/BTC", "0.05")
        self.n = 0

    def mark(self, symbol: str, price: str) -> None:
        i, ins = self.table.lookup("binance", symbol)
        update_mark(*self.state.blocks, i, ins.mark_to_units(price))

    def buy(self, qty: str, price: str | None = "0.05", side: Side = Side.BUY, **kw):
        self.n += 1
        otype = OrderType.LIMIT if price is not None else OrderType.MARKET
        cmd = PlaceOrder(account="binance/sub_market_making", symbol="ETH/BTC", side=side, order_type=otype,
                         qty=qty, price=price, intent=str(self.n), **kw)  # fmt: skip
        return self.gw.place(cmd).result


def test_a_btc_notional_is_checked_in_usdt_at_the_live_btc_mark():
    d = Desk()
    d.mark("BTC/USDT", "90000")
    ok = d.buy("10")  # 0.5 BTC = 45,000 USDT
    assert ok.ok and ok.status is OrderStatus.PENDING_NEW
    # 0.6 BTC = 54,000 USDT: the kernel alone (1e-12 BTC units against 1e-8 USDT limits) would take it
    r = d.buy("12")
    assert not r.ok and r.code == "risk:MAX_ORDER_NOTIONAL"
    assert "54000.00000000 USDT" in r.reason and "BTC/USDT mark" in r.reason and "50000.00000000" in r.reason
    r = d.buy("12", price=None)  # a market order is valued at ETH/BTC's mark: the same
    assert r.code == "risk:MAX_ORDER_NOTIONAL"
    d.mark("BTC/USDT", "80000")  # the rate is read live: 0.6 BTC is now 48,000 USDT
    assert d.buy("12").ok
    # the position limit counts the position and open orders on the side: 22 ETH open = 1.1 BTC = 88,000
    r = d.buy("3")  # 25 ETH = 1.25 BTC = 100,000.00 USDT: at the limit, allowed
    assert r.ok, r.reason
    r = d.buy("0.0001")
    assert r.code == "risk:MAX_POSITION" and "max_position_notional_usdt" in r.reason
    assert d.controls.quotes.refused == 3
    assert d.gw.rejections["risk:MAX_ORDER_NOTIONAL"] == 2 and d.gw.rejections["risk:MAX_POSITION"] == 1


def test_the_conversion_is_exact_at_the_limit():
    d = Desk()
    d.mark("BTC/USDT", "99999.99")
    assert d.buy("10").ok  # 0.5 BTC x 99,999.99 = 49,999.995 USDT
    r = d.buy("10.0001")  # 0.500005 BTC = 50,000.49499995 USDT
    assert r.code == "risk:MAX_ORDER_NOTIONAL" and "order notional 50000.49499995 USDT" in r.reason
    d.mark("BTC/USDT", "100000")
    assert d.buy("10", price="0.05").ok  # exactly 50,000 USDT is allowed
    assert d.buy("10.0001").code == "risk:MAX_ORDER_NOTIONAL"  # 50,000.50 USDT


def test_without_a_rate_an_entry_is_refused_never_passed_unchecked():
    d = Desk()  # BTC/USDT is an instrument, but it has no mark yet
    r = d.buy("0.01")
    assert not r.ok and r.code == "risk:NO_QUOTE_RATE"
    assert r.reason == "no BTC/USDT mark yet to convert ETH/BTC's BTC notional into USDT"
    d.mark("BTC/USDT", "90000")
    assert d.buy("0.01").ok

    d = Desk(btcusdt=False)  # the daemon does not stream the pair at all
    r = d.buy("0.01")
    assert r.code == "risk:NO_QUOTE_RATE" and "BTC/USDT is not an instrument of this daemon on binance" in r.reason
    # an order that only reduces the position needs no money limit: the kernel gates it as usual
    a, i = 0, d.table.lookup("binance", "ETH/BTC")[0]
    assert apply_fill(*d.state.blocks, a, i, C.BUY, C.POS_BOTH, d.eth.price("0.05"), d.eth.qty("2"), 0) == C.OK
    assert d.buy("1", side=Side.SELL).ok
    assert d.buy("3", side=Side.SELL).code == "risk:NO_QUOTE_RATE"  # flips the position: an entry


def test_a_named_pair_converts_and_usdt_quoted_orders_are_left_to_the_kernel():
    d = Desk(rates={"BTC": "BTC/USDT:USDT"})  # the perpetual's mark instead of the Spot pair's
    perp = InstrumentSpec(symbol="BTC/USDT:USDT", kind=InstrumentKind.PERP, tick_size="0.1", step_size="0.001",
                          min_qty="0.001", max_qty="1000", min_notional="5", quote_asset="USDT")  # fmt: skip
    d.table.add("binance", Instrument(perp))
    d.mark("BTC/USDT", "10")  # the Spot pair is not used
    assert d.buy("1").code == "risk:NO_QUOTE_RATE"
    d.mark("BTC/USDT:USDT", "90000")
    assert d.buy("12").code == "risk:MAX_ORDER_NOTIONAL" and d.buy("10").ok
    cmd = PlaceOrder(account="binance/sub_market_making", symbol="BTC/USDT", side=Side.BUY,
                     order_type=OrderType.LIMIT, qty="1", price="10", intent="usdt")  # fmt: skip
    assert d.gw.place(cmd).result.ok  # 10 USDT: USDT-quoted, the kernel's own check
    assert d.controls.quotes.refused == 2


def test_quote_rates_in_risk_yaml_are_validated(tmp_path: Path):
    assert load_config(DEFAULT_CONFIG_DIR).risk.quote_rates == {}
    cfg = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
    risk = cfg / "risk.yaml"
    text = risk.read_text()
    risk.write_text(text + "quote_rates: {BTC: BTC/USDT:USDT, ETH: ETH/USDT}\n")
    assert load_config(cfg).risk.quote_rates == {"BTC": "BTC/USDT:USDT", "ETH": "ETH/USDT"}
    risk.write_text(text + "quote_rates: {BTC: ETH/USDT}\n")
    with pytest.raises(ConfigError, match=r"quote_rates BTC: 'ETH/USDT' is not BTC's USDT pair"):
        load_config(cfg)


def test_an_amend_and_a_cancel_replace_are_checked_in_usdt_too():
    d = Desk()
    d.mark("BTC/USDT", "90000")
    r = d.buy("10")  # 45,000 USDT
    coid = r.client_order_id
    d.gw.on_order_event(OrderEvent(account="binance/sub_market_making", symbol="ETH/BTC", client_order_id=coid,
                                   venue_order_id="1", kind=OrderEventKind.ACCEPTED, status=OrderStatus.NEW,
                                   event_ns=1))  # fmt: skip

    def amend(qty: str, price: str | None = None):
        return d.gw.amend(AmendOrder(account="binance/sub_market_making", symbol="ETH/BTC", client_order_id=coid,
                                     side=Side.BUY, qty=qty, price=price))  # fmt: skip

    up = amend("12")  # 54,000 USDT: refused, the order and its reservation unchanged
    assert not up.result.ok and up.result.code == "risk:MAX_ORDER_NOTIONAL" and up.send == []
    assert up.events[0].kind is OrderEventKind.AMEND_REJECTED and "54000.00000000 USDT" in up.events[0].reason
    i = d.table.lookup("binance", "ETH/BTC")[0]
    assert int(d.state.pos[P_OPEN_BUY, 0, i, 0]) == d.eth.qty("10")
    assert amend("11").result.ok  # 49,500 USDT
    d.gw.amends.clear()  # (the venue's answer to that amend is not part of this test)
    d.gw.amends_qty_only = lambda account, symbol: True  # Binance Spot: a new price is a cancel-replace
    r = amend("12", price="0.05001")
    assert r.result.code == "risk:MAX_ORDER_NOTIONAL" and r.send == []
    assert amend("11", price="0.05001").result.ok  # 0.550110 BTC = 49,509.90 USDT
