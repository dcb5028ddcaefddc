"""The engine loop is compiled once per strategy and found again in Numba's disk cache by a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from backtest.compiled import engine_for
from strategies.market_making import STRATEGY as MM
from strategies.sma_cross import STRATEGY as SMA
from tests.backtest.conftest import DATASETS, REPO

CHILD = f"""
import json, sys, tempfile, time
from pathlib import Path
from backtest.compiled import engine_for
from backtest.data import load_dataset_bars
from backtest.run import Account, run
from backtest.tape import BTCUSDT_SPOT
from kernels.instruments import Instrument
from strategies.sma_cross import STRATEGY as SMA
tape = load_dataset_bars("BTCUSDT", Instrument(BTCUSDT_SPOT), "1h", archive=Path(tempfile.mkdtemp()),
                         datasets=Path({str(DATASETS)!r}))
t = time.process_time()
res = run(SMA, {{"fast_window": 10, "slow_window": 30}}, tape, [Account("a", "100000")])
stats = engine_for(SMA).stats
print(json.dumps({{"seconds": time.process_time() - t, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()), "fingerprint": res.fingerprint()}}))
"""


def _child(cache_dir) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_loop_from_the_cache_and_gets_the_same_result(tmp_path):
    first = _child(tmp_path / "numba")
    second = _child(tmp_path / "numba")
    assert (first["misses"], first["hits"]) == (1, 0)
    assert (second["misses"], second["hits"]) == (0, 1)
    assert second["fingerprint"] == first["fingerprint"]
    print(f"first run {first['seconds']:.2f} s CPU (compile), second process {second['seconds']:.2f} s CPU (cache)")


def test_one_loop_per_strategy_each_named_by_the_digest_of_its_sources():
    a, b = engine_for(SMA), engine_for(MM)
    assert engine_for(SMA) is a and a is not b
    assert a.py_func.__qualname__.startswith("loop_sma_cross_") and len(a.py_func.__qualname__) == 15 + 16
    assert a.py_func.__code__ is b.py_func.__code__  # the very same loop, bound to other callbacks
    assert a.py_func.__globals__["on_market"].py_func is SMA.on_market.py_func
    assert b.py_func.__globals__["on_market"].py_func is MM.on_market.py_func


def test_warming_loads_the_very_signature_a_run_uses(btc_hourly):
    from backtest.compiled import SIGNATURE, warm
    from backtest.run import Account, run

    warm(SMA)
    run(SMA, {"fast_window": 10, "slow_window": 30}, btc_hourly, [Account("a", "100000")], record_equity=False)
    run(SMA, {"fast_window": 10, "slow_window": 30}, btc_hourly, [Account("a", "100000")], progress=lambda d, n: None)
    assert engine_for(SMA).signatures == [SIGNATURE]  # warmed, then found: no second compile
