"""A take-profit ladder on a market the test makes itself: the local exchange without its price replay, so the
book holds only the orders placed here and the exit levels are reached by a quote the test posts, not by
waiting for the replayed price to drift up (it may drift down for minutes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from localex import clients
from localex.server.state import ServerConfig
from oms.model import OrderStatus, OrderType, PlaceOrder, Side
from oms.services import free_port
from tests.localex.conftest import LocalServer, start_server
from tests.stream.conftest import place, request, unique, until
from tests.stream.emulation_kit import child_fills
from tests.stream.test_emulation_controls import _execution, _managed


class Quotes:
    """Limit orders of another participant (python-binance, outside the daemon); ``clear`` cancels what rests,
    so the next test of the module starts on an empty book."""

    def __init__(self, bench, name: str):
        _, key, secret = bench.accounts[name]
        self.client = clients.binance_sync(bench.exchange.url, key, secret)
        self.ids: list[int] = []

    def __call__(self, side: str, qty: str, price: str) -> None:
        r = self.client.create_order(symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC", quantity=qty,
                                     price=price)  # fmt: skip
        self.ids.append(r["orderId"])

    def clear(self) -> None:
        for oid in self.ids:
            if self.client.get_order(symbol="BTCUSDT", orderId=oid)["status"] in ("NEW", "PARTIALLY_FILLED"):
                self.client.cancel_order(symbol="BTCUSDT", orderId=oid)


async def _fills(nc, acct: str, coids: set[str], n: int = 2):
    fills = await child_fills(nc, acct, coids)
    return fills if len(fills) == n else None


@pytest.fixture(scope="module")
def exchange() -> Iterator[LocalServer]:
    yield from start_server(ServerConfig(port=free_port(), replay=False))


async def test_a_take_profit_ladder_exits_in_parts(bench, nc):
    name, maker = unique("ladder"), unique("maker")
    ladder = {"take_profit": [{"at_pct": "0.01", "fraction": "0.5"}, {"at_pct": "0.02", "fraction": "0.5"}]}
    bench.write([name, maker], risk_extra={"exits": {"accounts": {"binance": {name: ladder}}}})
    acct = bench.account(name)
    quote = Quotes(bench, maker)  # another participant, not the daemon's

    quote("SELL", "0.004", "7000.00")  # the entry's liquidity, and a bid: the daemon starts with a mid (its mark)
    quote("BUY", "0.001", "6990.00")
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        [res] = (await request(nc, acct, place(acct, "0.004", None, intent="entry"))).results
        assert res.ok, res
        m = await until(lambda: _managed(d, acct), what="the managed position")
        assert Decimal(m.st.entry) == Decimal("7000") and Decimal(m.st.qty) == Decimal("0.004")
        # the market moves up 0.03% (mid 7002.10): both levels are reached, each exit sells into the 7002 bid
        await asyncio.to_thread(quote, "BUY", "0.01", "7002.00")
        await asyncio.to_thread(quote, "SELL", "0.01", "7002.20")
        await until(lambda: Decimal(m.st.qty) == 0, timeout=60, what="both take-profit levels")
        assert m.st.levels_done == 2 and len(m.st.exits) == 2
        sold = []
        for coid in m.st.exits:
            order = await _execution(d, acct).query_order("BTC/USDT", coid)
            assert order.status is OrderStatus.FILLED
            sold.append(Decimal(order.filled_qty))
        assert sold == [Decimal("0.002"), Decimal("0.002")]
        fills = await until(lambda: _fills(nc, acct, set(m.st.exits)), what="the exits' fills in TRADES")
        assert [(Decimal(f.price), Decimal(f.qty)) for f in fills] == [(Decimal("7002"), Decimal("0.002"))] * 2
    finally:
        await d.stop()
        await asyncio.to_thread(quote.clear)


async def test_an_entry_filled_while_the_daemon_was_down_is_managed_after_the_restart(bench, nc):
    """The entry rests at the venue, the daemon stops (leaving it open), the market fills it; the restarted
    daemon's reconciliation finds the fill, and the managed exits take it: the position is managed from its
    entry and the ladder exits it."""
    name, maker = unique("down"), unique("mkr")
    ladder = {"take_profit": [{"at_pct": "0.01", "fraction": "0.5"}, {"at_pct": "0.02", "fraction": "0.5"}]}
    bench.write([name, maker], risk_extra={"exits": {"accounts": {"binance": {name: ladder}}}})
    acct = bench.account(name)
    quote = Quotes(bench, maker)

    quote("SELL", "0.01", "7100.00")
    quote("BUY", "0.001", "6900.00")
    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        entry = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.004",
                           price="7000.00", intent="entry-rests")  # fmt: skip
        [res] = (await request(nc, acct, entry)).results
        assert res.ok and res.status is OrderStatus.NEW, res
    finally:
        await d.stop()  # on_shutdown: leave (the bench's default): the entry stays open at the venue
    await asyncio.to_thread(quote, "SELL", "0.004", "7000.00")  # the market fills it while the daemon is down

    d = bench.daemon(accounts=[acct])
    await d.start()
    try:
        m = await until(lambda: _managed(d, acct), what="the managed position from the fill found at restart")
        assert Decimal(m.st.entry) == Decimal("7000") and Decimal(m.st.qty) == Decimal("0.004")
        # its slippage reference (the best ask, 7100, when it was sent) came back from the live state
        [f] = await until(lambda: _fills(nc, acct, {res.client_order_id}, 1), what="the entry's fill in TRADES")
        assert (Decimal(f.price), Decimal(f.reference_price)) == (Decimal("7000"), Decimal("7100")), f
        assert Decimal(f.slippage_bps) == Decimal("-140.85"), f  # (7000 - 7100) / 7100, better than the ask
        await asyncio.to_thread(quote, "BUY", "0.01", "7002.00")
        await asyncio.to_thread(quote, "SELL", "0.01", "7002.20")
        await until(lambda: Decimal(m.st.qty) == 0, timeout=60, what="both take-profit levels")
        fills = await until(lambda: _fills(nc, acct, set(m.st.exits)), what="the exits' fills in TRADES")
        assert [(Decimal(f.price), Decimal(f.qty)) for f in fills] == [(Decimal("7002"), Decimal("0.002"))] * 2
    finally:
        await d.stop()
        await asyncio.to_thread(quote.clear)
