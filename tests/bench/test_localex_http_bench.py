"""Benchmark: order placement over HTTP against the local exchange run as its own process.

Measures, with a real HTTP client (aiohttp, keep-alive) and real signing, sequential latency (p50/p99) and
throughput (8 requests in flight) of signed ``POST /api/v3/order`` (LIMIT orders that rest on the book),
against the baseline ``GET /api/v3/ping`` measured in the same run. Target: order p50 under 2 ms.
Then the same order through the clients a connector uses, unmodified: ccxt (``ccxt.async_support``,
``create_order``) and python-binance (``AsyncClient.create_order``), each against its own ``ping`` as the
baseline, so the ratio shows what the client library adds on top of the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from localex import clients
from tests.bench.timing import atimed, free_port, pct

N_SEQ = 2000
N_CONC = 4000
IN_FLIGHT = 8


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("localex")
    port = free_port()
    # the server, not its limits: no request/order rate limits, and every order may rest (thousands per key)
    args = [
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--no-replay",
        "--no-rate-limits",
        "--max-open-orders",
        "1000000",
    ]
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


def _order_body(secret: str, i: int) -> str:
    q = urllib.parse.urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": f"{5000 + i % 1000}.00",
            "newOrderRespType": "ACK",
            "timestamp": int(time.time() * 1000),
        }
    )
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


async def _run(url: str, key: str, secret: str) -> dict[str, float]:
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as s:

        async def ping() -> None:
            async with s.get(url + "/api/v3/ping") as r:
                assert r.status == 200
                await r.read()

        async def order(i: int) -> None:
            async with s.post(url + "/api/v3/order", data=_order_body(secret, i), headers=headers) as r:
                body = await r.read()
                assert r.status == 200, body

        for i in range(200):  # warm-up
            await ping()
            await order(i)
        lat_ping, lat_order = [], []
        for i in range(N_SEQ):
            t0 = time.perf_counter()
            await ping()
            lat_ping.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await order(i)
            lat_order.append(time.perf_counter() - t0)

        async def worker(start: int, count: int) -> None:
            for i in range(start, start + count):
                await order(i)

        per = N_CONC // IN_FLIGHT
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w * per, per) for w in range(IN_FLIGHT)))
        order_rps = N_CONC / (time.perf_counter() - t0)
        t0 = time.perf_counter()

        async def ping_worker(count: int) -> None:
            for _ in range(count):
                await ping()

        await asyncio.gather(*(ping_worker(per) for _ in range(IN_FLIGHT)))
        ping_rps = N_CONC / (time.perf_counter() - t0)
    return {
        "order_p50_ms": pct(lat_order, 0.5) * 1e3,
        "order_p99_ms": pct(lat_order, 0.99) * 1e3,
        "ping_p50_ms": pct(lat_ping, 0.5) * 1e3,
        "ping_p99_ms": pct(lat_ping, 0.99) * 1e3,
        "order_rps": order_rps,
        "ping_rps": ping_rps,
    }


def test_order_placement_over_http(exchange) -> None:
    url, key, secret = exchange
    r = asyncio.run(_run(url, key, secret))
    print(f"\nlocalex HTTP order placement ({N_SEQ} sequential, {N_CONC} with {IN_FLIGHT} in flight):")
    print(
        f"  POST /api/v3/order  p50 {r['order_p50_ms']:.3f} ms  p99 {r['order_p99_ms']:.3f} ms  "
        f"{r['order_rps']:,.0f} orders/s"
    )
    print(
        f"  GET /api/v3/ping    p50 {r['ping_p50_ms']:.3f} ms  p99 {r['ping_p99_ms']:.3f} ms  "
        f"{r['ping_rps']:,.0f} req/s (baseline)"
    )
    print(
        f"  ratio order/ping: p50 {r['order_p50_ms'] / r['ping_p50_ms']:.2f}x, "
        f"throughput {r['order_rps'] / r['ping_rps']:.2f}x"
    )
    assert r["order_rps"] > 0


async def _rps(fn, n: int) -> float:
    per = n // IN_FLIGHT

    async def worker(start: int) -> None:
        for i in range(start, start + per):
            await fn(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w * per) for w in range(IN_FLIGHT)))
    return per * IN_FLIGHT / (time.perf_counter() - t0)


async def _run_clients(url: str, key: str, secret: str) -> dict[str, dict[str, float]]:
    n_seq, n_conc = N_SEQ // 2, N_CONC // 2
    out: dict[str, dict[str, float]] = {}
    ex = clients.ccxt_async_client(url, key, secret)
    try:
        await ex.load_markets()

        async def ccxt_order(i: int) -> None:
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 5000 + i % 1000)

        async def ccxt_ping(_i: int) -> None:
            await ex.public_get_ping()

        await atimed(ccxt_order, 100)
        out["ccxt"] = _figures(
            await atimed(ccxt_order, n_seq), await atimed(ccxt_ping, n_seq), await _rps(ccxt_order, n_conc)
        )
    finally:
        await ex.close()
    client = await clients.binance_async(url, key, secret)
    try:

        async def pb_order(i: int) -> None:
            await client.create_order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=f"{5000 + i % 1000}.00",
            )

        async def pb_ping(_i: int) -> None:
            await client.ping()

        await atimed(pb_order, 100)
        out["python-binance"] = _figures(
            await atimed(pb_order, n_seq), await atimed(pb_ping, n_seq), await _rps(pb_order, n_conc)
        )
    finally:
        await client.close_connection()
    return out


def _figures(order: list[float], ping: list[float], rps: float) -> dict[str, float]:
    return {
        "p50": pct(order, 0.5) * 1e3,
        "p99": pct(order, 0.99) * 1e3,
        "rps": rps,
        "ping_p50": pct(ping, 0.5) * 1e3,
    }


def test_order_placement_through_client_libraries(exchange) -> None:
    url, key, secret = exchange
    res = asyncio.run(_run_clients(url, key, secret))
    print(
        f"\nlocalex order placement through client libraries ({N_SEQ // 2} sequential, "
        f"{N_CONC // 2} with {IN_FLIGHT} in flight, FULL/RESULT responses):"
    )
    for name, r in res.items():
        print(
            f"  {name:15s} create_order p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  {r['rps']:,.0f} orders/s"
            f"   (its ping p50 {r['ping_p50']:.3f} ms, ratio {r['p50'] / r['ping_p50']:.2f}x)"
        )
    assert all(r["rps"] > 0 for r in res.values())
