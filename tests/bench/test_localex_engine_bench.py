"""Benchmark: orders per second through the local exchange's matching engine, one core.

Flow (deterministic, seed 7): 4 accounts on spot BTCUSDT; 60% limit orders that rest near the mid,
25% limit orders that cross (partial and full fills across levels), 15% cancels of a random open order.
Measured three ways in the same run:
- ``api``: ``Exchange.place_order`` / ``cancel_order`` with decimal-string requests (full validation,
  balances, fees, market data, depth bookkeeping), no listeners;
- ``api+events``: the same with one listener receiving every event (what the server pays when clients
  subscribe to every stream); ``api+events, no market-data interest``: the listener with
  ``set_interest(kinds=())`` (the server with user-data streams only: order and account events);
- baseline: a naive list-scan book (best price found by scanning all resting orders), same flow, no
  accounting at all. Printed: orders/s of each and the ratio engine / baseline.
A last, separately timed run prints the mean cost per operation kind (``per_op_costs``): resting adds,
crossing adds, cancels, and the crossing time per trade. The exchange clock is ``itertools.count(T0,
1000).__next__`` (1 us per read, deterministic, no Python frame per read; earlier rounds used a lambda
around ``next`` of a range iterator, the same sequence of values).
The flow keeps thousands of orders open per account, so the exchange is built with Binance's open-order
limit (MAX_NUM_ORDERS, 200 per account and symbol) lifted: the benchmark measures matching, not rejections.
Each engine figure twice: with Python's default garbage collector settings, and with the settings the
server process applies after start-up (``localex.server.runner.tune_gc``: ``gc.freeze()`` and a higher
young-generation threshold), each line labelled.
Every figure is measured twice, each time in a fresh child process: with the compiled engine
(``OMS_ENGINE=compiled``: the mypyc build, which ``make bench`` makes) and with the plain-Python engine (the
reference, ``OMS_ENGINE=python``); the ratio compiled / Python is printed. Headline: compiled, server GC.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localex.engine import ENGINE, ENGINE_REASON, Exchange, ExchangeError, OrderRequest
from localex.engine.markets import default_specs
from localex.server.runner import tune_gc

N_OPS = 60_000
REPEATS = 5  # runs per figure; the median is printed
T0 = 1_700_000_000_000_000_000


def make_flow(n: int, seed: int = 7) -> list[tuple[str, int, str, int, int]]:
    """(kind, account index, side, price ticks, qty lots) with kind 'add' or 'cancel'."""
    rng = random.Random(seed)
    mid = 3_000_000  # 30000.00 in ticks
    flow = []
    for _ in range(n):
        r = rng.random()
        who = rng.randrange(4)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        qty = rng.randint(1, 50) * 100  # 0.001 .. 0.05 BTC
        if r < 0.60:
            off = rng.randint(1, 200)
            price = mid - off if side == "BUY" else mid + off
        elif r < 0.85:
            off = rng.randint(0, 60)
            price = mid + off if side == "BUY" else mid - off
        else:
            flow.append(("cancel", who, side, 0, rng.randrange(1 << 30)))
            continue
        flow.append(("add", who, side, price, qty))
    return flow


@contextmanager
def server_gc() -> Iterator[None]:
    """The server's collector settings (``tune_gc``) for the duration, then Python's previous ones."""
    old = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)
        gc.collect()


def bench_exchange() -> tuple[Exchange, list[str]]:
    """A fresh exchange on the deterministic clock, with the open-order limit lifted (see the docstring), and
    the flow's 4 funded accounts."""
    specs = [dataclasses.replace(s, max_num_orders=1 << 30) for s in default_specs()]
    ex = Exchange(clock=itertools.count(T0, 1000).__next__, specs=specs)  # +1 us per read, no frame per call
    accs = []
    for _ in range(4):
        a = ex.create_account().account_id
        ex.fund(a, "USDT", "1000000000")
        ex.fund(a, "BTC", "100000")
        accs.append(a)
    return ex, accs


def run_engine(
    flow: list[tuple[str, int, str, int, int]], listen: bool, *, interest: bool = False
) -> tuple[float, int, int]:
    """Run ``flow`` through a fresh exchange; ``interest``: the listener wants no market data."""
    ex, accs = bench_exchange()
    spec = ex.spec("spot", "BTCUSDT")
    events = [0]
    if listen:

        def on_event(_e: object) -> None:
            events[0] += 1

        ex.add_listener(on_event)
        if interest:
            ex.set_interest(kinds=())
    reqs: list[OrderRequest | tuple[str, int]] = []
    for kind, who, side, price, qty in flow:
        if kind == "add":
            reqs.append(
                OrderRequest(
                    "spot",
                    "BTCUSDT",
                    side,
                    "LIMIT",
                    quantity=spec.fmt_qty(qty),
                    price=spec.fmt_price(price),
                    time_in_force="GTC",
                )
            )
        else:
            reqs.append((accs[who], qty))
    open_ids: dict[str, list[int]] = {a: [] for a in accs}
    place, cancel = ex.place_order, ex.cancel_order
    done = 0
    t = time.perf_counter()
    for (kind, who, _s, _p, _q), r in zip(flow, reqs, strict=True):
        acc = accs[who]
        if kind == "add":
            res = place(acc, r)  # type: ignore[arg-type]
            if res.order.status in ("NEW", "PARTIALLY_FILLED"):
                open_ids[acc].append(res.order.order_id)
        else:
            ids = open_ids[acc]
            if ids:
                oid = ids.pop(r[1] % len(ids))  # type: ignore[index]
                try:
                    cancel(acc, "spot", "BTCUSDT", oid)
                except ExchangeError:
                    pass  # filled meanwhile: Binance answers -2011 too
        done += 1
    dt = time.perf_counter() - t
    assert not ex.matcher.books[("spot", "BTCUSDT")].crossed()
    trades = ex.matcher.md[("spot", "BTCUSDT")].next_trade_id - 1
    return dt, trades, events[0]


def per_op_costs(flow: list[tuple[str, int, str, int, int]]) -> dict[str, tuple[float, int]]:
    """Mean us per operation kind in a separate run (a timer around each call; not the headline figure).

    Kinds: ``rest`` (an add that trades nothing), ``cross`` (an add that trades), ``cancel`` (a cancel call
    that reached the engine); also ``trades``: (us of all crossing adds / trades, number of trades).
    """
    ex, accs = bench_exchange()
    spec = ex.spec("spot", "BTCUSDT")
    md = ex.matcher.md[("spot", "BTCUSDT")]
    tot = {"rest": [0.0, 0], "cross": [0.0, 0], "cancel": [0.0, 0]}
    open_ids: dict[str, list[int]] = {a: [] for a in accs}
    clock = time.perf_counter
    for kind, who, side, price, qty in flow:
        acc = accs[who]
        if kind == "add":
            r = OrderRequest(
                "spot",
                "BTCUSDT",
                side,
                "LIMIT",
                quantity=spec.fmt_qty(qty),
                price=spec.fmt_price(price),
                time_in_force="GTC",
            )
            tid = md.next_trade_id
            t = clock()
            res = ex.place_order(acc, r)
            dt = clock() - t
            slot = tot["cross" if md.next_trade_id != tid else "rest"]
            if res.order.status in ("NEW", "PARTIALLY_FILLED"):
                open_ids[acc].append(res.order.order_id)
        else:
            ids = open_ids[acc]
            if not ids:
                continue
            oid = ids.pop(qty % len(ids))
            t = clock()
            try:
                ex.cancel_order(acc, "spot", "BTCUSDT", oid)
            except ExchangeError:
                pass
            dt = clock() - t
            slot = tot["cancel"]
        slot[0] += dt
        slot[1] += 1
    out = {k: (v[0] / max(v[1], 1) * 1e6, v[1]) for k, v in tot.items()}
    trades = md.next_trade_id - 1
    out["trades"] = (tot["cross"][0] / max(trades, 1) * 1e6, trades)
    return out


def run_baseline(flow: list[tuple[str, int, str, int, int]]) -> tuple[float, int]:
    """A naive book: lists of [price, seq, qty, id]; best found by a full scan on every match step."""
    bids: list[list[int]] = []
    asks: list[list[int]] = []
    open_ids: dict[int, list[int]] = {i: [] for i in range(4)}
    where: dict[int, list[int]] = {}
    trades = 0
    seq = 0
    t = time.perf_counter()
    for kind, who, side, price, qty in flow:
        if kind == "cancel":
            ids = open_ids[who]
            if ids:
                oid = ids.pop(qty % len(ids))
                o = where.pop(oid, None)
                if o is not None:
                    (bids if o in bids else asks).remove(o)
            continue
        seq += 1
        opp = asks if side == "BUY" else bids
        while qty and opp:
            best = min(opp, key=lambda o: (o[0], o[1])) if side == "BUY" else min(opp, key=lambda o: (-o[0], o[1]))
            if (side == "BUY" and best[0] > price) or (side == "SELL" and best[0] < price):
                break
            take = min(qty, best[2])
            qty -= take
            best[2] -= take
            trades += 1
            if best[2] == 0:
                opp.remove(best)
                where.pop(best[3], None)
        if qty:
            o = [price, seq, qty, seq]
            (bids if side == "BUY" else asks).append(o)
            where[seq] = o
            open_ids[who].append(seq)
    return time.perf_counter() - t, trades


def engine_rates(flow: list[tuple[str, int, str, int, int]]) -> tuple[dict[str, float], int, int]:
    """orders/s of api / api+events / api+events without market-data interest, trades, events.

    Each figure is the median of ``REPEATS`` runs (each on a fresh exchange), interleaved so that a slow
    spell of the machine does not hit one figure only; ``api_min`` / ``api_max`` give the spread of ``api``.
    """
    n = len(flow)
    dts: dict[str, list[float]] = {"api": [], "events": [], "interest": []}
    for _ in range(REPEATS):
        e_dt, e_trades, _ = run_engine(flow, listen=False)
        l_dt, l_trades, n_events = run_engine(flow, listen=True)
        i_dt, i_trades, _ = run_engine(flow, listen=True, interest=True)
        assert e_trades == l_trades == i_trades > 0
        dts["api"].append(e_dt)
        dts["events"].append(l_dt)
        dts["interest"].append(i_dt)
    out = {k: n / statistics.median(v) for k, v in dts.items()}
    out["api_min"], out["api_max"] = n / max(dts["api"]), n / min(dts["api"])
    return out, e_trades, n_events


def measure(flow: list[tuple[str, int, str, int, int]]) -> dict[str, object]:
    """Every figure of the engine this process loaded (what a child prints; see ``engine_in_child``)."""
    base_n = 15_000  # the naive book is quadratic; measure it on a prefix and report per-op rates
    b_dt, b_trades = run_baseline(flow[:base_n])
    rates, trades, n_events = engine_rates(flow)
    p_dt, _, _ = run_engine(flow[:base_n], listen=False)
    gc.collect()
    with server_gc():
        srv, _, _ = engine_rates(flow)
    costs = per_op_costs(flow)
    return {
        "engine": ENGINE,
        "reason": ENGINE_REASON,
        "default": rates,
        "server": srv,
        "trades": trades,
        "events": n_events,
        "base_n": base_n,
        "baseline": base_n / b_dt,
        "baseline_trades": b_trades,
        "prefix": base_n / p_dt,
        "costs": costs,
    }


def engine_in_child(engine: str) -> dict[str, Any]:
    """``measure`` in a fresh interpreter with ``OMS_ENGINE=engine``: both implementations are timed with the
    same heap (only the engine and this module loaded), not with whatever pytest and the other benchmark
    modules put in this process (a larger heap makes the default collector's full collections slower)."""
    env = dict(os.environ, OMS_ENGINE=engine)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.test_localex_engine_bench"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["engine"] == engine
    return out


@pytest.mark.bench
def test_matching_engine_orders_per_second() -> None:
    c = engine_in_child("compiled")  # fails with the reason when there is no usable build (make bench builds it)
    py = engine_in_child("python")
    print(
        f"\nlocalex engine, {N_OPS} ops (60% resting adds, 25% crossing, 15% cancels), {c['trades']} trades; "
        f"each implementation in its own fresh process; medians of {REPEATS} runs"
    )
    print(f"  compiled: {c['reason']}")
    for label, key in (("default GC", "default"), ("server GC ", "server")):
        r, q = c[key], py[key]
        print(
            f"  [{label}] engine api                        : {r['api']:10,.0f} orders/s compiled, "
            f"{q['api']:10,.0f} Python ({r['api'] / q['api']:.2f}x); compiled runs "
            f"{r['api_min']:,.0f}..{r['api_max']:,.0f}"
        )
        print(
            f"  [{label}] engine api + events (all)         : {r['events']:10,.0f} orders/s compiled, "
            f"{q['events']:10,.0f} Python ({r['events'] / q['events']:.2f}x) ({c['events']} events)"
        )
        print(
            f"  [{label}] engine api + events (no md wanted): {r['interest']:10,.0f} orders/s compiled, "
            f"{q['interest']:10,.0f} Python ({r['interest'] / q['interest']:.2f}x)"
        )
    for impl, d in (("compiled", c), ("Python  ", py)):
        print(
            f"  [default GC] {impl} us per operation (separate timed run): "
            + ", ".join(f"{k} {us:.2f} us (x{n})" for k, (us, n) in d["costs"].items())
        )
    print("  (trades: us of all crossing adds / number of trades)")
    n = c["base_n"]
    print(
        f"  baseline naive list-scan: {c['baseline']:10,.0f} orders/s on the first {n} ops "
        f"({c['baseline_trades']} trades)"
    )
    print(
        f"  engine on the same {n}-op prefix (default GC): {c['prefix']:10,.0f} orders/s compiled "
        f"({c['prefix'] / c['baseline']:.1f}x the baseline), {py['prefix']:10,.0f} Python "
        f"({py['prefix'] / py['baseline']:.1f}x)"
    )
    print("  target 200,000 orders/s on one core (headline: compiled engine api, server GC)")
    try:
        with open("/proc/loadavg") as f:
            print(f"  load average: {f.read().split()[0]} (figures vary with the machine's load)")
    except OSError:
        pass


if __name__ == "__main__":  # the child of ``engine_in_child``: every figure of whichever engine loaded
    print(json.dumps(measure(make_flow(N_OPS))))
