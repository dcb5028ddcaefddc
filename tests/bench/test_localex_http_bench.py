"""Benchmark: order placement over HTTP against the local exchange run as its own process.

Measures, with a real HTTP client (aiohttp, keep-alive) and real signing, sequential latency (p50/p99) and
throughput (8 requests in flight) of signed ``POST /api/v3/order`` (LIMIT orders that rest on the book),
against the baseline ``GET /api/v3/ping`` measured in the same run. Target: order p50 under 2 ms.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest

N_SEQ = 2000
N_CONC = 4000
IN_FLIGHT = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    data_dir = tmp_path_factory.mktemp("localex")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "oms.localex", "--port", str(port), "--data-dir", str(data_dir),
                             "--no-replay", "--no-rate-limits"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
    q = urllib.parse.urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                "quantity": "0.001", "price": f"{5000 + i % 1000}.00", "newOrderRespType": "ACK",
                                "timestamp": int(time.time() * 1000)})
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
    return {"order_p50_ms": _pct(lat_order, 0.5) * 1e3, "order_p99_ms": _pct(lat_order, 0.99) * 1e3,
            "ping_p50_ms": _pct(lat_ping, 0.5) * 1e3, "ping_p99_ms": _pct(lat_ping, 0.99) * 1e3,
            "order_rps": order_rps, "ping_rps": ping_rps}


def test_order_placement_over_http(exchange) -> None:  # noqa: ANN001
    url, key, secret = exchange
    r = asyncio.run(_run(url, key, secret))
    print(f"\nlocalex HTTP order placement ({N_SEQ} sequential, {N_CONC} with {IN_FLIGHT} in flight):")
    print(f"  POST /api/v3/order  p50 {r['order_p50_ms']:.3f} ms  p99 {r['order_p99_ms']:.3f} ms  "
          f"{r['order_rps']:,.0f} orders/s")
    print(f"  GET /api/v3/ping    p50 {r['ping_p50_ms']:.3f} ms  p99 {r['ping_p99_ms']:.3f} ms  "
          f"{r['ping_rps']:,.0f} req/s (baseline)")
    print(f"  ratio order/ping: p50 {r['order_p50_ms'] / r['ping_p50_ms']:.2f}x, "
          f"throughput {r['order_rps'] / r['ping_rps']:.2f}x")
    assert r["order_rps"] > 0
