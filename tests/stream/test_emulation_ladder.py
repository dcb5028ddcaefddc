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
from oms.model import OrderStatus
from oms.services import free_port
from tests.localex.conftest import LocalServer, start_server
from tests.stream.conftest import place, request, unique, until
from tests.stream.emulation_kit import child_fills
from tests.stream.test_emulation_controls import _execution, _managed


async def _fills(nc, acct: str, coids: set[str]):
    fills = await child_fills(nc, acct, coids)
    return fills if len(fills) == 2 else None


@pytest.fixture(scope="module")
def exchange() -> Iterator[LocalServer]:
    yield from start_server(ServerConfig(port=free_port(), replay=False))


async def test_a_take_profit_ladder_exits_in_parts(bench, nc):
    name, maker = unique("ladder"), unique("maker")
    ladder = {"take_profit": [{"at_pct": "0.01", "fraction": "0.5"}, {"at_pct": "0.02", "fraction": "0.5"}]}
    bench.write([name, maker], risk_extra={"exits": {"accounts": {"binance": {name: ladder}}}})
    acct = bench.account(name)
    _, key, secret = bench.accounts[maker]
    other = clients.binance_sync(bench.exchange.url, key, secret)  # another participant, not the daemon's

    def quote(side: str, qty: str, price: str) -> None:
        other.create_order(symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price)

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
