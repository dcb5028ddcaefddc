"""Funding payments through the daemon, against a local exchange whose clock the test moves past a funding time:
the exchange charges the open USD-M position and sends ``ACCOUNT_UPDATE`` (reason ``FUNDING_FEE``); the daemon
reads the payment from the income history, books it into the positions kernel (the account's and the
symbol's funding totals), publishes it on ``funding.binance.{account}.usdm.BTC-USDT``, writes it to the
funding log (DuckDB's ``funding`` view and the PnL report's ``funding`` column) and shows it in the account's
live view. A restart and a reconnect's catch-up see the same payment again and book it once; a payment made
while the daemon was down is published and logged at its restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import ROUND_UP, Decimal

import pytest
import yaml

from kernels.state import A_FUNDING, P_FUNDING
from localex import clients
from localex.engine import Exchange
from localex.engine.exchange import FUNDING_INTERVAL_NS
from localex.server.app import server_state
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive import views
from oms.archive.records import Funding
from oms.model import BalanceEvent, Market, OrderStatus, OrderType, PlaceOrder, Side, codec
from oms.model.units import money_to_units
from oms.services import free_port
from tests.localex.conftest import LocalServer, start_server
from tests.stream.conftest import request, unique, until
from tests.stream.test_daemon_orders import kv

PERP = "BTC/USDT:USDT"
LEAD_NS = 600 * 10**9  # the exchange's clock starts ten minutes before a funding time


class ShiftedClock:
    """Real time plus an offset the test moves (ns); request signing still checks real time."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def __call__(self) -> int:
        return time.time_ns() + self.offset


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    now = time.time_ns()
    boundary = now - now % FUNDING_INTERVAL_NS + FUNDING_INTERVAL_NS
    return ShiftedClock(boundary - LEAD_NS - now)


@pytest.fixture(scope="module")
def exchange(clock) -> Iterator[LocalServer]:
    """This module's local exchange (it overrides the bench's): the engine runs on the test's clock."""
    limits = RateLimitConfig(spot_weight_per_minute=100_000, futures_weight_per_minute=100_000,
                             spot_orders_per_10s=10_000, futures_orders_per_10s=10_000,
                             futures_orders_per_minute=100_000)  # fmt: skip
    ex = Exchange(clock=clock, seed=0)
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, speed=60.0, replay_interval_s=0.1), ex)


def engine(bench) -> Exchange:
    return server_state(bench.exchange.app).exchange


def pass_funding_time(bench, clock: ShiftedClock) -> int:
    """Move the exchange's clock just past its next funding time; wait until it charged it (ns)."""
    ex = engine(bench)
    t = ex.next_funding_ns
    clock.offset += t + 1_000_000 - clock()
    deadline = time.monotonic() + 10
    while ex.next_funding_ns <= t:
        assert time.monotonic() < deadline, "the local exchange did not charge the funding time"
        time.sleep(0.01)
    return t


async def funding_events(nc, name: str) -> list[Funding]:
    js = nc.jetstream()
    sub = await js.subscribe(f"funding.binance.{name}.>", ordered_consumer=True)
    out = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except Exception:
                break
            out.append(codec.decode(msg.data, Funding))
    finally:
        await sub.unsubscribe()
    return out


def futures_config(bench, name: str) -> None:
    bench.write([name], usdm=(PERP,))


async def test_funding_is_booked_published_logged_and_shown_once(bench, nc, clock):
    name = unique("fund")
    futures_config(bench, name)
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        mark = Decimal(bench.exchange.resting_futures_price(below=0))
        qty = str((Decimal(300) / mark).quantize(Decimal("0.001"), ROUND_UP))  # above the 100 USDT minimum
        buy = PlaceOrder(account=acct, symbol=PERP, side=Side.BUY, order_type=OrderType.MARKET, qty=qty,
                         intent="funding-long")  # fmt: skip
        [res] = (await request(nc, acct, buy)).results
        assert res.ok, res
        await until(lambda: d.gateway.orders.get(res.client_order_id).status is OrderStatus.FILLED, what="the fill")

        t = await asyncio.to_thread(pass_funding_time, bench, clock)
        [ev] = await until(lambda: funding_events(nc, name), what="the funding event in JetStream")
        _, key, secret = bench.accounts[name]
        venue = await asyncio.to_thread(
            clients.binance_sync(bench.exchange.url, key, secret).futures_income_history,
            incomeType="FUNDING_FEE", startTime=t // 1_000_000 - 1000,
        )  # fmt: skip
        assert len(venue) == 1 and venue[0]["symbol"] == "BTCUSDT", venue
        paid = Decimal(venue[0]["income"])
        assert paid < 0  # a long pays a positive rate
        assert ev.account == acct and ev.symbol == PERP and Decimal(ev.amount) == paid and ev.event_ns == t
        assert ev.venue_id == str(venue[0]["tranId"])

        a = d.sessions[acct].number
        assert int(d.wiring.state.acc[A_FUNDING, a]) == money_to_units(str(paid))
        pnl = d._account_view(acct)["pnl"]
        assert Decimal(pnl.funding) == paid and {k: Decimal(v) for k, v in pnl.funding_by_symbol.items()} == {
            PERP: paid
        }
        await until(lambda: _live_funding(nc, acct, paid), what="the funding in the live state")

        con = views.connect(bench.data_dir)
        rows = con.execute("SELECT symbol, amount, event_ns FROM funding WHERE account = ?", [acct]).fetchall()
        assert [(s, Decimal(x), n) for s, x, n in rows] == [(PERP, paid, t)]
        [(daily,)] = con.execute("SELECT sum(funding) FROM pnl_daily WHERE account = ?", [acct]).fetchall()
        assert Decimal(daily) == paid

        # a reconnect's catch-up reads the same payment again: booked once
        execution = d.sessions[acct].links[Market.USDM].clients.execution
        assert await d.funding.catch_up(acct, a, execution, "reconnect") == 0
        assert int(d.wiring.state.acc[A_FUNDING, a]) == money_to_units(str(paid))
        # the user stream's FUNDING_FEE update replayed (a reconnect re-delivers it): booked once
        session = d.sessions[acct]
        replayed = BalanceEvent(account=acct, market=Market.USDM, balances=(), reason="FUNDING_FEE", event_ns=t)
        await d._on_user_event(session, Market.USDM, replayed)
        await d.funding.drain()
        assert d.funding.counts["booked"] == 1 and d.funding.counts["update_without_payment"] == 0
        assert len(await funding_events(nc, name)) == 1
        metrics = d.metrics.render().decode()
        assert 'oms_funding_payments{outcome="booked"} 1.0' in metrics
        assert 'oms_funding_payments{outcome="duplicate"}' in metrics
    finally:
        await d.stop()

    # the daemon down through the next funding time; at the restart JetStream holds the first payment (not
    # published or logged again) and the one it missed is published and logged once
    t2 = await asyncio.to_thread(pass_funding_time, bench, clock)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        await until(lambda: d.funding.counts["published"] == 1, what="the missed payment published")
        assert {(PERP, t), (PERP, t2)} <= {key[:2] for key in d.funding.seen[acct]}  # (symbol, time, venue id)
        evs = await funding_events(nc, name)
        assert [e.event_ns for e in evs] == [t, t2], evs
        con = views.connect(bench.data_dir)
        rows = con.execute("SELECT event_ns FROM funding WHERE account = ? ORDER BY event_ns", [acct]).fetchall()
        assert rows == [(t,), (t2,)]
        # history before the restart is in the venue's snapshot (cash): not booked into this run's kernel again
        assert int(d.wiring.state.acc[A_FUNDING, d.sessions[acct].number]) == 0
    finally:
        await d.stop()


async def _live_funding(nc, acct: str, paid: Decimal) -> bool:
    """The live state's PnL of ``acct`` (the KV bucket ``oms stream status`` reads) shows the payment."""
    raw = await kv(nc, acct, "pnl")
    doc = json.loads(raw) if raw else {}
    return Decimal(doc.get("funding", "0")) == paid and doc.get("funding_by_symbol", {}).get(PERP) is not None


async def test_funding_on_a_symbol_the_daemon_does_not_trade_is_published_and_logged(bench, nc, clock):
    """A position opened by hand on ETHUSDT (the daemon trades only the BTC perpetual of this account): its
    funding payment moved the wallet, so it is published and logged (the archive and the PnL report hold it),
    counted ``not_traded`` and kept out of the kernel's totals, which hold only what the daemon trades."""
    name = unique("fundx")
    futures_config(bench, name)
    acct = bench.account(name)
    _, key, secret = bench.accounts[name]
    by_hand = clients.binance_sync(bench.exchange.url, key, secret)
    mark = Decimal(bench.exchange.resting_futures_price("ETHUSDT", below=0))
    qty = str((Decimal(300) / mark).quantize(Decimal("0.001"), ROUND_UP))
    await asyncio.to_thread(by_hand.futures_create_order, symbol="ETHUSDT", side="BUY", type="MARKET", quantity=qty)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        t = await asyncio.to_thread(pass_funding_time, bench, clock)
        [ev] = await until(lambda: funding_events(nc, name), what="the funding event in JetStream")
        venue = await asyncio.to_thread(by_hand.futures_income_history, incomeType="FUNDING_FEE",
                                        startTime=t // 1_000_000 - 1000)  # fmt: skip
        assert [(r["symbol"], Decimal(r["income"])) for r in venue] == [("ETHUSDT", Decimal(ev.amount))]
        assert ev.symbol == "ETH/USDT:USDT" and ev.event_ns == t and Decimal(ev.amount) != 0
        assert d.funding.counts["not_traded"] == 1 and d.funding.counts["bad_payment"] == 0
        assert int(d.wiring.state.acc[A_FUNDING, d.sessions[acct].number]) == 0
        con = views.connect(bench.data_dir)
        rows = con.execute("SELECT symbol, amount FROM funding WHERE account = ?", [acct]).fetchall()
        assert rows == [("ETH/USDT:USDT", Decimal(ev.amount))]
    finally:
        await d.stop()


async def test_hedge_mode_pays_both_sides_at_one_time_and_each_is_booked_to_its_side(bench, nc, clock):
    """Hedge mode, a long and a short of half its size open on the perpetual: the venue writes one payment per
    position at the funding time (naming neither side). Both are published, logged and booked, each to its
    side by size (before, the second was taken for a duplicate of the first and lost)."""
    name = unique("fundh")
    futures_config(bench, name)
    doc = yaml.safe_load((bench.config_dir / "accounts.yaml").read_text())
    doc["accounts"]["binance"][name].update(spot_enabled=False, position_mode="hedge")
    (bench.config_dir / "accounts.yaml").write_text(yaml.safe_dump(doc))
    acct = bench.account(name)
    _, key, secret = bench.accounts[name]
    by_hand = clients.binance_sync(bench.exchange.url, key, secret)
    await asyncio.to_thread(by_hand.futures_change_position_mode, dualSidePosition="true")
    mark = Decimal(bench.exchange.resting_futures_price(below=0))
    small = (Decimal(300) / mark).quantize(Decimal("0.001"), ROUND_UP)
    for side, position_side, qty in (("BUY", "LONG", 2 * small), ("SELL", "SHORT", small)):
        await asyncio.to_thread(by_hand.futures_create_order, symbol="BTCUSDT", side=side, type="MARKET",
                                quantity=str(qty), positionSide=position_side)  # fmt: skip
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        t = await asyncio.to_thread(pass_funding_time, bench, clock)
        evs = await until(lambda: _n(funding_events(nc, name), 2), what="both payments in JetStream")
        venue = await asyncio.to_thread(by_hand.futures_income_history, incomeType="FUNDING_FEE",
                                        startTime=t // 1_000_000 - 1000)  # fmt: skip
        assert len(venue) == 2 and {r["symbol"] for r in venue} == {"BTCUSDT"}, venue
        assert sorted(Decimal(e.amount) for e in evs) == sorted(Decimal(r["income"]) for r in venue)
        assert {e.venue_id for e in evs} == {str(r["tranId"]) for r in venue} and {e.event_ns for e in evs} == {t}
        long_paid, short_paid = sorted((Decimal(e.amount) for e in evs), key=abs, reverse=True)  # long: twice
        a = d.sessions[acct].number
        i, _ = d.wiring.instruments.lookup("binance", PERP)
        pos = d.wiring.state.pos
        assert int(pos[P_FUNDING, a, i, 0]) == money_to_units(str(long_paid)), (long_paid, short_paid)
        assert int(pos[P_FUNDING, a, i, 1]) == money_to_units(str(short_paid))
        assert int(d.wiring.state.acc[A_FUNDING, a]) == money_to_units(str(long_paid + short_paid))
        assert d.funding.counts["booked"] == 2 and d.funding.counts["side_assumed"] == 0
        con = views.connect(bench.data_dir)
        rows = con.execute("SELECT amount FROM funding WHERE account = ?", [acct]).fetchall()
        assert sorted(Decimal(x) for (x,) in rows) == sorted((long_paid, short_paid))
    finally:
        await d.stop()


async def _n(got, n: int):
    out = await got
    return out if len(out) >= n else None
