"""The ``backtest-sweep`` flow: a parameter grid scored in chunks on a Prefect task runner.

The points are split into ``chunks`` tasks; each worker loads the tape itself, once (so only names and
numbers travel to the workers), runs its points through the compiled engine (``backtest.sweep.evaluate`` on one
thread) and returns their scores. ``runner`` picks where the tasks run:

- ``threads``: Prefect's ThreadPoolTaskRunner in this process (the engine releases the GIL);
- ``processes``: Prefect's ProcessPoolTaskRunner, one process per core;
- ``dask``: prefect-dask's DaskTaskRunner, on a new loopback LocalCluster of ``workers`` processes, or on the
  running Dask scheduler at ``dask_address`` (``tcp://host:8786``) when given: a cluster of machines.

Each worker process compiles the engine at most once: the loop is cached on disk by Numba
(``backtest.compiled``), so a fresh worker loads it instead. The flow publishes the best points as a
table artifact and returns every scored point, best first.
"""

from __future__ import annotations

import functools
import time

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from backtest.sweep import evaluate, grid
from flows.backtest import load_tape
from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS
from strategies.registry import get

RUNNERS = ("threads", "processes", "dask")


def task_runner(runner: str, workers: int, dask_address: str | None = None):
    """The Prefect task runner named ``runner`` (ValueError naming the known ones)."""
    if runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner == "processes":
        return ProcessPoolTaskRunner(max_workers=workers)
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        # on loopback, scheduler and dashboard on free ports (Dask's default dashboard port may be taken)
        local = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
                 "dashboard_address": "127.0.0.1:0"}  # fmt: skip
        return DaskTaskRunner(cluster_kwargs=local)
    raise ValueError(f"unknown task runner {runner!r} (one of {', '.join(RUNNERS)})")


@functools.lru_cache(maxsize=4)
def _tape(args: tuple):
    """The tape, loaded once per worker process (a worker runs many chunks of the same sweep)."""
    return load_tape.fn(**dict(args))


@task(name="score-points", cache_policy=NO_CACHE)
def score_points(kind: str, points: list[dict], tape_args: dict, cash: str, objective: str) -> list[dict]:
    tape = _tape(tuple(sorted(tape_args.items())))
    scored = evaluate(get(kind), points, tape, cash=cash, objective=objective, threads=1)
    return [{"params": p.params, "score": p.score, "final_usdt": p.metrics["final_usdt"]} for p in scored]


def chunked(points: list[dict], chunks: int) -> list[list[dict]]:
    """``points`` in at most ``chunks`` contiguous, non-empty parts of near-equal size."""
    chunks = max(1, min(chunks, len(points)))
    size, extra = divmod(len(points), chunks)
    out, start = [], 0
    for c in range(chunks):
        end = start + size + (1 if c < extra else 0)
        out.append(points[start:end])
        start = end
    return [c for c in out if c]


@flow(name="sweep-points")
def sweep_points(
    kind: str, points: list[dict], tape_args: dict, cash: str = "100000", objective: str = "sharpe", chunks: int = 8
) -> list[dict]:
    """Submit the chunks to this flow's task runner and gather every scored point, best first."""
    futures = [score_points.submit(kind, c, tape_args, cash, objective) for c in chunked(points, chunks)]
    scored = [row for f in futures for row in f.result()]
    return sorted(scored, key=lambda r: r["score"], reverse=True)


@flow(name="backtest-sweep", log_prints=True)
def backtest_sweep(
    kind: str = "sma_cross",
    space: dict | None = None,
    points: list[dict] | None = None,
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    market: str = "spot",
    cash: str = "100000",
    objective: str = "sharpe",
    runner: str = "threads",
    workers: int = 2,
    chunks: int = 8,
    dask_address: str | None = None,
    archive: str = str(DEFAULT_ARCHIVE),
    datasets: str = str(DEFAULT_DATASETS),
) -> dict:
    """Score every point of ``space`` (name -> list of values; its grid) or the given ``points``.

    Returns {"points": every scored point, best first, "best", "seconds": the scoring's wall time}.
    """
    space = space or {"fast_window": list(range(5, 30, 5)), "slow_window": list(range(30, 130, 20))}
    points = points if points is not None else grid(space)
    tape_args = {"symbol": symbol, "interval": interval, "market": market, "archive": archive,
                 "datasets": datasets, "leverage": 1}  # fmt: skip
    inner = sweep_points.with_options(task_runner=task_runner(runner, workers, dask_address))
    t0 = time.perf_counter()
    scored = inner(kind, points, tape_args, cash, objective, chunks)
    seconds = time.perf_counter() - t0
    if not scored:
        raise ValueError(f"backtest-sweep: no valid parameter set among {len(points)} points for {kind!r}")
    create_table_artifact(
        [{"rank": r + 1, **row["params"], objective: round(row["score"], 4), "final_usdt": row["final_usdt"]}
         for r, row in enumerate(scored[:20])],
        key=f"backtest-sweep-{kind}".replace("_", "-"),
        description=f"{kind}: best of {len(scored)} points on {symbol} {interval} ({runner}, {seconds:.1f} s)",
    )  # fmt: skip
    print(f"{kind}: {len(scored)} points in {seconds:.2f} s on {runner}; best {scored[0]['params']}")
    return {"points": scored, "best": scored[0], "seconds": seconds}
