"""USD-M funding fees and the income history (GET /fapi/v1/income).

Server tests run a real local exchange whose clock the test can move (the exchange's clock is real time plus
an offset; request signing still checks real time), without the price replay, so the mark price is the last
trade price and every amount below is worked by hand. Engine tests cover what needs a finer look: rounding,
isolated margin, conservation and a replay that passes several funding times in one advance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal

import aiohttp
import orjson
import pytest
from binance.exceptions import BinanceAPIException
from conftest import LocalServer, free_port, start_server

from localex import clients
from localex.engine import Exchange, OrderRequest
from localex.engine.exchange import FUNDING_INTERVAL_NS
from localex.engine.liquidity import LiquidityConfig, Replay
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive.pricepath import PricePath

WAIT = 5.0
E8 = Decimal("0.00000001")


class ShiftedClock:
    """Real time plus an offset the test moves (ns)."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset


class FundingServer:
    def __init__(self, server: LocalServer, exchange: Exchange, clock: ShiftedClock) -> None:
        self.server = server
        self.ex = exchange
        self.clock = clock

    def pass_funding_times(self, n: int = 1) -> list[int]:
        """Move the clock just past the next ``n`` funding times; wait until the server charged them (ms)."""
        first = self.ex.next_funding_ns
        times = [first + i * FUNDING_INTERVAL_NS for i in range(n)]
        self.clock.offset += times[-1] + 1_000_000 - self.clock()
        deadline = time.monotonic() + WAIT
        while self.ex.next_funding_ns <= times[-1]:
            assert time.monotonic() < deadline, "the server did not charge the funding time"
            time.sleep(0.01)
        return [t // 1_000_000 for t in times]


@pytest.fixture(scope="module")
def fsrv() -> Iterator[FundingServer]:
    clock = ShiftedClock()
    ex = Exchange(clock=clock, seed=11)
    limits = RateLimitConfig(spot_weight_per_minute=100_000, futures_weight_per_minute=100_000)
    config = ServerConfig(
        port=free_port(), rate_limits=limits, replay=False, replay_interval_s=0.02, demo_accounts=False
    )
    for server in start_server(config, ex):
        yield FundingServer(server, ex, clock)


def open_pair(
    fsrv: FundingServer, symbol: str = "BTCUSDT", qty: str = "0.123", price: str = "30123.40"
) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """A short (maker, resting SELL) and a long (taker, MARKET BUY) account, each with 10000 USDT futures."""
    short = fsrv.server.new_account(futures={"USDT": "10000"})
    long = fsrv.server.new_account(futures={"USDT": "10000"})
    s = clients.binance_sync(fsrv.server.url, short[1], short[2])
    s.futures_create_order(symbol=symbol, side="SELL", type="LIMIT", timeInForce="GTC", quantity=qty, price=price)
    b = clients.binance_sync(fsrv.server.url, long[1], long[2])
    assert (
        b.futures_create_order(symbol=symbol, side="BUY", type="MARKET", quantity=qty, newOrderRespType="RESULT")[
            "status"
        ]
        == "FILLED"
    )
    return short, long


def wallet(fsrv: FundingServer, key: tuple[str, str, str]) -> Decimal:
    bal = clients.binance_sync(fsrv.server.url, key[1], key[2]).futures_account_balance()
    return Decimal(next(b["balance"] for b in bal if b["asset"] == "USDT"))


async def test_position_across_funding_time_is_charged(fsrv: FundingServer) -> None:
    """Hand-worked: 0.123 BTC at 30123.40 -> notional 3705.1782 USDT, funding 0.01% = 0.37051782 USDT; the long
    pays it, the short receives it; the long's ACCOUNT_UPDATE (m=FUNDING_FEE) arrives on its user-data stream;
    ccxt's fetch_funding_history and python-binance's futures_income_history return the charge."""
    short, long = await asyncio.to_thread(open_pair, fsrv)
    before_long, before_short = wallet(fsrv, long), wallet(fsrv, short)
    assert before_long == Decimal("10000") - Decimal("1.8525891")  # taker fee 0.05% of 3705.1782
    assert before_short == Decimal("10000") - Decimal("0.74103564")  # maker fee 0.02%
    async with aiohttp.ClientSession() as session:
        async with session.post(fsrv.server.url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": long[1]}) as r:
            listen_key = (await r.json())["listenKey"]
        ws_url = fsrv.server.url.replace("http", "ws") + f"/fstream/private/ws?listenKey={listen_key}"
        async with session.ws_connect(ws_url) as ws:
            await asyncio.sleep(0.1)
            (t_ms,) = await asyncio.to_thread(fsrv.pass_funding_times, 1)
            msg = orjson.loads((await asyncio.wait_for(ws.receive(), WAIT)).data)
    assert msg["e"] == "ACCOUNT_UPDATE" and msg["E"] == t_ms and msg["a"]["m"] == "FUNDING_FEE"
    assert msg["a"]["B"] == [
        {
            "a": "USDT",
            "wb": str(before_long - Decimal("0.37051782")),
            "cw": str(before_long - Decimal("0.37051782")),
            "bc": "-0.37051782",
        }
    ]
    assert msg["a"]["P"] == []  # a cross position: the balance only, as Binance sends it
    assert wallet(fsrv, long) == before_long - Decimal("0.37051782")
    assert wallet(fsrv, short) == before_short + Decimal("0.37051782")

    ccxt_short = clients.ccxt_sync(fsrv.server.url, short[1], short[2], default_type="swap")
    history = ccxt_short.fetch_funding_history("BTC/USDT:USDT")
    assert [(h["symbol"], h["code"], h["amount"], h["timestamp"]) for h in history] == [
        ("BTC/USDT:USDT", "USDT", 0.37051782, t_ms)
    ]
    assert history[0]["info"]["incomeType"] == "FUNDING_FEE" and history[0]["id"]
    assert ccxt_short.fetch_funding_history("BTC/USDT:USDT", since=t_ms + 1) == []

    rows = clients.binance_sync(fsrv.server.url, long[1], long[2]).futures_income_history(incomeType="FUNDING_FEE")
    assert rows == [
        {
            "symbol": "BTCUSDT",
            "incomeType": "FUNDING_FEE",
            "income": "-0.37051782",
            "asset": "USDT",
            "info": "FUNDING_FEE",
            "time": t_ms,
            "tranId": rows[0]["tranId"],
            "tradeId": "",
        }
    ]
    assert isinstance(rows[0]["tranId"], int)


def test_income_history_has_every_kind_in_time_order(fsrv: FundingServer) -> None:
    """TRANSFER in, the opening fill's COMMISSION, FUNDING_FEE, then the closing fill's REALIZED_PNL and
    COMMISSION; filters by type and symbol, paging and time bounds."""
    short, long = open_pair(fsrv)
    (t_ms,) = fsrv.pass_funding_times(1)
    s = clients.binance_sync(fsrv.server.url, short[1], short[2])
    b = clients.binance_sync(fsrv.server.url, long[1], long[2])
    s.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.123", price="30200.00"
    )
    close = b.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.123", newOrderRespType="RESULT"
    )
    assert close["status"] == "FILLED"
    rows = b.futures_income_history()
    assert [(r["incomeType"], r["income"], r["symbol"]) for r in rows] == [
        ("TRANSFER", "10000.00000000", ""),
        ("COMMISSION", "-1.85258910", "BTCUSDT"),
        ("FUNDING_FEE", "-0.37051782", "BTCUSDT"),
        ("REALIZED_PNL", "9.42180000", "BTCUSDT"),  # (30200.00 - 30123.40) * 0.123
        ("COMMISSION", "-1.85730000", "BTCUSDT"),  # 0.05% of 3714.6
    ]
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows) and rows[2]["time"] == t_ms
    trade_ids = {r["tradeId"] for r in rows if r["incomeType"] in ("REALIZED_PNL", "COMMISSION")}
    assert len(trade_ids) == 2 and all(t.isdigit() for t in trade_ids)
    assert rows[0]["tradeId"] == "" and rows[2]["tradeId"] == ""
    assert sum(Decimal(r["income"]) for r in rows) == wallet(fsrv, long)  # the history explains the wallet
    assert [r["incomeType"] for r in b.futures_income_history(incomeType="COMMISSION")] == ["COMMISSION"] * 2
    assert b.futures_income_history(symbol="ETHUSDT") == []
    assert [r["incomeType"] for r in b.futures_income_history(symbol="BTCUSDT")] == [
        "COMMISSION",
        "FUNDING_FEE",
        "REALIZED_PNL",
        "COMMISSION",
    ]  # TRANSFER rows carry no symbol
    assert b.futures_income_history(page=2, limit=2) == rows[2:4]
    assert b.futures_income_history(limit=2) == rows[-2:]  # no startTime: the newest rows
    assert b.futures_income_history(startTime=rows[0]["time"], limit=2) == rows[:2]
    assert b.futures_income_history(startTime=t_ms, endTime=t_ms) == [rows[2]]


def test_several_funding_times_in_one_advance(fsrv: FundingServer) -> None:
    """The clock jumps over three funding times at once: three charges, once each, 8 h apart, in order."""
    short, long = open_pair(fsrv, symbol="ETHUSDT", qty="0.051", price="2000.01")
    before = wallet(fsrv, long)
    times = fsrv.pass_funding_times(3)
    assert times[1] - times[0] == times[2] - times[1] == 8 * 3_600_000 and times[0] % (8 * 3_600_000) == 0
    b = clients.binance_sync(fsrv.server.url, long[1], long[2])
    rows = b.futures_income_history(incomeType="FUNDING_FEE")
    # 0.051 * 2000.01 = 102.00051 USDT; * 0.0001 = 0.010200051: the payer pays it rounded up to 1e-8
    assert [(r["time"], r["income"], r["symbol"]) for r in rows] == [(t, "-0.01020006", "ETHUSDT") for t in times]
    assert len({r["tranId"] for r in rows}) == 3
    assert wallet(fsrv, long) == before - 3 * Decimal("0.01020006")
    received = clients.binance_sync(fsrv.server.url, short[1], short[2]).futures_income_history(
        incomeType="FUNDING_FEE"
    )
    assert [r["income"] for r in received] == ["0.01020005"] * 3  # the receiver's share rounded down


def test_no_position_no_charge(fsrv: FundingServer) -> None:
    """Money in the futures wallet and a resting order, but no position: nothing is charged."""
    key = fsrv.server.new_account(futures={"USDT": "5000"})
    c = clients.binance_sync(fsrv.server.url, key[1], key[2])
    c.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="20000.00"
    )
    fsrv.pass_funding_times(1)
    assert c.futures_income_history(incomeType="FUNDING_FEE") == []
    assert [r["incomeType"] for r in c.futures_income_history()] == ["TRANSFER"]
    assert wallet(fsrv, key) == Decimal("5000")


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"limit": 0}, -1130, "Data sent for parameter 'limit' is not valid."),
        ({"limit": 1001}, -1130, "Data sent for parameter 'limit' is not valid."),
        ({"page": 0}, -1130, "Data sent for parameter 'page' is not valid."),
        ({"incomeType": "BOGUS"}, -1130, "Data sent for parameter 'incomeType' is not valid."),
        ({"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ({"startTime": 2_000, "endTime": 1_000}, -1128, "Combination of optional parameters invalid."),
        (
            {"startTime": "abc"},
            -1100,
            "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.",
        ),
    ],
)
def test_income_bad_params_get_binance_errors(
    fsrv: FundingServer, params: dict[str, object], code: int, msg: str
) -> None:
    key = fsrv.server.new_account()
    before = fsrv.server.admin("GET", "/admin/v1/counters")["errorsByCode"].get(str(code), 0)  # type: ignore[index]
    with pytest.raises(BinanceAPIException) as err:
        clients.binance_sync(fsrv.server.url, key[1], key[2]).futures_income_history(**params)
    assert (err.value.code, err.value.message, err.value.status_code) == (code, msg, 400)
    after = fsrv.server.admin("GET", "/admin/v1/counters")["errorsByCode"][str(code)]  # type: ignore[index]
    assert after == before + 1


def test_income_unsigned_is_rejected(fsrv: FundingServer) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(fsrv.server.url + "/fapi/v1/income", timeout=5)
    assert err.value.code in (400, 401)
    assert orjson.loads(err.value.read())["code"] in (-1102, -2014, -2015)


# ---------------------------------------------------------------------------------------------------- engine


class StepClock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def _pair(ex: Exchange, symbol: str, qty: str, price: str) -> tuple[str, str]:
    a = ex.create_account().account_id
    b = ex.create_account().account_id
    for u in (a, b):
        ex.fund(u, "USDT", "10000", "FUTURES")
    ex.place_order(a, OrderRequest("usdm", symbol, "SELL", "LIMIT", quantity=qty, price=price, time_in_force="GTC"))
    ex.place_order(b, OrderRequest("usdm", symbol, "BUY", "MARKET", quantity=qty))
    return a, b


def test_engine_isolated_position_pays_from_isolated_margin_and_equity_is_conserved() -> None:
    clock = StepClock(1_700_000_000_000_000_000)
    ex = Exchange(clock=clock)
    events: list[object] = []
    ex.add_listener(events.append)
    a = ex.create_account().account_id
    b = ex.create_account().account_id
    ex.set_margin_type(b, "ETHUSDT", "ISOLATED")
    for u in (a, b):
        ex.fund(u, "USDT", "10000", "FUTURES")
    ex.place_order(
        a, OrderRequest("usdm", "ETHUSDT", "SELL", "LIMIT", quantity="0.051", price="2000.01", time_in_force="GTC")
    )
    ex.place_order(b, OrderRequest("usdm", "ETHUSDT", "BUY", "MARKET", quantity="0.051"))
    equity = ex.futures_equity_total()
    iso_before = ex.position_risk(b, "ETHUSDT")[0].isolated_margin
    wallet_before = ex.balance(b, "USDT", "FUTURES").free
    fee_before = ex.balance(ex.FEE_ACCOUNT, "USDT", "FUTURES").free
    clock.t = ex.next_funding_ns
    ex.advance()
    assert ex.position_risk(b, "ETHUSDT")[0].isolated_margin == iso_before - 1_020_006
    assert ex.balance(b, "USDT", "FUTURES").free == wallet_before - 1_020_006
    assert ex.balance(ex.FEE_ACCOUNT, "USDT", "FUTURES").free == fee_before + 1  # the rounding remainder
    assert ex.futures_equity_total() == equity
    funding = [e for e in events if type(e).__name__ == "AccountEvent" and e.reason == "FUNDING_FEE"]
    assert [(e.account_id, e.wallet_deltas, [p.symbol for p in e.positions]) for e in funding] == [
        (a, {"USDT": 1_020_005}, []),
        (b, {"USDT": -1_020_006}, ["ETHUSDT"]),
    ]  # isolated: the position too
    ex.advance()  # the same time again: nothing more
    assert len([e for e in events if type(e).__name__ == "AccountEvent" and e.reason == "FUNDING_FEE"]) == 2


def test_engine_operations_charge_before_they_act() -> None:
    """The first operation after a funding time charges the positions as they were at that time."""
    clock = StepClock(1_700_000_000_000_000_000)
    ex = Exchange(clock=clock)
    a, b = _pair(ex, "BTCUSDT", "0.010", "30000.00")
    clock.t = ex.next_funding_ns + 5
    ex.place_order(
        a, OrderRequest("usdm", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="30000.00", time_in_force="GTC")
    )
    ex.place_order(b, OrderRequest("usdm", "BTCUSDT", "SELL", "MARKET", quantity="0.010"))  # both flat now
    assert [(r.amount, r.time_ns) for r in ex.income(b, income_type="FUNDING_FEE")] == [
        (-3_000_000, clock.t - 5)
    ]  # 0.010 * 30000 * 0.0001 = 0.03 USDT


def test_engine_replay_charges_each_funding_time_at_its_own_mark() -> None:
    t0 = 1_700_000_000_000_000_000
    clock = StepClock(t0)
    ex = Exchange(clock=clock)
    rows = [
        (
            i * 3_600_000,
            str(30000 + 100 * i),
            str(30000 + 100 * i + 50),
            str(30000 + 100 * i - 50),
            str(30000 + 100 * (i + 1)),
        )
        for i in range(200)
    ]
    path = PricePath.from_rows("BTCUSDT", 3_600_000, rows)
    replay = Replay(
        ex,
        {"BTCUSDT": path},
        speed=1.0,
        start_data_ms=0,
        liquidity=LiquidityConfig(levels=3, spacing_bp=1, level_notional="2000"),
    )
    u = ex.create_account().account_id
    ex.fund(u, "USDT", "100000", "FUTURES")
    ex.place_order(u, OrderRequest("usdm", "BTCUSDT", "BUY", "MARKET", quantity="0.020"))
    qty_lots = ex.position_risk(u, "BTCUSDT")[0].position_amt
    first = ex.next_funding_ns
    clock.t = first + 2 * FUNDING_INTERVAL_NS + 1
    equity = ex.futures_equity_total()
    ex.advance()
    got = [(r.time_ns, r.amount) for r in ex.income(u, income_type="FUNDING_FEE")]
    spec = ex.spec("usdm", "BTCUSDT")
    want = []
    for i in range(3):
        t = first + i * FUNDING_INTERVAL_NS
        mark = (path.price_at(replay.data_time(t)) + spec.price_unit // 2) // spec.price_unit
        want.append((t, -((mark * qty_lots * spec.notional_unit * 10_000 + 10**8 - 1) // 10**8)))
    assert got == want and len({a for _, a in got}) == 3  # three different marks
    assert ex.futures_equity_total() == equity
