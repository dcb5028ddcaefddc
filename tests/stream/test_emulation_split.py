"""A liquidity parent across several accounts' books (``PlaceParent.route``, ``stream.emulation.split``).

The sizing over two real book-kernel books that differ (two exchanges' BTC/USDT in one daemon's numbering): each
child is its book's depth within the limit, capped by its account's free balance, and when together they offer
more than is left, shared in proportion (``kernels.execution.allocate``). Then through the daemon against the local
exchange: one parent on two accounts (one with little USDT), each child sent to its account, none past its balance,
the whole quantity filled and each child at the venue under its own account."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from kernels import book as K
from kernels import codes as C
from kernels.state import KernelState
from oms.model import Instrument, InstrumentSpec
from oms.model.parents import ParentStatus
from stream.emulation import split
from stream.emulation.book import BookView
from stream.instruments import InstrumentTable
from tests.stream.conftest import request, unique, until
from tests.stream.emulation_kit import child_fills, finished, parent, send_parent
from tests.stream.flights import Flights

INS = Instrument(InstrumentSpec(symbol="BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="10"))


def _view(asks: list[list[tuple[str, str]]]) -> BookView:
    table = InstrumentTable(KernelState(2, 2))
    lv, meta = K.new_books(2, 20)
    for b, (exchange, levels) in enumerate(zip(("binance", "other"), asks, strict=True)):
        table.add(exchange, INS)
        if levels:
            px = np.array([INS.price(p) for p, _ in levels], dtype=np.int64)
            qty = np.array([INS.qty(q) for _, q in levels], dtype=np.int64)
            K.apply_snapshot(lv, meta, b, np.array([INS.price("59000")]), np.array([INS.qty("1")]), px, qty, 1)
    return BookView(table, (lv, meta), [])


def _exchange(account: str) -> str:
    return account.partition("/")[0]


def test_children_are_sized_by_each_books_depth_within_the_limit_and_each_accounts_balance():
    view = _view([[("60000", "0.005"), ("60010", "0.010"), ("60100", "1")], [("60005", "0.002"), ("60020", "0.003")]])
    vs = split.venues(view, _exchange, "binance/a", ("other/b",), "BTC/USDT", "60015")
    assert [(v.account, v.i) for v in vs] == [("binance/a", 0), ("other/b", 1)]
    # within 60015: 0.015 on the first book, 0.002 on the second (its 60020 is past the limit)
    assert split.sizes(view, None, vs, C.BUY, INS.qty("0.02")) == [INS.qty("0.015"), INS.qty("0.002")]
    # less left than both offer: shared 1500 : 200 (largest remainder), 0.01 in all
    assert split.sizes(view, None, vs, C.BUY, INS.qty("0.01")) == [882, 118]

    def poor_b(account, ins, side, limit):
        return INS.qty("0.0001") if account == "other/b" else None

    # b's balance buys 0.0001 (10 units): its share (7 of 1000) is below the venue's minimum (10 USDT): a takes it
    assert split.sizes(view, poor_b, vs, C.BUY, INS.qty("0.01")) == [1000, 0]
    # a's book offers 0.015, b's balance 0.0005 (above the minimum): shared 1500 : 50, all of it sent
    assert split.sizes(view, lambda acct, *_: INS.qty("0.0005") if acct == "other/b" else None, vs, C.BUY,
                       INS.qty("0.01")) == [968, 32]  # fmt: skip
    # a book with no snapshot offers nothing
    empty = _view([[("60000", "0.005")], []])
    assert split.sizes(empty, None, split.venues(empty, _exchange, "binance/a", ("other/b",), "BTC/USDT", "60015"),
                       C.BUY, INS.qty("0.01")) == [INS.qty("0.005"), 0]  # fmt: skip


def test_a_route_that_cannot_be_worked_is_refused():
    view = _view([[("60000", "0.005")], [("60005", "0.002")]])
    with pytest.raises(ValueError, match="twice"):
        split.venues(view, _exchange, "binance/a", ("binance/a",), "BTC/USDT", "60015")
    with pytest.raises(ValueError, match="nowhere/c"):
        split.venues(view, _exchange, "binance/a", ("nowhere/c",), "BTC/USDT", "60015")
    with pytest.raises(ValueError, match="not a multiple of 0.01"):
        split.venues(view, _exchange, "binance/a", ("other/b",), "BTC/USDT", "60015.001")


async def test_a_routed_liquidity_parent_splits_over_two_accounts_within_their_balances(bench, nc):
    rich, poor = unique("liqa"), unique("liqb")
    mid = bench.ticker()
    # the book is far deeper than either balance: each account's child is what its USDT buys, shared 2 : 1
    funds = {rich: (mid * Decimal("0.00315")).quantize(Decimal("0.01")),
             poor: (mid * Decimal("0.001575")).quantize(Decimal("0.01"))}  # fmt: skip
    for name, usdt in funds.items():
        bench.accounts[name] = keys = bench.exchange.new_account(spot={"USDT": str(usdt)})
        stem = f"OMS_KEY_BINANCE_{name.upper()}"
        bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = keys[1], keys[2]
    bench.write([rich, poor])
    a, b = bench.account(rich), bench.account(poor)
    d = bench.daemon()
    await d.start()
    try:
        flights = Flights(*(next(iter(d.sessions[x].links.values())).clients.execution for x in (a, b)))
        limit = str((mid * Decimal("1.01")).quantize(Decimal("0.01")))
        [r] = (await request(nc, a, parent(a, "twap", "0.004", slices=2, duration_s=5, route=(b,)))).results
        assert not r.ok and "only a liquidity parent" in r.reason
        pid = await send_parent(nc, a, parent(a, "liquidity", "0.004", price=limit, route=(b,), intent="split"))
        st = await finished(d, pid, status=ParentStatus.DONE, timeout=90)
        assert Decimal(st.filled_qty) == Decimal("0.004")
        on_a, on_b = [ch for ch in st.children if not ch.account], [ch for ch in st.children if ch.account == b]
        assert on_a and on_b  # children on both accounts
        for name, mine in ((rich, on_a), (poor, on_b)):  # what its USDT buys at the limit, less the fee: never more
            cap = funds[name] * Decimal("0.999") / Decimal(limit)
            assert sum(Decimal(ch.qty) for ch in mine) <= cap, (name, mine, cap)
        first_a, first_b = Decimal(on_a[0].qty), Decimal(on_b[0].qty)
        assert abs(first_a - 2 * first_b) <= Decimal("0.00002"), (first_a, first_b)  # 2 : 1, to the lot
        # the two accounts' first children were in flight together, not one after the other
        assert flights.peak["place"] == 2, flights.trace
        for acct, mine in ((a, on_a), (b, on_b)):
            execution = next(iter(d.sessions[acct].links.values())).clients.execution
            for ch in mine:  # each at the venue under its own account, with what the parent counted
                order = await execution.query_order("BTC/USDT", ch.client_order_id)
                assert Decimal(order.filled_qty) == Decimal(ch.filled_qty), (ch, order)
            [fills] = await until(lambda acct=acct, mine=mine: _fills(nc, acct, mine), what=f"fills of {acct}")
            assert sum(Decimal(f.qty) for f in fills) == sum(Decimal(ch.filled_qty) for ch in mine)
    finally:
        await d.stop()


async def _fills(nc, account, children):
    fills = await child_fills(nc, account, {ch.client_order_id for ch in children})
    want = sum((Decimal(ch.filled_qty) for ch in children), Decimal(0))
    return [fills] if sum((Decimal(f.qty) for f in fills), Decimal(0)) >= want else None
