"""One rejection table (``oms.model.rejections``) for live trading and the backtest: every reason the kernels
can return has an entry, every backtest rejection maps to one, and the same refused order gets the same code
and reason from the backtest's trades and from the daemon: a reduce-only order that would not reduce (the
gateway's risk check), a buy without the cash and a post-only order that would take (the local exchange's
Binance answers through the real connector, NATS and the daemon)."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import pytest

import backtest.codes as B
from backtest.report import trades_table
from backtest.run import Account, run
from backtest.tape import BTCUSDT_SPOT
from kernels import codes as C
from kernels.instruments import Instrument
from kernels.positions import update_mark
from kernels.risk_limits import load_risk_limits
from kernels.state import AccountIndex, KernelState
from oms.config import DEFAULT_CONFIG_DIR
from oms.model import InstrumentKind, InstrumentSpec, OrderType, PlaceOrder, Side
from oms.model.rejections import REJECTIONS, Rejection, rejection, venue_rejection
from strategies.api import LIMIT, MARKET, POST_ONLY, REDUCE_ONLY
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from tests.backtest.scripted import SCRIPT, bars
from tests.stream.conftest import request, unique

ROOT = Path(__file__).resolve().parents[2]
SPOT = Instrument(BTCUSDT_SPOT)


def _returned_names(path: Path) -> set[str]:
    """Every bare name a function in ``path`` returns (``return MAX_LEVERAGE``)."""
    tree = ast.parse(path.read_text())
    return {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)}


def test_every_code_the_kernels_can_return_has_an_entry():
    reason_names = set(C.REASON_NAMES.values())
    returned = set()
    for path in sorted((ROOT / "kernels").glob("*.py")):
        returned |= _returned_names(path) & {n for n in dir(C) if n.isupper()}
    assert {"MAX_ORDER_NOTIONAL", "REDUCE_ONLY_REJECTED", "HEDGE_OVERCLOSE", "NO_QUOTE_RATE"} <= returned
    codes = {getattr(C, n) for n in returned if isinstance(getattr(C, n), int)}
    for code in codes:
        name = C.reason_name(code)
        assert name in reason_names, f"kernel code {code} has no reason"
        entry = rejection(f"risk:{name}")
        assert entry.reason == C.reason_message(code) and entry.name == name
    # and every reason the kernels declare, returned or not
    assert all(f"risk:{n}" in REJECTIONS for n in reason_names)


def test_every_code_the_daemon_refuses_an_order_with_has_an_entry():
    """The literal codes of the gateway, amend, command router, guards and quote limits (the ``risk:{name}`` of a
    kernel reason is covered above)."""
    calls = re.compile(r'(?:_refuse|_refused|_Refusal|refuse\(gw, \w+,)\(?\s*(?:cmd, )?"([a-z_]+(?::[A-Za-z_]+)?)"')
    prefixed = re.compile(r'"((?:risk|guard|venue):[A-Za-z_]+)"')
    found = set()
    for name in ("gateway.py", "amend.py", "commands.py", "risk/guards.py", "risk/quotes.py"):
        text = (ROOT / "stream" / name).read_text()
        found |= set(calls.findall(text)) | set(prefixed.findall(text))
    found |= {"unknown_market"}  # commands._venue_code's answer for a symbol of no market here
    assert {"unknown_symbol", "bad_number", "bad_amend", "guard:correlation", "risk:NO_QUOTE_RATE"} <= found
    missing = sorted(c for c in found if c not in REJECTIONS)
    assert missing == [], f"refusal codes without an entry in oms.model.rejections: {missing}"


def test_every_backtest_rejection_maps_to_an_entry():
    source = (ROOT / "backtest" / "codes.py").read_text()
    reasons = {n: getattr(B, n) for n in re.findall(r"^(R_[A-Z_]+) = \d+", source, re.M)}
    internal = {"R_OVERFLOW"}  # not a rejection: the run stops
    for name, r in reasons.items():
        if name in internal:
            continue
        entry = B.REJECTION[r]
        assert isinstance(entry, Rejection) and REJECTIONS[entry.code] is entry
        assert B.REJECT_CODE[r] == entry.code and B.REJECT_REASON[r] == entry.reason


def test_binance_answers_classify_and_unknown_ones_stay_generic():
    cases = {
        (-2010, "Account has insufficient balance for requested action."): "venue:INSUFFICIENT_BALANCE",
        (-2019, "Margin is insufficient."): "venue:INSUFFICIENT_MARGIN",
        (-2010, "Order would immediately match and take."): "venue:POST_ONLY_WOULD_TAKE",
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."): (
            "venue:POST_ONLY_WOULD_TAKE"
        ),
        (-2022, "ReduceOnly Order is rejected."): "venue:REDUCE_ONLY_REJECTED",
        ("-2010", "account has insufficient balance for requested action."): "venue:INSUFFICIENT_BALANCE",
    }
    for (code, message), expected in cases.items():
        assert venue_rejection(code, message).code == expected, (code, message)
    assert venue_rejection(-2022, "Order cancel-replace failed.") is None  # the same number, another meaning
    assert venue_rejection(None, "Account has insufficient balance for requested action.") is None
    assert venue_rejection("x", "") is None
    with pytest.raises(KeyError, match="no rejection 'venue:NOPE'"):
        rejection("venue:NOPE")


def _backtest_rejection(*intents) -> tuple[str, str]:
    """Run the scripted strategy over two flat hourly bars; the first rejection's (code, reason) in the trades."""
    tape = bars(SPOT, [("60000", "60000", "60000", "60000", "10"), ("60000", "60000", "60000", "60000", "10")])
    res = run(SCRIPT, {"rows": [list(r) for r in intents]}, tape, [Account("a", "100")])
    table = trades_table(res).to_pydict()
    [k] = [k for k, code in enumerate(table["reject_code"]) if code is not None]
    return table["reject_code"][k], table["rejected"][k]


def test_a_reduce_only_order_that_would_not_reduce_reads_the_same_in_the_backtest_and_live():
    # backtest: a reduce-only sell of 0.001 BTC with nothing held
    sell = (0, 0, 0, C.SELL, MARKET, 0, SPOT.qty("0.001"), REDUCE_ONLY, 1)
    bt = _backtest_rejection(sell)
    # live: the same order through the daemon's gateway and risk kernel
    state = KernelState(1, 1)
    load_risk_limits(DEFAULT_CONFIG_DIR, [("binance", "a")]).apply(state)
    table = InstrumentTable(state)
    live_spot = Instrument(InstrumentSpec(symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01",
                                          step_size="0.00001", min_qty="0.00001", min_notional="5",
                                          quote_asset="USDT"))  # fmt: skip
    table.add("binance", live_spot)
    update_mark(*state.blocks, 0, live_spot.mark_to_units("60000"))
    gw = OrderGateway(state, AccountIndex([("binance", "a")]), table)
    cmd = PlaceOrder(account="binance/a", symbol="BTC/USDT", side=Side.SELL, order_type=OrderType.MARKET,
                     qty="0.001", reduce_only=True, intent="ro")  # fmt: skip
    live = gw.place(cmd).result
    assert not live.ok
    assert bt == (live.code, live.reason) == ("risk:REDUCE_ONLY_REJECTED", C.reason_message(C.REDUCE_ONLY_REJECTED))


async def test_a_buy_without_the_cash_and_a_taking_post_only_read_the_same_in_the_backtest_and_live(bench, nc):
    # backtest: 0.002 BTC at 60,000 = 120 USDT with 100 of cash; a post-only buy at the ask takes
    bt_cash = _backtest_rejection((0, 0, 0, C.BUY, MARKET, 0, SPOT.qty("0.002"), 0, 1))
    bt_post = _backtest_rejection((0, 0, 0, C.BUY, LIMIT, SPOT.price("60010"), SPOT.qty("0.001"), POST_ONLY, 1))
    assert bt_cash == ("venue:INSUFFICIENT_BALANCE", rejection("venue:INSUFFICIENT_BALANCE").reason)
    assert bt_post == ("venue:POST_ONLY_WOULD_TAKE", rejection("venue:POST_ONLY_WOULD_TAKE").reason)
    # live: an account of the local exchange with 200 USDT (within the daemon's own limits: 5x leverage)
    name = unique()
    acct_id = bench.exchange.new_account(spot={"USDT": "200"}, futures={"USDT": "0"})
    bench.accounts[name] = acct_id
    stem = f"OMS_KEY_BINANCE_{name.upper()}"
    bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = acct_id[1], acct_id[2]
    bench.write([name])
    acct = bench.account(name)
    d = bench.daemon()
    await d.start()
    try:
        mid = bench.ticker()
        below = str((mid * Decimal("0.99")).quantize(Decimal("0.01")))  # rests: the venue locks its cash
        qty = str((Decimal("400") / mid).quantize(Decimal("0.00001")))  # ~400 USDT with 200
        cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty=qty,
                         price=below, intent="cash")  # fmt: skip
        [res] = (await request(nc, acct, cmd)).results
        assert not res.ok and res.code == bt_cash[0], res
        assert "insufficient balance" in res.reason and rejection(res.code).reason == bt_cash[1]
        above = str((mid * Decimal("1.01")).quantize(Decimal("0.01")))  # marketable: a post-only would take
        small = str((Decimal("100") / mid).quantize(Decimal("0.00001")))  # ~100 USDT: within the cash
        cmd = PlaceOrder(account=acct, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT,
                         qty=small, price=above, post_only=True, intent="maker")  # fmt: skip
        [res] = (await request(nc, acct, cmd)).results
        assert not res.ok and res.code == bt_post[0], res
        assert rejection(res.code).reason == bt_post[1]
    finally:
        await d.stop()
