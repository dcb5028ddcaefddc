"""Benchmarks of the Binance connector, each beside a baseline measured in the same run.

* Decode a user-data frame into a model event (target p50 <= 3 us): a Spot ``executionReport`` from its bytes
  (``msgspec`` into the wire struct, then ``parse_to_order_event``) and from the dict python-binance hands on
  (``msgspec.convert``), and a USD-M ``ORDER_TRADE_UPDATE`` from its bytes; baseline ``json.loads`` plus
  reading the same fields from the dict.
* A depth-diff frame (20 bid + 20 ask levels, as recorded) into the book kernel (target p50 <= 5 us):
  ``DepthUnits.decode`` + ``kernels.book.apply_diff``; for comparison the model path (``DepthDiff`` of
  strings, ``Instrument`` conversions per level, then the kernel); baseline ``json.loads`` + reading levels.
* Encode and sign an order (target p50 <= 5 us): ``place_params`` from a ``PlaceOrder``, python-binance's own
  WebSocket-API signing (``_sign_ws_params``), the JSON frame; baseline raw ``hmac``/``hashlib`` over the
  same query string.
* Order round trip to the local exchange (run as its own process) through the connector: over the
  WebSocket API and over REST, orders alternating between the two, p50 and p99 of the transport's own
  send-to-answer time (the WebSocket path must be the faster at p50); the time ``place`` also spends waiting
  for the account's order budget is reported apart.

Micro-benchmarks time batches of ``BATCH`` calls and report the p50/p99 of the per-call mean over ``ROUNDS``
batches (timer overhead excluded); the machine's load moves the absolute numbers, the ratios much less.
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
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pytest

from kernels import book as kbook
from oms.keys import Credentials
from oms.model import AccountId, Instrument, InstrumentSpec, Market, PlaceOrder
from oms.venues.binance import BinanceConnector, parse
from oms.venues.binance import wire_market as wm
from oms.venues.binance import wire_user as wu
from oms.venues.binance.client import build_client
from oms.venues.binance.config import BinanceSettings
from oms.venues.binance.depth_units import DepthUnits
from oms.venues.binance.orders import place_params
from oms.venues.binance.signing import WsSigner
from oms.venues.binance.symbols import SymbolTable
from oms.venues.clock import ServerClock
from oms.venues.interface import Endpoints, VenueContext
from oms.venues.ratelimit import AccountLimits, RateLimits
from stream.depth import BookFeed
from tests.bench.timing import free_port, pct, per_call_us

pytestmark = pytest.mark.bench
PAYLOADS = Path(__file__).resolve().parents[1] / "venues" / "payloads" / "binance"
BATCH = 200
ROUNDS = 200
N_ROUND_TRIPS = 400
WARM_UP = 50


def _frame(channel: str, i: int) -> dict:
    return json.loads((PAYLOADS / f"{channel}.json").read_text())[i]["frame"]


def _spec(symbol: str, tick: str, step: str, perp: bool) -> InstrumentSpec:
    base, quote = "BTC", "USDT"
    return InstrumentSpec(
        symbol=symbol, kind="perp" if perp else "spot", tick_size=tick, step_size=step, venue_symbol="BTCUSDT",
        base_asset=base, quote_asset=quote, settle_asset=quote if perp else "",
    )  # fmt: skip


SPOT_SPEC = _spec("BTC/USDT", "0.01", "0.00001", False)
USDM_SPEC = _spec("BTC/USDT:USDT", "0.10", "0.001", True)
SPOT = SymbolTable(Market.SPOT, [SPOT_SPEC])
USDM = SymbolTable(Market.USDM, [USDM_SPEC])


def report(title: str, rows: list[tuple[str, tuple[float, float]]], baseline: tuple[float, float]) -> None:
    print(f"\n{title}")
    for name, (p50, p99) in rows:
        print(f"  {name:<58} p50 {p50:8.2f} us  p99 {p99:8.2f} us  ({p50 / baseline[0]:.2f}x baseline)")
    print(f"  {'baseline':<58} p50 {baseline[0]:8.2f} us  p99 {baseline[1]:8.2f} us")


def test_decode_user_frames_into_model_events() -> None:
    er = _frame("executionReport", 2)  # a TRADE with its fill
    otu = _frame("ORDER_TRADE_UPDATE", 2)
    er_bytes, otu_bytes = orjson.dumps(er), orjson.dumps(otu)
    acct = "binance/sub_mm"

    def spot_bytes():
        return parse.parse_to_order_event(wu.decode_spot_user(er_bytes), acct, SPOT)

    def spot_dict():
        return parse.parse_to_order_event(wu.convert_spot_user(er), acct, SPOT)

    def futures_bytes():
        return parse.parse_to_futures_order_event(wu.decode_futures_user(otu_bytes), acct, USDM)

    fields = ("E", "s", "c", "S", "o", "f", "q", "p", "x", "X", "i", "l", "z", "L", "n", "T", "t", "O", "Z")

    def baseline():
        d = json.loads(er_bytes)
        return {k: d[k] for k in fields}

    assert spot_bytes().fill is not None and futures_bytes().fill is not None
    base = per_call_us(baseline)
    rows = [
        ("executionReport bytes -> OrderEvent (+Fill)", per_call_us(spot_bytes)),
        ("executionReport dict (python-binance) -> OrderEvent (+Fill)", per_call_us(spot_dict)),
        ("ORDER_TRADE_UPDATE bytes -> OrderEvent (+Fill)", per_call_us(futures_bytes)),
    ]
    report("Binance user-data frame -> model event (target p50 <= 3 us); baseline json.loads + dict access", rows, base)


def test_depth_diff_frame_into_the_book_kernel() -> None:
    frame = _frame("spot_depth", 2)
    assert len(frame["b"]) == 20 and len(frame["a"]) == 20
    inst = Instrument(SPOT_SPEC)
    units = DepthUnits(inst, "BTCUSDT")
    lv, meta = kbook.new_books(1, 4096)
    first = units.decode(orjson.dumps(frame))
    kbook.apply_snapshot(
        lv,
        meta,
        0,
        first.prices[:20].copy(),
        first.qtys[:20].copy(),
        first.prices[20:].copy(),
        first.qtys[20:].copy(),
        0,
    )
    frames = []
    for k in range(1, 2 * (ROUNDS * BATCH + BATCH) + 4):  # contiguous ids: every diff applies
        frames.append(orjson.dumps({**frame, "U": k, "u": k}))
    it = iter(frames)

    def fast():
        f = units.decode(next(it))
        return kbook.apply_diff(lv, meta, 0, f.first_id, f.last_id, -1, f.sides, f.prices, f.qtys)

    assert fast() == kbook.APPLIED
    fast_r = per_call_us(fast)
    model_frames = iter(frames)
    lv2, meta2 = kbook.new_books(1, 4096)
    kbook.apply_snapshot(
        lv2,
        meta2,
        0,
        first.prices[:20].copy(),
        first.qtys[:20].copy(),
        first.prices[20:].copy(),
        first.qtys[20:].copy(),
        0,
    )

    def model():
        d = parse.parse_to_depth_diff(wm.DEPTH_DECODER.decode(next(model_frames)), "binance", SPOT)
        sides = [0] * len(d.bids) + [1] * len(d.asks)
        px = [inst.price(p) for p, _ in d.bids] + [inst.price(p) for p, _ in d.asks]
        qt = [inst.qty(q) for _, q in d.bids] + [inst.qty(q) for _, q in d.asks]
        arr = [np.array(x, dtype=np.int64) for x in (sides, px, qt)]
        return kbook.apply_diff(lv2, meta2, 0, d.first_update_id, d.last_update_id, -1, *arr)

    model_r = per_call_us(model, batch=20, rounds=50)
    raw = frames[0]

    def baseline():
        d = json.loads(raw)
        return [(p, q) for p, q in d["b"]] + [(p, q) for p, q in d["a"]]

    lv3, meta3 = kbook.new_books(1, 4096)
    kbook.apply_snapshot(
        lv3, meta3, 0, first.prices[:20].copy(), first.qtys[:20].copy(), first.prices[20:].copy(),
        first.qtys[20:].copy(), 0,
    )  # fmt: skip
    feed = BookFeed(units, lv3, meta3, 0)
    feed_frames = iter(frames)
    assert feed.apply(next(feed_frames)) == kbook.APPLIED
    feed_r = per_call_us(lambda: feed.apply(next(feed_frames)))
    rows = [
        ("depth frame -> stream.depth.BookFeed (scan + apply, one call)", feed_r),
        ("depth frame -> DepthUnits -> kernels.book.apply_diff", fast_r),
        ("model path: DepthDiff strings -> Instrument -> kernel", model_r),
    ]
    report(
        "Binance depth diff (40 levels) -> book kernel (target p50 <= 5 us); baseline json.loads + levels",
        rows,
        per_call_us(baseline),
    )


def test_encode_and_sign_an_order() -> None:
    async def make_client():
        return build_client(
            Endpoints("http://127.0.0.1:1", "ws://127.0.0.1:1", "ws://127.0.0.1:1/ws-api/v3"),
            Market.SPOT, BinanceSettings(), "k" * 64, "s" * 64, lambda h: None, lambda r: None,
        )  # fmt: skip

    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(make_client())
    cmd = PlaceOrder(
        account="binance/sub_mm", symbol="BTC/USDT", side="buy", order_type="limit", qty="0.01000", price="29000.50"
    ).with_client_order_id()

    signer = WsSigner("k" * 64, "s" * 64)

    def connector_path():
        params = signer.sign(place_params(cmd, Market.SPOT, SPOT, 5000), 1_796_000_000_000)
        return orjson.dumps({"id": "1", "method": "order.place", "params": params})

    def library_path():
        params = place_params(cmd, Market.SPOT, SPOT, 5000)
        signed = client._sign_ws_params(params, client._generate_ws_api_signature)
        return orjson.dumps({"id": "1", "method": "order.place", "params": signed})

    secret = ("s" * 64).encode()
    query = signer.payload(connector_path and signer.sign(place_params(cmd, Market.SPOT, SPOT, 5000), 1))

    def baseline():
        return hmac.new(secret, query.encode(), hashlib.sha256).hexdigest()

    check = signer.sign(place_params(cmd, Market.SPOT, SPOT, 5000), 1)
    assert check["signature"] == hmac.new(secret, signer.payload(check).encode(), hashlib.sha256).hexdigest()
    rows = [
        ("PlaceOrder -> params -> WsSigner -> order.place frame", per_call_us(connector_path)),
        ("same, signed by python-binance's _sign_ws_params", per_call_us(library_path)),
    ]
    report(
        "Encode and sign an order (target p50 <= 5 us); baseline raw hmac-sha256 of the query",
        rows,
        per_call_us(baseline),
    )
    loop.run_until_complete(client.session.close())
    loop.close()


# ---- round trips ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("localex")
    port = free_port()
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


async def _round_trips(url: str, key: str, secret: str) -> dict[str, list[float]]:
    """Orders placed alternately over the WebSocket API and over REST (one connector, one process, one warm-up
    per path first), so load on the machine falls on both alike. A round trip is the transport's own record:
    from the request leaving to its answer decoded. The whole ``place`` call is timed too: it also waits for
    the account's order budget, and Binance's 100 orders per 10 s (which the limiter adopts from the venue's
    answers) is what made the old sequential figure's p99 seconds."""
    connector = BinanceConnector()
    ws = "ws://" + url.split("://", 1)[1]
    meta = connector.metadata("binance", Market.SPOT)
    account = AccountId("binance", "bench")
    clock = ServerClock(name="binance/spot")
    limiter = RateLimits().account(str(account), "spot", AccountLimits(10**7, 10**7, 10**8, 5), meta)
    ctx = VenueContext(
        account=account,
        market=Market.SPOT,
        endpoints=Endpoints(url, ws, f"{ws}/ws-api/v3"),
        limiter=limiter,
        clock=clock,
        credentials=Credentials("binance", "spot", "bench", key, secret),
        options={"ws_api_timeout_s": 5.0},
    )
    instruments = connector.instrument_provider(ctx)
    await instruments.load()
    execution = connector.execution_client(ctx, instruments)
    clock.bind(execution.server_time_ns)
    await clock.resync()
    out: dict[str, list[float]] = {"ws": [], "rest": [], "ws place": [], "rest place": []}
    transport = execution.session.transport
    try:
        for i in range(2 * (N_ROUND_TRIPS + WARM_UP)):
            path = ("ws", "rest")[i % 2]
            transport.ws_enabled = path == "ws"  # type: ignore[union-attr]
            cmd = PlaceOrder(
                account=str(account), symbol="BTC/USDT", side="buy", order_type="limit", qty="0.001",
                price=f"{5000 + i % 1000}.00", intent=f"{path}-{i}",
            ).with_client_order_id()  # fmt: skip
            t0 = time.perf_counter()
            await execution.place(cmd)
            took = (time.perf_counter() - t0) * 1e3
            record = execution.session.log.records[-1]
            assert (record.op, record.path, record.outcome) == ("place", path, "ok"), record
            if i >= 2 * WARM_UP:
                out[path].append(record.latency_ns / 1e6)
                out[f"{path} place"].append(took)
    finally:
        await execution.close()
    out["budget wait s"] = [limiter.waited_s]
    return out


def test_order_round_trip_ws_api_versus_rest(exchange) -> None:
    url, key, secret = exchange
    lat = asyncio.run(_round_trips(url, key, secret))

    print(
        f"\nBinance connector order round trip to the local exchange ({N_ROUND_TRIPS} LIMIT orders per path, "
        f"alternating, after {WARM_UP} each):"
    )
    for path, name in (("ws", "WebSocket API (order.place)"), ("rest", "REST (POST /api/v3/order), baseline")):
        print(f"  {name:<38} p50 {pct(lat[path], 0.5):7.3f} ms  p99 {pct(lat[path], 0.99):7.3f} ms")
    for path in ("ws", "rest"):
        print(f"  {path + ' whole place() call':<38} p50 {pct(lat[f'{path} place'], 0.5):7.3f} ms")
    waits = sum(t - r > 100 for p in ("ws", "rest") for t, r in zip(lat[f"{p} place"], lat[p], strict=True))
    print(f"  ratio ws/rest p50 {pct(lat['ws'], 0.5) / pct(lat['rest'], 0.5):.2f}x")
    print(
        f"  {waits} place() calls waited for the order budget (Binance's 100 orders / 10 s), "
        f"{lat['budget wait s'][0]:.1f} s in all: not in the round trips above"
    )
    assert pct(lat["ws"], 0.5) < pct(lat["rest"], 0.5), "the WebSocket API path must be the faster"
