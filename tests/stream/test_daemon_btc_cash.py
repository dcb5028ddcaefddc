"""An account whose cash is BTC (``cash_assets: [BTC]`` in configs/accounts.yaml) trading ETH/BTC through the
daemon, against the local exchange and a real nats-server: the kernel's cash is the exchange's BTC wallet in
1e-12 BTC, live fills move it by their exact notional (the exchange settles each fill's BTC truncated to 1e-8,
localex/engine/CONTRACT.md), and after a restart reconciliation makes it the exchange's BTC balance to the unit,
the ETH/BTC position the ETH balance, and publishes nothing new."""

from __future__ import annotations

from decimal import Decimal

from kernels.state import A_CASH, P_QTY
from oms.model import OrderStatus, OrderType, PlaceOrder, Side
from oms.model.units import money_to_units
from tests.stream.conftest import request, unique, until

PICO = 10**12  # 1e-12 BTC: the money unit of BTC cash (oms.model.units.QUOTE_MONEY_DECIMALS)


def btc_wallet(bench, name: str) -> tuple[Decimal, Decimal]:
    account_id = bench.accounts[name][0]
    rows = bench.exchange.admin("GET", f"/admin/v1/accounts/{account_id}/balances?wallet=SPOT")
    return {r["asset"]: (Decimal(r["free"]), Decimal(r["locked"])) for r in rows}  # type: ignore[union-attr]


def kernel(d, acct: str) -> tuple[int, int]:
    """(cash in 1e-12 BTC, ETH/BTC position in quantity units) of ``acct`` in the daemon's kernel state."""
    a = d.sessions[acct].number
    i, _ = d.wiring.instruments.lookup("binance", "ETH/BTC")
    return int(d.wiring.state.acc[A_CASH, a]), int(d.wiring.state.pos[P_QTY, a, i, 0])


async def stored(nc, name: str) -> tuple[int, int, int]:
    js = nc.jetstream()
    out = []
    for stream, subject in (("ORDERS", "orders"), ("TRADES", "trades"), ("BALANCES", "balances")):
        info = await js.stream_info(stream, subjects_filter=f"{subject}.binance.{name}.>")
        out.append(sum((info.state.subjects or {}).values()))
    return tuple(out)  # type: ignore[return-value]


def eth_btc(bench) -> Decimal:
    return bench.ticker("ETHBTC")


async def test_btc_cash_trades_eth_btc_and_a_restart_reconciles_it_to_the_unit(bench, nc):
    name = unique("btccash")
    bench.write([name], symbols=("BTC/USDT", "ETH/BTC"), cash={name: ["BTC"]})
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        wallet = btc_wallet(bench, name)
        assert kernel(d, acct) == (money_to_units("2", decimals=12), 0)  # 2 BTC, the USDT not counted
        assert wallet["BTC"] == (Decimal(2), 0)

        buy = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.MARKET, qty="0.0537",
                         intent="take")  # fmt: skip
        [res] = (await request(nc, acct, buy)).results
        assert res.ok, res
        price = (eth_btc(bench) * Decimal("0.97")).quantize(Decimal("0.00001"))
        rest = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.0037",
                          price=str(price), intent="rest")  # fmt: skip
        [rested] = (await request(nc, acct, rest)).results
        assert rested.ok and rested.status is OrderStatus.NEW, rested
        # the taker's fill(s) applied to the kernel: the position is the bought quantity (the 0.1% fee is ETH)
        await until(lambda: kernel(d, acct)[1] > 0, what="the ETH/BTC fill in the kernel")
        execution = d.sessions[acct].links[next(iter(d.sessions[acct].links))].clients.execution
        fills = await until(lambda: execution.fills("ETH/BTC", 0), what="the fills on the venue")
        exact = sum(Decimal(f.price) * Decimal(f.qty) for f in fills)
        assert sum(Decimal(f.qty) for f in fills) == Decimal("0.0537")
        wallet = btc_wallet(bench, name)
        free, locked = wallet["BTC"]
        venue_btc = free + locked
        # the exchange took each fill's BTC truncated to 1e-8; the kernel took the exact notional
        assert 2 - exact <= venue_btc < 2 - exact + Decimal("1e-8") * len(fills)
        assert locked == (Decimal("0.0037") * price).quantize(Decimal("1e-8"), rounding="ROUND_UP")
        # the platform's live view: the exact notional and the ETH commission valued in BTC at the fill's price
        # (to the 1e-12 unit), where the exchange's wallet holds the truncated notional and the fee in ETH
        fee_btc = sum(Decimal(f.commission) * Decimal(f.price) for f in fills)
        live_cash, _ = kernel(d, acct)
        assert abs(Decimal(live_cash) / PICO - (2 - exact - fee_btc)) <= Decimal("1e-12") * len(fills)
        assert Decimal(live_cash) / PICO != venue_btc
    finally:
        await d.stop()

    before = await stored(nc, name)
    assert before[1] == len(fills)  # one trade event per fill
    again = bench.daemon()  # a restart: a new kernel, reconciled from the exchange
    await again.start()
    try:
        assert again.sessions[acct].trading, again.sessions[acct].refused
        wallet = btc_wallet(bench, name)
        cash, qty = kernel(again, acct)
        free, locked = wallet["BTC"]
        assert cash == money_to_units(str(free + locked), decimals=12)  # the exchange's BTC, to the 1e-12 unit
        eth_free, eth_locked = wallet["ETH"]
        _, ins = again.wiring.instruments.lookup("binance", "ETH/BTC")
        assert eth_free + eth_locked == Decimal("0.0537") * Decimal("0.999")  # the fee was ETH
        assert qty == ins.qty("0.0536")  # the ETH balance, its dust below the lot dropped
        assert await stored(nc, name) == before  # nothing new published
        rec = again.gateway.orders.get(rested.client_order_id)
        assert rec is not None and rec.status is OrderStatus.NEW  # the resting order adopted, not re-published
    finally:
        await again.stop()
