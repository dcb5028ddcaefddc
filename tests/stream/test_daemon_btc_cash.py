"""An account whose cash is BTC (``cash_assets: [BTC]`` in configs/accounts.yaml) trading ETH/BTC through the
daemon, against the local exchange and a real nats-server. The kernels count money in 1e-8 USDT: the account's
kernel cash is the BTC it holds valued at the BTC/USDT mark, ``floor(BTC x rate)`` (``stream.coin_cash``),
revalued as the mark moves; the risk limits (USDT) apply to its ETH/BTC orders; after a restart reconciliation
makes the BTC held the exchange's BTC balance (the exchange settles each fill's BTC truncated to 1e-8,
localex/engine/CONTRACT.md), the cash its USDT value at the rate, and publishes nothing new."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from kernels.state import A_CASH, I_MARK, P_QTY
from oms.model import OrderStatus, OrderType, PlaceOrder, Side
from oms.model.parents import PlaceParent
from oms.model.rejections import rejection
from stream.reconcile_hook import ReconcileFailed, reconcile_session
from tests.stream.conftest import request, unique, until

PICO = 10**12  # 1e-12 BTC: the unit the BTC held is counted in (oms.model.units.QUOTE_MONEY_DECIMALS)
LIMIT = Decimal(1000)  # the account's max_order_notional_usdt


def wallet_of(bench, name: str) -> dict[str, tuple[Decimal, Decimal]]:
    account_id = bench.accounts[name][0]
    rows = bench.exchange.admin("GET", f"/admin/v1/accounts/{account_id}/balances?wallet=SPOT")
    return {r["asset"]: (Decimal(r["free"]), Decimal(r["locked"])) for r in rows}  # type: ignore[union-attr]


def kernel(d, acct: str) -> tuple[int, int]:
    """(cash in 1e-8 USDT, ETH/BTC position in quantity units) of ``acct`` in the daemon's kernel state."""
    a = d.sessions[acct].number
    i, _ = d.wiring.instruments.lookup("binance", "ETH/BTC")
    return int(d.wiring.state.acc[A_CASH, a]), int(d.wiring.state.pos[P_QTY, a, i, 0])


def btc_usdt(d) -> Decimal:
    """The BTC/USDT mark in the daemon's kernel state, as a price."""
    i, ins = d.wiring.instruments.lookup("binance", "BTC/USDT")
    return int(d.wiring.state.ins[I_MARK, i]) * ins.price_unit


def valued(d, btc: Decimal) -> int:
    """``btc`` in 1e-8 USDT at the BTC/USDT mark now, rounded down, computed here from the mark alone; the rates
    pushed first (the daemon's 1 s timer does the same), so the kernel's cash is at this mark too."""
    d.risk.push_rates()
    return int((btc * btc_usdt(d) * 10**8).to_integral_value(rounding=ROUND_FLOOR))


async def stored(nc, name: str) -> tuple[int, int, int]:
    js = nc.jetstream()
    out = []
    for stream, subject in (("ORDERS", "orders"), ("TRADES", "trades"), ("BALANCES", "balances")):
        info = await js.stream_info(stream, subjects_filter=f"{subject}.binance.{name}.>")
        out.append(sum((info.state.subjects or {}).values()))
    return tuple(out)  # type: ignore[return-value]


async def test_btc_cash_is_valued_in_usdt_trades_eth_btc_and_a_restart_reconciles_it(bench, nc):
    name = unique("btccash")
    bench.write([name], symbols=("BTC/USDT", "ETH/BTC"), cash={name: ["BTC"]},
                risk={name: {"max_order_notional_usdt": int(LIMIT)}})  # fmt: skip
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        a = d.sessions[acct].number
        coins = d.risk.coins
        assert wallet_of(bench, name)["BTC"] == (Decimal(2), 0)
        assert coins.held(a) == 2 * PICO  # the BTC wallet; the account's 100000 USDT is not its cash
        expected = valued(d, Decimal(2))  # first: it pushes the rates
        assert kernel(d, acct) == (expected, 0)
        equity0 = d.wiring.state.equity(a)
        assert equity0 == kernel(d, acct)[0]

        # the risk limits are in USDT: an ETH/BTC order worth twice the limit at the marks is refused
        eth_btc = bench.ticker("ETHBTC")
        eth_usdt = eth_btc * btc_usdt(d)
        big = (2 * LIMIT / eth_usdt).quantize(Decimal("0.0001"))
        over = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.MARKET, qty=str(big),
                          intent="too big")  # fmt: skip
        [refused] = (await request(nc, acct, over)).results
        assert not refused.ok and refused.code == "risk:MAX_ORDER_NOTIONAL", refused
        assert "max_order_notional_usdt 1000" in refused.reason

        buy = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.MARKET, qty="0.0537",
                         intent="take")  # fmt: skip
        [res] = (await request(nc, acct, buy)).results
        assert res.ok, res
        price = (eth_btc * Decimal("0.97")).quantize(Decimal("0.00001"))
        rest = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.0037",
                          price=str(price), intent="rest")  # fmt: skip
        [rested] = (await request(nc, acct, rest)).results
        assert rested.ok and rested.status is OrderStatus.NEW, rested
        await until(lambda: kernel(d, acct)[1] > 0, what="the ETH/BTC fill in the kernel")
        execution = d.sessions[acct].links[next(iter(d.sessions[acct].links))].clients.execution
        fills = await until(lambda: execution.fills("ETH/BTC", 0), what="the fills on the venue")
        assert sum(Decimal(f.qty) for f in fills) == Decimal("0.0537")
        exact = sum(Decimal(f.price) * Decimal(f.qty) for f in fills)
        # live, the BTC held is the exact notional paid and the ETH commission valued in BTC at the fill's price
        # (the gateway's booking), to the 1e-12 unit; the exchange took each fill's BTC truncated to 1e-8
        fee_btc = sum(Decimal(f.commission) * Decimal(f.price) for f in fills)
        held = Decimal(coins.held(a)) / PICO
        assert abs(held - (2 - exact - fee_btc)) <= Decimal("1e-12") * len(fills)
        free, locked = wallet_of(bench, name)["BTC"]
        assert 2 - exact <= free + locked < 2 - exact + Decimal("1e-8") * len(fills)
        # the cash is the BTC held at the rate now, after each push (the BTC/USDT mark moves meanwhile)
        expected = valued(d, held)
        assert kernel(d, acct)[0] == expected
        mark, cash = btc_usdt(d), kernel(d, acct)[0]
        await until(lambda: btc_usdt(d) != mark, timeout=30, what="the BTC/USDT mark to move")
        # the risk controls' rate timer revalues it on its own
        await until(lambda: kernel(d, acct)[0] != cash, timeout=30, what="the rate timer to revalue the cash")
        expected = valued(d, held)
        assert kernel(d, acct)[0] == expected  # revalued with the rate, as a position in BTC would be
    finally:
        await d.stop()

    before = await stored(nc, name)
    assert before[1] == len(fills)  # one trade event per fill
    again = bench.daemon()  # a restart: a new kernel, reconciled from the exchange
    await again.start()
    try:
        assert again.sessions[acct].trading, again.sessions[acct].refused
        a = again.sessions[acct].number
        wallet = wallet_of(bench, name)
        free, locked = wallet["BTC"]
        assert again.risk.coins.held(a) == (free + locked) * PICO  # the exchange's BTC, to the unit
        expected = valued(again, free + locked)
        cash, qty = kernel(again, acct)
        assert cash == expected  # its USDT value at the rate, as the kernel computes it
        eth_free, eth_locked = wallet["ETH"]
        _, ins = again.wiring.instruments.lookup("binance", "ETH/BTC")
        assert eth_free + eth_locked == Decimal("0.0537") * Decimal("0.999")  # the fee was ETH
        assert qty == ins.qty("0.0536")  # the ETH balance, its dust below the lot dropped
        assert await stored(nc, name) == before  # nothing new published
        rec = again.gateway.orders.get(rested.client_order_id)
        assert rec is not None and rec.status is OrderStatus.NEW  # the resting order adopted, not re-published
        [refused] = (await request(nc, acct, over)).results  # the USDT limit still applies after the restart
        assert not refused.ok and refused.code == "risk:MAX_ORDER_NOTIONAL", refused
    finally:
        await again.stop()


async def test_btc_cash_without_a_btc_usdt_pair_does_not_trade_and_says_why(bench, nc):
    name = unique("btcnorate")
    bench.write([name], symbols=("ETH/BTC",), cash={name: ["BTC"]})
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        session = d.sessions[acct]
        assert not session.trading
        assert "the BTC cash cannot be valued in USDT: BTC/USDT is not an instrument of this daemon" in session.refused
        buy = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.MARKET, qty="0.01",
                         intent="take")  # fmt: skip
        [res] = (await request(nc, acct, buy)).results
        assert not res.ok, res
        assert int(d.wiring.state.acc[A_CASH, session.number]) == 0  # nothing valued without a rate
    finally:
        await d.stop()


async def test_btc_cash_without_a_mark_yet_waits_and_is_reconciled_when_it_comes(bench, nc, monkeypatch):
    monkeypatch.setenv("OMS_RECONCILE_RATE_WAIT_S", "0")  # refused at the first look: the retry is what is tested
    name = unique("btclate")
    bench.write([name], symbols=("BTC/USDT", "ETH/BTC"), cash={name: ["BTC"]})
    acct = bench.account(name)
    d = bench.daemon()
    calls: list[tuple[str, str]] = []

    async def hook(daemon, session, reason: str) -> None:
        if reason == "start":  # the daemon's state before BTC/USDT's first tick: no mark (nothing holds it)
            i, _ = daemon.wiring.instruments.lookup("binance", "BTC/USDT")
            daemon.wiring.state.ins[I_MARK, i] = 0
        try:
            await reconcile_session(daemon, session, reason)
        except ReconcileFailed as exc:
            calls.append((reason, str(exc)))
            raise
        calls.append((reason, "ok"))

    d.reconcile_hook = hook
    await d.start()
    try:
        session = d.sessions[acct]
        await until(lambda: session.trading, timeout=30, what="the account reconciled once BTC/USDT has a mark")
        assert calls == [
            ("start", f"{acct}: the BTC cash cannot be valued in USDT: no BTC/USDT mark yet after 0 s; reconciled "
                      "again when it comes"),
            ("cash rate", "ok"),
        ]  # fmt: skip
        expected = valued(d, Decimal(2))
        assert kernel(d, acct) == (expected, 0)
    finally:
        await d.stop()


async def test_btc_cash_refuses_pairs_quoted_in_another_asset_before_the_kernel(bench, nc):
    """The BTC-cash account's cash is its BTC alone: an order or parent in ETH/USDT or BTC/USDT (their USDT would
    not be part of that cash, nor their position reconciled) is refused with ``cash_asset_mismatch`` naming the
    account, the pair's quote and the cash, counted, and nothing reaches the kernel or the venue; ETH/BTC still
    trades, and a USDT account trades ETH/USDT as before."""
    name, other = unique("btcmis"), unique("usdtok")
    bench.write([name, other], symbols=("BTC/USDT", "ETH/BTC", "ETH/USDT"), cash={name: ["BTC"]})
    acct, usdt_acct = bench.account(name), bench.account(other)
    d = bench.daemon()
    await d.start()
    try:
        assert d.sessions[acct].trading, d.sessions[acct].refused
        a = d.sessions[acct].number
        refusals = d.metrics.rejections.labels(acct, "cash_asset_mismatch")
        orders = [
            PlaceOrder(
                account=acct,
                symbol=symbol,
                side=side,
                order_type=OrderType.MARKET,
                qty="0.01",
                intent=f"mismatch {symbol} {side}",
            )  # fmt: skip
            for symbol, side in (("ETH/USDT", Side.BUY), ("BTC/USDT", Side.SELL))
        ]
        twap = PlaceParent(account=acct, symbol="ETH/USDT", side=Side.BUY, algo="twap", qty="0.02", slices=2,
                           duration_s=2.0, intent="mismatch parent")  # fmt: skip
        results = (await request(nc, acct, *orders, twap)).results
        for res, symbol in zip(results, ("ETH/USDT", "BTC/USDT", "ETH/USDT"), strict=True):
            assert not res.ok and res.code == "cash_asset_mismatch", res
            assert acct in res.reason and f"{symbol} is quoted in USDT" in res.reason
            assert "cash_assets: [BTC]" in res.reason
        assert int(refusals._value.get()) == 3
        assert rejection("cash_asset_mismatch").code == "cash_asset_mismatch"
        assert not d.emulation.parents.parents  # the parent never started
        assert all(rec.account != acct for rec in d.gateway.orders)  # nothing past the router
        i, _ = d.wiring.instruments.lookup("binance", "ETH/USDT")
        assert int(d.wiring.state.pos[P_QTY, a, i, 0]) == 0
        execution = d.sessions[acct].links[next(iter(d.sessions[acct].links))].clients.execution
        assert await execution.fills("ETH/USDT", 0) == [] and await execution.fills("BTC/USDT", 0) == []
        assert d.risk.coins.held(a) == 2 * PICO  # the BTC held, as reconciled: nothing moved it

        # its own coin's pairs still trade
        buy = PlaceOrder(account=acct, symbol="ETH/BTC", side=Side.BUY, order_type=OrderType.MARKET, qty="0.01",
                         intent="coin pair")  # fmt: skip
        [res] = (await request(nc, acct, buy)).results
        assert res.ok, res
        # a USDT account is not concerned
        usdt_buy = PlaceOrder(account=usdt_acct, symbol="ETH/USDT", side=Side.BUY, order_type=OrderType.MARKET,
                              qty="0.1", intent="usdt pair")  # fmt: skip
        [res] = (await request(nc, usdt_acct, usdt_buy)).results
        assert res.ok, res
        assert int(d.metrics.rejections.labels(usdt_acct, "cash_asset_mismatch")._value.get()) == 0
    finally:
        await d.stop()
