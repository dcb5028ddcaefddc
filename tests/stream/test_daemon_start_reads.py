"""What a daemon's start reads from the venue, against the real local exchange and nats-server: each read once.

The start's reconciliation reads the balances and the open orders of the daemon's symbols; the user stream no
longer reads every open order first (Spot weight 80) and the daemon no longer reads the balances before
subscribing (20). The orders an earlier process placed must still be followed: the connector learns them from
the reconciliation's read, so their events (here a cancel from elsewhere) reach the daemon."""

from __future__ import annotations

from decimal import Decimal

from kernels.state import A_CASH, A_DAY_START_EQUITY
from localex import clients
from oms.model import Market, OrderStatus
from oms.model.units import money_to_units
from oms.venues.binance.config import BinanceSettings
from tests.stream.conftest import unique, until

ALL_SYMBOL_OPEN_ORDERS = 80  # Binance Spot's weight for the open orders of every symbol


async def test_a_start_reads_each_thing_once_and_still_follows_orders_placed_before_it(bench):
    name = unique("start")
    bench.write([name])
    acct = bench.account(name)
    _, key, secret = bench.accounts[name]
    other = clients.binance_sync(bench.exchange.url, key, secret)  # the same account from another process
    price = str((bench.ticker() * Decimal("0.95")).quantize(Decimal("0.01")))
    other.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                       price=price, newClientOrderId="manual-before-start")  # fmt: skip
    d = bench.daemon()
    await d.start()
    try:
        session = d.sessions[acct]
        assert session.trading, session.refused
        rec = d.gateway.orders.get("manual-before-start")
        assert rec is not None and rec.status is OrderStatus.NEW  # adopted with its own id
        link = session.links[Market.SPOT]
        spent = link.clients.context.limiter.spent
        # connection 3, subscription 2, balances 20, trades 20, open orders of the one symbol 6 (and the
        # market's own reads elsewhere): far below the all-symbol read alone
        assert 0 < spent < ALL_SYMBOL_OPEN_ORDERS, f"the start cost {spent} weight"
        # the day's starting equity is the whole equity reconciled (cash and the 2 BTC funded), not the cash a
        # read before subscribing used to put in first (which hid a fall of the BTC from the loss checks)
        state, a = d.gateway.state, session.number
        held = money_to_units(str(2 * bench.ticker()))
        start_minus_cash = int(state.acc[A_DAY_START_EQUITY, a]) - int(state.acc[A_CASH, a])
        assert abs(start_minus_cash - held) < held // 10, (start_minus_cash, held)
        other.cancel_order(symbol="BTCUSDT", origClientOrderId="manual-before-start")
        await until(lambda: rec.status is OrderStatus.CANCELED, what="the cancel from elsewhere in the daemon")
        assert not link.clients.execution.session.tracker.dropped, "an event of the adopted order was dropped"
    finally:
        await d.stop()


def test_the_start_read_of_every_open_order_is_an_option_spelt_as_a_flag():
    assert BinanceSettings.from_options({}).open_orders_at_start is True
    assert BinanceSettings.from_options({"open_orders_at_start": "false"}).open_orders_at_start is False
    assert BinanceSettings.from_options({"open_orders_at_start": False}).open_orders_at_start is False
    try:
        BinanceSettings.from_options({"open_orders_at_start": "sometimes"})
    except ValueError as exc:
        assert "open_orders_at_start" in str(exc) and "sometimes" in str(exc)
    else:
        raise AssertionError("an unreadable flag was accepted")
