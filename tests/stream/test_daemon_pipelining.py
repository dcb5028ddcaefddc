"""A hosted strategy's intents of one callback go out together (``OrderRouter.execute(..., pipelined=True)``):
the cancels of a cancel-all are in flight at once, the new quotes go once the cancel-all was answered, and the
bid and the ask are in flight at once. The default path (a NATS request) still sends one after the other's answer
(``test_daemon_orders``). Against the real local exchange; the execution client's calls are only counted on their
way through."""

from __future__ import annotations

from decimal import Decimal

from oms.model import CancelAll, OrderStatus, Side
from tests.stream.conftest import place, unique
from tests.stream.flights import Flights


async def test_a_strategys_cancel_all_and_quotes_are_pipelined_and_a_request_is_not(bench):
    name = unique("pipe")
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        ticker = bench.ticker()
        below = lambda k: str((ticker * Decimal(k)).quantize(Decimal("0.01")))  # noqa: E731
        execution = next(iter(d.sessions[acct].links.values())).clients.execution
        flights = Flights(execution)

        def quotes(n: int):
            return [place(acct, "0.001", below("0.98"), intent=f"bid{n}"),
                    place(acct, "0.001", below("1.02"), side=Side.SELL, intent=f"ask{n}")]  # fmt: skip

        # the default path: the ask goes after the bid's answer
        first = await d.router.execute(quotes(1))
        assert [r.status for r in first] == [OrderStatus.NEW, OrderStatus.NEW], first
        assert flights.peak["place"] == 1 and flights.trace == ["place>", "place<", "place>", "place<"]

        flights.reset()
        second = await d.router.execute([CancelAll(account=acct, symbol="BTC/USDT"), *quotes(2)], pipelined=True)
        assert [r.ok for r in second] == [True, True, True], second
        assert [r.status for r in second[1:]] == [OrderStatus.NEW, OrderStatus.NEW]
        assert flights.peak == {"cancel": 2, "place": 2}, flights.trace
        # both cancels answered before the first new quote went out
        assert flights.trace[:4] == ["cancel>", "cancel>", "cancel<", "cancel<"], flights.trace
        assert flights.trace[4:6] == ["place>", "place>"], flights.trace
        gw = d.gateway
        assert [gw.orders.get(r.client_order_id).status for r in first] == [OrderStatus.CANCELED] * 2
        resting = await execution.open_orders("BTC/USDT")
        assert {o.client_order_id for o in resting} == {r.client_order_id for r in second[1:]}
    finally:
        await d.stop()
