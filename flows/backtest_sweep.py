"""The ``backtest-sweep`` flow: a parameter grid scored in chunks on a Prefect task runner.

The points are split into ``chunks`` tasks (``score-points`` in the UI, under the ``sweep-points`` subflow, after
its one ``load-tape``). ``runner`` picks where the tasks run:

- ``threads``: Prefect's ThreadPoolTaskRunner in this process (the engine releases the GIL);
- ``processes``: Prefect's ProcessPoolTaskRunner, one process per core;
- ``dask``: prefect-dask's DaskTaskRunner on a running Dask scheduler: the ``dask_address`` parameter
  (``tcp://host:8786``: a cluster of machines, say), else ``$OMS_DASK_ADDRESS``, the platform's standing cluster
  (the ``dask`` service of `oms up`, ``services.dask`` in configs/stream.yaml; the flow runner sets it), else a
  new loopback LocalCluster of ``workers`` processes, with a logged warning saying why that sweep is slow.

A standing cluster is the fast path: its workers are started once, with this module as Dask's preload
(``dask worker --preload flows.backtest_sweep``, or ``standing_cluster()`` / ``python -m flows.backtest_sweep``
on one machine). The preload imports Prefect and the engine and loads the compiled loops from Numba's cache
(``dask_setup``) before the worker takes a task, so a sweep sent to ``dask_address`` pays only its compute and
Prefect's bookkeeping, not a new Python per worker, a cluster start and its shutdown.

What a sweep costs beside its runs is each worker's start, so the work there is kept to what scoring needs:
- the tape is parsed once, in the flow's process, and travels with each chunk (a few MB for the hourly
  history: cheaper than every worker parsing the CSV again, 1.7 s each, measured);
- the worker imports only this module's light dependencies (the report and its matplotlib stay in the flow);
- on Dask every worker loads the strategy's compiled loop from Numba's disk cache (``backtest.compiled.warm``)
  as soon as the cluster is up, while the flow is still loading the tape;
- a point keeps only the equity curve's metrics when the objective is one of them (``evaluate(full=False)``:
  the trade-list analytics cost more than the run on this tape).
The flow publishes the best points as a table artifact and returns every scored point, best first.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from backtest.sweep import evaluate, grid
from backtest.tape import Tape
from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS
from strategies.registry import get

RUNNERS = ("threads", "processes", "dask")
ADDRESS_ENV = "OMS_DASK_ADDRESS"  # the standing cluster's scheduler, set by the flow runner (oms.services.flows)
WARM_ENV = "OMS_SWEEP_WARM"  # the strategy kinds a preloaded worker loads (comma-separated), default sma_cross


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


def _answers(address: str, timeout: float = 2.0) -> bool:
    """True when something accepts a TCP connection at ``tcp://host:port``."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 8786), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def dask_cluster(dask_address: str | None, environ=None) -> tuple[str | None, str | None]:
    """(the scheduler a dask sweep uses, None) or (None, why it starts a cold local cluster instead).

    The ``dask_address`` parameter wins (used as given: a wrong one fails the run, naming it); else
    ``$OMS_DASK_ADDRESS`` when its scheduler answers; else nothing."""
    if dask_address:
        return dask_address, None
    env = os.environ if environ is None else environ
    standing = env.get(ADDRESS_ENV, "").strip()
    if not standing:
        return None, (
            f"no dask_address parameter and no ${ADDRESS_ENV} (the platform's dask service is off: "
            "services.dask.enabled in configs/stream.yaml, or this run is not from the flow runner of `oms up`)"
        )
    if not _answers(standing):
        return None, (
            f"${ADDRESS_ENV}={standing} does not answer (the dask service is down: `oms status`, "
            "`oms services up dask`)"
        )
    return standing, None


@task(name="score-points", cache_policy=NO_CACHE)
def score_points(kind: str, points: list[dict], tape: Tape, cash: str, objective: str) -> list[dict]:
    scored = evaluate(get(kind), points, tape, cash=cash, objective=objective, threads=1, full=False)
    return [{"params": p.params, "score": p.score, "final_usdt": p.metrics["final_usdt"]} for p in scored]


def warm_worker(kind: str) -> None:
    """Run in a worker process: import the engine and load ``kind``'s compiled loop before its first chunk."""
    from backtest.compiled import warm

    warm(get(kind))


def dask_setup(worker=None) -> None:
    """Dask's preload hook (``--preload flows.backtest_sweep``): runs in each worker before its first task.

    Importing this module has already imported Prefect and the engine; this loads the compiled loop of every
    kind in ``$OMS_SWEEP_WARM`` (default ``sma_cross``) from Numba's disk cache. An unknown kind stops the
    worker's start with the registry's error naming it, not a sweep later.
    """
    for kind in (k.strip() for k in os.environ.get(WARM_ENV, "sma_cross").split(",")):
        if kind:
            warm_worker(kind)


def standing_cluster(workers: int = 2, host: str = "127.0.0.1", port: int = 0, threads: int = 1,
                     dashboard_port: int = 0):  # fmt: skip
    """A Dask LocalCluster of ``workers`` processes of ``threads`` threads preloaded with this module
    (``dask_setup``): start it once, pass ``cluster.scheduler_address`` as the flow's ``dask_address`` (or set
    ``$OMS_DASK_ADDRESS``) for every sweep, close it when done. Port 0 picks a free port."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, host=host,
                        scheduler_port=port, dashboard_address=f"{host}:{dashboard_port}",
                        preload=["flows.backtest_sweep"])  # fmt: skip


def _warm_dask_workers(kind: str) -> list:
    """On a Dask runner, one warm-up per worker, pinned to it and started now; their futures (kept: Dask drops
    a task nobody holds). The chunks queue behind them, so none of them loads the loop itself."""
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx else None
    if not isinstance(runner, DaskTaskRunner):
        return []
    client = runner.client
    return [client.submit(warm_worker, kind, workers=[addr], allow_other_workers=False, pure=False)
            for addr in client.scheduler_info(n_workers=-1)["workers"]]  # fmt: skip


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
    """Load the tape once, submit the chunks to this flow's task runner and gather every scored point, best first."""
    from flows.backtest import load_tape  # here, not at the top: a worker never needs the report's matplotlib

    warming = _warm_dask_workers(kind)
    tape = load_tape(**tape_args)
    futures = [score_points.submit(kind, c, tape, cash, objective) for c in chunked(points, chunks)]
    scored = [row for f in futures for row in f.result()]
    for w in warming:
        w.result()  # a failed warm-up is raised, not dropped (the chunks would have failed the same way)
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
    if runner == "dask":
        dask_address, why = dask_cluster(dask_address)
        if why:
            from prefect import get_run_logger

            get_run_logger().warning(
                "backtest-sweep: a cold local Dask cluster of %d workers (about 10 s of start and shutdown before "
                "and after the points) because %s",
                workers,
                why,
            )
        else:
            print(f"backtest-sweep: on the Dask cluster at {dask_address}")
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


def main(argv: list[str] | None = None) -> None:
    """``python -m flows.backtest_sweep [--workers N] [--threads T] [--port P] [--dashboard-port D]``: run a
    standing, preloaded cluster until Ctrl-C or SIGTERM and print the address to pass as ``dask_address`` (the
    platform's ``dask`` service, oms.services.dask_cluster, runs this)."""
    import argparse
    import signal
    import threading

    ap = argparse.ArgumentParser(prog="python -m flows.backtest_sweep", description=main.__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dashboard-port", type=int, default=0)
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.perf_counter()
    with standing_cluster(args.workers, args.host, args.port, args.threads, args.dashboard_port) as cluster:
        print(f"sweep cluster ready in {time.perf_counter() - t0:.1f} s: dask_address={cluster.scheduler_address} "
              f"({args.workers} workers x {args.threads} threads)", flush=True)  # fmt: skip
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
