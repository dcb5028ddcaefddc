"""Record Binance payloads from a local exchange into ``tests/venues/payloads/binance/<channel>.json``.

``python -m tests.venues.binance.record_payloads`` starts a local exchange, listens with the unmodified
python-binance client (combined market streams, the Spot WebSocket-API user stream, the USD-M listenKey
stream), trades a little, and writes what arrived, by channel. Each file is a JSON list of
``{"source": ..., "frame": {...}}``; entries whose ``source`` starts with ``binance-docs`` are the shapes of
Binance's own documentation, kept by hand so the parsers also meet Binance's extra fields. Re-recording keeps
those and replaces the ``localex`` ones.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from localex.clients import binance_async, binance_socket_manager
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from tests.localex.conftest import free_port, start_server

OUT = Path(__file__).resolve().parents[1] / "payloads" / "binance"
PER_CHANNEL = 6
STREAMS = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@depth@100ms", "btcusdt@kline_1m"]
FSTREAMS = [*STREAMS, "btcusdt@markPrice@1s"]


def _channel(stream: str, market: str) -> str:
    channel = stream.partition("@")[2].split("@")[0]
    if channel.startswith("kline"):
        channel = "kline"
    return f"{market}_{channel}"


async def _collect_market(client: Any, url: str, out: dict[str, list[dict[str, Any]]], stop: asyncio.Event) -> None:
    bsm = binance_socket_manager(client, url)
    spot = bsm.multiplex_socket(STREAMS)
    fut = bsm.futures_multiplex_socket(FSTREAMS)
    async with spot as s, fut as f:
        while not stop.is_set():
            for sock, market in ((s, "spot"), (f, "usdm")):
                try:
                    msg = await asyncio.wait_for(sock.recv(), 0.2)
                except TimeoutError:
                    continue
                if "stream" in msg:
                    bucket = out[_channel(msg["stream"], market)]
                    if len(bucket) < PER_CHANNEL:
                        bucket.append(msg["data"])


async def _collect_user(client: Any, url: str, out: dict[str, list[dict[str, Any]]], stop: asyncio.Event) -> None:
    bsm = binance_socket_manager(client, url)
    async with bsm.user_socket() as us, bsm.futures_user_socket() as fs:
        while not stop.is_set():
            for sock in (us, fs):
                try:
                    msg = await asyncio.wait_for(sock.recv(), 0.2)
                except TimeoutError:
                    continue
                kind = msg.get("e", "unknown")
                bucket = out[kind]
                if len(bucket) < PER_CHANNEL:
                    bucket.append(msg)


async def _trade(client: Any, server: Any) -> None:
    await asyncio.sleep(1.0)
    await client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    book = await client.get_order_book(symbol="BTCUSDT", limit=5)
    low = f"{float(book['bids'][-1][0]) * 0.9:.2f}"
    placed = await client.create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=low
    )
    await client.cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
    price = server.resting_futures_price()
    qty = f"{200 / float(price):.3f}"  # above USD-M's 100 USDT minimum notional
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    fplaced = await client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty, price=price
    )
    await client.futures_cancel_order(symbol="BTCUSDT", orderId=fplaced["orderId"])
    await client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity=qty)
    await asyncio.sleep(3.0)


async def record(server: Any) -> dict[str, list[dict[str, Any]]]:
    _, key, secret = server.new_account(spot={"USDT": "100000"}, futures={"USDT": "100000"})
    client = await binance_async(server.url, key, secret)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stop = asyncio.Event()
    try:
        tasks = [
            asyncio.create_task(_collect_market(client, server.url, out, stop)),
            asyncio.create_task(_collect_user(client, server.url, out, stop)),
        ]
        await _trade(client, server)
        stop.set()
        await asyncio.gather(*tasks)
        out["spot_order_response"] = [await client.get_all_orders(symbol="BTCUSDT")][0][:PER_CHANNEL]
        out["usdm_order_response"] = (await client.futures_get_all_orders(symbol="BTCUSDT"))[:PER_CHANNEL]
        out["spot_my_trades"] = (await client.get_my_trades(symbol="BTCUSDT"))[:PER_CHANNEL]
        out["usdm_user_trades"] = (await client.futures_account_trades(symbol="BTCUSDT"))[:PER_CHANNEL]
        out["spot_depth_snapshot"] = [await client.get_order_book(symbol="BTCUSDT", limit=20)]
        out["usdm_depth_snapshot"] = [await client.futures_order_book(symbol="BTCUSDT", limit=20)]
    finally:
        await client.close_connection()
    return out


def write(frames: dict[str, list[dict[str, Any]]]) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for channel, rows in sorted(frames.items()):
        path = OUT / f"{channel}.json"
        kept = []
        if path.exists():
            kept = [r for r in json.loads(path.read_text()) if str(r.get("source", "")).startswith("binance-docs")]
        rows_out = kept + [{"source": "localex (recorded by record_payloads.py)", "frame": r} for r in rows]
        path.write_text(json.dumps(rows_out, indent=1) + "\n")
        written.append(path)
    return written


def main() -> None:
    limits = RateLimitConfig(enabled=False)
    config = ServerConfig(port=free_port(), rate_limits=limits, speed=600.0, replay_interval_s=0.1)
    gen = start_server(config)
    server = next(gen)
    try:
        frames = asyncio.run(record(server))
    finally:
        gen.close()
    for path in write(frames):
        print(path.relative_to(OUT.parents[3]))


if __name__ == "__main__":
    main()
