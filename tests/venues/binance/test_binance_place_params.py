"""``place_params`` fills a per-kind template after the first order of a kind: the same params (names, order and
values) as building them from scratch, and the same refusals, for any command of either market."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.model import InstrumentKind, InstrumentSpec, Market, OrderType, PlaceOrder, PositionSide, Side, TimeInForce
from oms.venues.binance.orders import OrderNotExpressible, _place_params, place_params
from oms.venues.binance.symbols import SymbolTable


def _spec(base: str, quote: str, tick: str, step: str, perp: bool) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=f"{base}/{quote}:{quote}" if perp else f"{base}/{quote}",
        kind=InstrumentKind.PERP if perp else InstrumentKind.SPOT,
        tick_size=tick, step_size=step, venue_symbol=base + quote,
        base_asset=base, quote_asset=quote, settle_asset=quote if perp else "",
    )  # fmt: skip


def _tables() -> dict[Market, SymbolTable]:
    return {
        Market.SPOT: SymbolTable(Market.SPOT, [_spec("BTC", "USDT", "0.01", "0.00001", False)]),
        Market.USDM: SymbolTable(Market.USDM, [_spec("BTC", "USDT", "0.1", "0.001", True)]),
    }


decimal = st.sampled_from(["0.01", "0.001", "0.00001", "0.000001", "1", "29000.50", "29000.55", "29000.555", "7"])
commands = st.builds(
    PlaceOrder,
    account=st.just("binance/sub_mm"),
    symbol=st.just("BTC/USDT"),
    side=st.sampled_from([*Side, "buy", "sell"]),
    order_type=st.sampled_from(list(OrderType)),
    qty=decimal,
    price=st.none() | decimal,
    stop_price=st.none() | decimal,
    time_in_force=st.none() | st.sampled_from(list(TimeInForce)),
    reduce_only=st.booleans(),
    post_only=st.booleans(),
    position_side=st.sampled_from(list(PositionSide)),
    client_order_id=st.from_regex(r"\Aoms-[a-z0-9]{1,20}\Z"),
)


def _outcome(fn, cmd, market, table):
    try:
        p = fn(cmd, market, table, 5000)
    except (OrderNotExpressible, ValueError) as exc:
        return type(exc), str(exc)
    return list(p.items())


@settings(max_examples=400)
@given(st.lists(st.tuples(st.sampled_from(list(Market)), commands), min_size=1, max_size=12))
def test_templated_params_equal_the_params_built_from_scratch(orders):
    tables = _tables()
    for market, cmd in orders:
        if market is Market.USDM:
            cmd = PlaceOrder(**{**_fields(cmd), "symbol": "BTC/USDT:USDT"})
        want = _outcome(_place_params, cmd, market, tables[market])
        for _ in range(2):  # the first may make the template, the second uses it
            assert _outcome(place_params, cmd, market, tables[market]) == want


def _fields(cmd: PlaceOrder) -> dict:
    return {f: getattr(cmd, f) for f in cmd.__struct_fields__}


def test_a_template_is_filled_not_shared():
    table = _tables()[Market.SPOT]
    a = PlaceOrder(
        account="binance/sub_mm", symbol="BTC/USDT", side="buy", order_type="limit", qty="0.01", price="29000.50",
        client_order_id="oms-a",
    )  # fmt: skip
    first = place_params(a, Market.SPOT, table, 5000)
    first["quantity"] = "changed by the caller"
    b = PlaceOrder(**{**_fields(a), "qty": "0.02", "price": "29001.00", "client_order_id": "oms-b"})
    second = place_params(b, Market.SPOT, table, 5000)
    assert second == {**_place_params(b, Market.SPOT, table, 5000)}
    assert list(second) == list(first)
    assert (second["quantity"], second["price"], second["newClientOrderId"]) == ("0.02", "29001.00", "oms-b")
    with pytest.raises(OrderNotExpressible, match="qty"):
        place_params(PlaceOrder(**{**_fields(a), "qty": "0.000001"}), Market.SPOT, table, 5000)
