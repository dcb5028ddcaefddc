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
server process applies after start-up (``oms.localex.server.runner.tune_gc``: ``gc.freeze()`` and a higher
young-generation threshold), each line labelled.
The headline runs the engine this process loaded (``oms.localex.engine.ENGINE``: the mypyc build when one
matches the sources, as ``make bench`` ensures); the same flow through the plain-Python engine (the
reference) runs in a child process with ``OMS_ENGINE=python``, and the ratio compiled / Python is printed.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from oms.localex.engine import ENGINE, ENGINE_REASON, Exchange, ExchangeError, OrderRequest
from oms.localex.engine.markets import default_specs
from oms.localex.server.runner import tune_gc

N_OPS = 60_000
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


def run_engine(flow: list[tuple[str, int, str, int, int]], listen: bool, *,
               interest: bool = False) -> tuple[float, int, int]:
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
            reqs.append(OrderRequest("spot", "BTCUSDT", side, "LIMIT", quantity=spec.fmt_qty(qty),
                                     price=spec.fmt_price(price), time_in_force="GTC"))
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
            r = OrderRequest("spot", "BTCUSDT", side, "LIMIT", quantity=spec.fmt_qty(qty),
                             price=spec.fmt_price(price), time_in_force="GTC")
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
            best = min(opp, key=lambda o: (o[0], o[1])) if side == "BUY" else \
                min(opp, key=lambda o: (-o[0], o[1]))
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
    """orders/s of api / api+events / api+events without market-data interest, trades, events."""
    n = len(flow)
    e_dt, e_trades, _ = run_engine(flow, listen=False)
    l_dt, l_trades, n_events = run_engine(flow, listen=True)
    i_dt, i_trades, i_events = run_engine(flow, listen=True, interest=True)
    assert e_trades == l_trades == i_trades > 0
    return {"api": n / e_dt, "events": n / l_dt, "interest": n / i_dt}, e_trades, n_events


def python_engine_rates() -> dict[str, float]:
    """orders/s of ``api`` through the plain-Python engine (child process, ``OMS_ENGINE=python``), with
    default and server GC settings."""
    env = dict(os.environ, OMS_ENGINE="python")
    proc = subprocess.run([sys.executable, "-m", "tests.bench.test_localex_engine_bench"], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=900,
                          check=True)
    return json.loads(proc.stdout)


@pytest.mark.bench
def test_matching_engine_orders_per_second() -> None:
    flow = make_flow(N_OPS)
    base_n = 15_000  # the naive book is quadratic; measure it on a prefix and report per-op rates
    b_dt, b_trades = run_baseline(flow[:base_n])
    rates, e_trades, n_events = engine_rates(flow)
    p_dt, _, _ = run_engine(flow[:base_n], listen=False)
    gc.collect()
    with server_gc():
        srv, _, _ = engine_rates(flow)
    base_rate = base_n / b_dt
    prefix_rate = base_n / p_dt
    py = python_engine_rates() if ENGINE == "compiled" else None
    print(f"\nlocalex engine, {N_OPS} ops (60% resting adds, 25% crossing, 15% cancels), {e_trades} trades")
    print(f"  engine implementation: {ENGINE} ({ENGINE_REASON})")
    for label, r in (("default GC", rates), ("server GC ", srv)):
        print(f"  [{label}] engine api                        : {r['api']:12,.0f} orders/s")
        print(f"  [{label}] engine api + events (all)         : {r['events']:12,.0f} orders/s ({n_events} events)")
        print(f"  [{label}] engine api + events (no md wanted): {r['interest']:12,.0f} orders/s")
    print(f"  [default GC] engine, first {base_n} ops      : {prefix_rate:12,.0f} orders/s")
    costs = per_op_costs(flow)
    print("  [default GC] us per operation (separate timed run): " + ", ".join(
        f"{k} {us:.2f} us (x{n})" for k, (us, n) in costs.items()) + "  [trades: us of crossing adds per trade]")
    print(f"  baseline naive list-scan: {base_rate:12,.0f} orders/s on the first {base_n} ops "
          f"({b_trades} trades)")
    print(f"  ratio engine / baseline : {prefix_rate / base_rate:10.2f}x (same {base_n}-op prefix, default GC)")
    if py is not None:
        for label, key, r in (("default GC", "default", rates), ("server GC ", "server", srv)):
            print(f"  [{label}] plain-Python engine api (child process): {py[key]:12,.0f} orders/s; "
                  f"compiled / Python {r['api'] / py[key]:.2f}x")
    print("  target 200,000 orders/s on one core (headline: engine api, server GC)")
    try:
        with open("/proc/loadavg") as f:
            print(f"  load average: {f.read().split()[0]} (figures vary with the machine's load)")
    except OSError:
        pass


if __name__ == "__main__":  # the child of ``python_engine_rates``: api figures of whichever engine loaded
    _flow = make_flow(N_OPS)
    _default = N_OPS / run_engine(_flow, listen=False)[0]
    gc.collect()
    with server_gc():
        _server = N_OPS / run_engine(_flow, listen=False)[0]
    print(json.dumps({"engine": ENGINE, "default": _default, "server": _server}))
