"""Benchmark: the ccxt connector's order round trip and its parsers, each beside a baseline from the same run.

* Order round trip against the local exchange run as its own process (no rate limits, no replay):
  ``ExecutionClient.place`` of a resting LIMIT order through the connector over REST (ccxt ``create_order`` plus
  the shared limiter, clock, typed errors and the model event) and over the WebSocket API (ccxt
  ``createOrderWs``), beside ccxt's own ``create_order`` and a raw aiohttp signed ``POST /api/v3/order`` (the
  floor), p50 and p99 of sequential requests.
* Parsing: a ccxt order structure -> ``OrderEvent`` and a ccxt trade -> ``Fill``/``Trade`` (what the streams do
  per event), beside ccxt's own parse of the venue's JSON into that structure (the cost ccxt adds before us).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from localex import clients
from oms.config import load_config
from oms.keys import EnvKeys
from oms.model import Instrument, OrderType, PlaceOrder, Side
from oms.venues.ccxt import parse
from oms.venues.factory import VenueFactory
from tests.bench.timing import atimed, free_port, pct

pytestmark = pytest.mark.bench

N_ORDERS = 1000
N_PARSE = 20000


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("localex")
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(data_dir), "--no-replay", "--no-rate-limits"]
    args += ["--max-open-orders", "1000000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "localex", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url + "/api/v3/ping", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    keys = json.loads((Path(data_dir) / "localex-demo-keys.json").read_text())["keys"][0]
    yield url, keys["apiKey"], keys["secret"]
    proc.terminate()
    assert proc.wait(10) == 0


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):
    """configs/ with Binance on the ccxt connector and budgets far above the run (the limiter still runs)."""
    d = tmp_path_factory.mktemp("configs")
    for f in load_config().dir.glob("*.yaml"):
        shutil.copy(f, d / f.name)
    data = yaml.safe_load((d / "exchanges.yaml").read_text())
    b = data["exchanges"]["binance"]
    b["library"], b["ccxt_id"] = "ccxt", "binance"
    b["rate_limits"]["default"].update(
        spot_weight_per_minute=10**8, futures_weight_per_minute=10**8, orders_per_10s=10**7, orders_per_day=10**9
    )
    (d / "exchanges.yaml").write_text(yaml.safe_dump(data))
    return load_config(d)


def _signed_order(secret: str, i: int) -> str:
    q = urllib.parse.urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": f"{5000 + i % 1000}",
            "newClientOrderId": f"raw-{i}-{time.time_ns()}",
            "timestamp": int(time.time() * 1000),
        }
    )
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


async def _round_trips(url: str, key: str, secret: str, config) -> dict[str, list[float]]:
    env = {"OMS_KEY_BINANCE_SPOT_MAIN_API_KEY": key, "OMS_KEY_BINANCE_SPOT_MAIN_SECRET": secret}
    factory = VenueFactory(config, EnvKeys(env), local_url=url)
    ex = clients.ccxt_async_client(url, key, secret)
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    try:
        execution = (await factory.account_clients("binance", "main", "spot")).execution
        await ex.load_markets()
        async with aiohttp.ClientSession() as http:

            async def raw(i: int) -> None:
                async with http.post(url + "/api/v3/order", data=_signed_order(secret, i), headers=headers) as r:
                    body = await r.read()
                    assert r.status == 200, body

            async def plain_ccxt(i: int) -> None:
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 5000 + i % 1000)

            async def place(i: int, path: str) -> None:
                cmd = PlaceOrder(
                    account="binance/main", symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT,
                    qty="0.001", price=str(5000 + i % 1000), intent=f"{i}-{time.time_ns()}",
                )  # fmt: skip
                await execution.place(cmd.with_client_order_id())
                assert execution.ws.records[-1].path == path

            async def connector(i: int) -> None:
                execution.ws.enabled = False
                await place(i, "rest")

            async def connector_ws(i: int) -> None:
                execution.ws.enabled = True
                await place(i, "ws")

            assert await execution.ws.connect()
            for fn in (raw, plain_ccxt, connector, connector_ws):  # warm-up
                await atimed(fn, 50)
            out: dict[str, list[float]] = {"raw": [], "ccxt": [], "connector": [], "connector_ws": []}
            for _ in range(4):  # interleaved rounds so drift hits all alike
                out["raw"] += await atimed(raw, N_ORDERS // 4)
                out["ccxt"] += await atimed(plain_ccxt, N_ORDERS // 4)
                out["connector"] += await atimed(connector, N_ORDERS // 4)
                out["connector_ws"] += await atimed(connector_ws, N_ORDERS // 4)
            return out
    finally:
        await ex.close()
        await factory.close()


def test_order_round_trip_over_ccxt_rest(exchange, config) -> None:
    url, key, secret = exchange
    r = asyncio.run(_round_trips(url, key, secret, config))
    print(f"\nccxt connector order round trip over REST ({N_ORDERS} sequential resting LIMIT orders each):")
    for name, label in (
        ("raw", "raw aiohttp signed POST (baseline)"),
        ("ccxt", "ccxt create_order"),
        ("connector", "ExecutionClient.place (ccxt, REST)"),
        ("connector_ws", "ExecutionClient.place (ccxt, ws-api)"),
    ):
        p50, p99 = pct(r[name], 0.5) * 1e3, pct(r[name], 0.99) * 1e3
        print(f"  {label:<36} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    base = pct(r["raw"], 0.5)
    print(
        f"  ratio to the baseline (p50): ccxt {pct(r['ccxt'], 0.5) / base:.2f}x, "
        f"connector {pct(r['connector'], 0.5) / base:.2f}x, connector over the ws-api "
        f"{pct(r['connector_ws'], 0.5) / base:.2f}x"
    )
    assert r["connector"] and r["connector_ws"]


def test_parse_ccxt_structures_to_model_events(exchange) -> None:
    url, key, secret = exchange
    ex = clients.ccxt_sync(url, key, secret)
    ex.load_markets()
    order_info = ex.privatePostOrder(
        {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
            "price": "5000", "newClientOrderId": f"bench-{time.time_ns()}", "newOrderRespType": "FULL",
        }
    )  # fmt: skip
    market = ex.market("BTC/USDT")
    order = ex.parse_order(order_info, market)
    trade_info = {"a": 1, "p": "5000.01", "q": "0.00100", "f": 1, "l": 1, "T": 1_700_000_000_000, "m": False}
    trade = ex.parse_trade(trade_info, market)
    my_trade = dict(trade, order=order["id"], side="buy", fee={"cost": 0.000001, "currency": "BTC"})
    inst = Instrument(parse.instrument_spec("binance", market, ex.precisionMode))

    def timed(fn) -> float:
        for _ in range(500):
            fn()
        t0 = time.perf_counter()
        for _ in range(N_PARSE):
            fn()
        return (time.perf_counter() - t0) / N_PARSE * 1e6

    def to_event():
        o = parse.order("binance/main", order)
        return parse.order_event(o, parse.event_kind(None, o))

    rows = [
        ("ccxt parse_order(venue JSON) (baseline)", timed(lambda: ex.parse_order(order_info, market))),
        ("ccxt order dict -> OrderEvent", timed(to_event)),
        ("ccxt parse_trade(venue JSON) (baseline)", timed(lambda: ex.parse_trade(trade_info, market))),
        ("ccxt trade dict -> Trade (tick/lot checked)", timed(lambda: parse.trade("binance", inst, trade))),
        ("ccxt trade dict -> Fill", timed(lambda: parse.fill("binance/main", my_trade, "cid-1"))),
    ]
    print(f"\nccxt connector parsers ({N_PARSE} calls each, mean per call):")
    for label, us in rows:
        print(f"  {label:<44} {us:7.2f} us")
    print(f"  ratio to ccxt's own parse: order {rows[1][1] / rows[0][1]:.2f}x, trade {rows[3][1] / rows[2][1]:.2f}x")
    assert all(us > 0 for _, us in rows)
