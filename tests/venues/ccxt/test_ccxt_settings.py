"""The ccxt connector's USD-M reads against a real local exchange: each symbol's leverage and margin type (ccxt's
``fetchLeverages``), which the daemon reads before enforcing its targets, and the funding income (ccxt's
``fetchFundingHistory``) equal to the exchange's own ledger."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from kernels.state import KernelState
from localex.engine.exchange import FUNDING_INTERVAL_NS
from localex.server import wire
from localex.server.app import server_state
from oms.model import MarginType, Market, OrderStatus, OrderType, PlaceOrder, PositionMode, Side
from oms.venues import Unsupported
from oms.venues.factory import AccountClients
from stream.futures_settings import FuturesSettings, FuturesTarget
from stream.metrics import DaemonMetrics
from tests.localex.conftest import LocalServer
from tests.venues.ccxt.conftest import Venue

PERP = "BTC/USDT:USDT"
ACCOUNT = "binance/sub_futures_trend"


@pytest.fixture
async def venue(server: LocalServer, ccxt_config) -> Venue:
    v = Venue(server, ccxt_config)
    yield v
    await v.close()


def on_server(server: LocalServer, fn):
    """Run ``fn`` on the local exchange's own loop (its engine is not thread-safe) and return its result."""

    async def run():
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), server.loop).result(10)


async def test_symbol_settings_read_what_was_set(venue: Venue) -> None:
    venue.fund("sub_futures_trend", "usdm", USDT="10000")
    perp: AccountClients = await venue.clients("sub_futures_trend", "usdm")
    ex = perp.execution
    assert (await ex.set_leverage(PERP, 7)).leverage == 7
    await ex.set_margin_type(PERP, MarginType.ISOLATED)
    (row,) = await ex.symbol_settings(PERP)
    assert (row.symbol, row.leverage, row.margin_type) == (PERP, 7, MarginType.ISOLATED)
    assert row.max_notional and float(row.max_notional) > 0
    every = {s.symbol: s for s in await ex.symbol_settings()}
    assert every[PERP] == row and len(every) > 1
    assert all(s.margin_type is MarginType.CROSS for sym, s in every.items() if sym != PERP)
    await ex.set_margin_type(PERP, MarginType.CROSS)
    assert (await ex.symbol_settings(PERP))[0].margin_type is MarginType.CROSS
    venue.fund("main", "spot", USDT="100")
    spot = await venue.clients("main", "spot")
    with pytest.raises(Unsupported, match="USD-M"):
        await spot.execution.symbol_settings()
    assert await spot.execution.funding_payments(0) == []


async def test_funding_payments_equal_the_exchanges_income_history(server: LocalServer, venue: Venue) -> None:
    acct_id, _, _ = venue.fund("sub_futures_trend", "usdm", USDT="100000")
    perp = await venue.clients("sub_futures_trend", "usdm")
    ex = perp.execution
    since = time.time_ns()
    assert await ex.funding_payments(since) == []
    buy = PlaceOrder(account=ACCOUNT, symbol=PERP, side=Side.BUY, order_type=OrderType.MARKET, qty="0.05",
                     intent=str(since)).with_client_order_id()  # fmt: skip
    assert (await ex.place(buy)).status is OrderStatus.FILLED
    engine = server_state(server.app).exchange

    def charge_two():  # two funding times: the exchange's clock is not moved, its schedule is
        return engine.settle_funding(engine.next_funding_ns + FUNDING_INTERVAL_NS)

    assert on_server(server, charge_two) == 2
    rows = on_server(server, lambda: engine.income(acct_id, None, "FUNDING_FEE"))
    assert len(rows) == 2 and all(r.amount < 0 for r in rows)  # a long pays a positive rate
    got = await ex.funding_payments(since)
    assert [(f.symbol, f.amount, f.asset, f.event_ns // 10**6, f.venue_id) for f in got] == [
        (PERP, wire.fmt_signed(r.amount), r.asset, r.time_ns // 10**6, str(r.tran_id)) for r in rows
    ]
    assert all(f.account == ACCOUNT for f in got)
    assert await ex.funding_payments(rows[0].time_ns + 10**6) == got[1:]  # from a time on
    assert await ex.funding_payments(since, until_ns=rows[0].time_ns) == got[:1]


async def test_the_daemons_enforcement_reads_ccxt_settings_and_sends_nothing_twice(venue: Venue) -> None:
    """stream.futures_settings over a ccxt account: a second start against the same account changes nothing
    (before the settings read, the ccxt connector re-sent its targets at every start)."""
    venue.fund("sub_futures_trend", "usdm", USDT="10000")
    clients = await venue.clients("sub_futures_trend", "usdm")
    session = SimpleNamespace(name=ACCOUNT, number=0, links={Market.USDM: SimpleNamespace(clients=clients)})
    target = FuturesTarget(PositionMode.ONE_WAY, MarginType.ISOLATED, 4, (PERP,))
    events: list = []

    async def emit(ev) -> None:
        events.append(ev)

    settings = FuturesSettings({ACCOUNT: target}, {ACCOUNT: session}, KernelState(n_accounts=1, n_instruments=1),
                               DaemonMetrics(), emit, lambda s: "active")  # fmt: skip
    first = await settings.enforce(session, "start")
    assert {(o.setting, o.symbol, o.want, o.had) for o in first.applied} == {
        ("margin_type", PERP, "isolated", "cross"),
        ("leverage", PERP, "4", "20"),
    } and first.refused == ()
    again = await settings.enforce(session, "restart")
    assert again.applied == () and again.refused == ()
    (row,) = await clients.execution.symbol_settings(PERP)
    assert (row.leverage, row.margin_type) == (4, MarginType.ISOLATED)
    assert [e.action for e in events] == ["futures_settings_applied"]
