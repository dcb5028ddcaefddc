"""The backtest-sweep flow on a real Prefect server: chunks scored on a Dask LocalCluster (prefect-dask)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from backtest.sweep import evaluate, grid
from strategies.sma_cross import STRATEGY as SMA
from tests.backtest.conftest import DATASETS

SPACE = {"fast_window": [5, 10, 40], "slow_window": [20, 30, 60]}


def test_chunks_cover_every_point_once_in_order(prefect_server):  # the server first: prefect reads it on import
    from flows.backtest_sweep import chunked

    pts = list(range(10))
    assert chunked(pts, 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert chunked(pts, 50) == [[p] for p in pts]
    assert chunked([], 4) == []


def test_an_unknown_runner_is_refused_by_name(prefect_server):
    from flows.backtest_sweep import task_runner

    with pytest.raises(ValueError, match="unknown task runner 'gpu' \\(one of threads, processes, dask\\)"):
        task_runner("gpu", 2)


@pytest.mark.timeout(600)
def test_the_sweep_runs_on_a_dask_cluster_and_scores_like_the_engine(prefect_server, tmp_path, btc_hourly):
    from prefect import get_client

    from flows.backtest_sweep import backtest_sweep

    out = backtest_sweep(kind="sma_cross", space=SPACE, runner="dask", workers=2, chunks=3,
                         archive=str(tmp_path / "none"), datasets=str(DATASETS))  # fmt: skip
    # 9 points, of which 40/20 and 40/30 are refused by the parameter model
    expected = {tuple(p.params.values()): p.score for p in evaluate(SMA, grid(SPACE), btc_hourly, threads=1)}
    assert len(out["points"]) == len(expected) == 7
    assert {tuple(r["params"].values()): r["score"] for r in out["points"]} == expected
    assert out["best"]["score"] == max(expected.values())

    async def runs_and_artifacts():
        async with get_client() as client:
            runs = await client.read_flow_runs()
            names = {(await client.read_flow(r.flow_id)).name: r for r in runs}
            tasks = await client.read_task_runs()
            arts = await client.read_artifacts()
            for r in runs:  # leave the session's shared server as found
                if (await client.read_flow(r.flow_id)).name in ("backtest-sweep", "sweep-points"):
                    await client.delete_flow_run(r.id)
            return names, tasks, arts

    names, tasks, arts = asyncio.run(runs_and_artifacts())
    assert names["backtest-sweep"].state.is_completed() and names["sweep-points"].state.is_completed()
    inner = names["sweep-points"]
    scored = [t for t in tasks if t.name.startswith("score-points") and t.flow_run_id == inner.id]
    assert len(scored) == 3 and all(t.state.is_completed() for t in scored)
    (art,) = [a for a in arts if a.key == "backtest-sweep-sma-cross"]
    assert art.type == "table"


def _worker_state() -> dict:
    """Run in a Dask worker: what its preload left there."""
    import sys

    from backtest.compiled import _ENGINES, SIGNATURE

    return {"prefect": "prefect" in sys.modules, "flow": "flows.backtest_sweep" in sys.modules,
            "warm": any(SIGNATURE in e.signatures for e in _ENGINES.values())}  # fmt: skip


@pytest.mark.timeout(600)
def test_a_standing_preloaded_cluster_serves_two_sweeps_with_the_engines_scores(prefect_server, tmp_path, btc_hourly):
    from distributed import Client

    from flows.backtest_sweep import backtest_sweep, standing_cluster

    expected = {tuple(p.params.values()): p.score for p in evaluate(SMA, grid(SPACE), btc_hourly, threads=1)}
    with standing_cluster(2) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        # before any sweep: every worker already imported Prefect and this module and loaded the compiled loop
        states = client.run(_worker_state)
        assert len(states) == 2 and all(s == {"prefect": True, "flow": True, "warm": True} for s in states.values())
        for _ in range(2):  # the same workers serve the next flow run: nothing restarts
            out = backtest_sweep(kind="sma_cross", space=SPACE, runner="dask", chunks=3, datasets=str(DATASETS),
                                 dask_address=cluster.scheduler_address, archive=str(tmp_path / "none"))  # fmt: skip
            assert {tuple(r["params"].values()): r["score"] for r in out["points"]} == expected
        assert set(client.run(_worker_state)) == set(states)  # same worker processes after both runs


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cluster_is_the_parameter_else_the_answering_standing_one_else_none_with_why(prefect_server):
    from flows.backtest_sweep import dask_cluster

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
        assert dask_cluster("tcp://10.0.0.5:8786", {"OMS_DASK_ADDRESS": up}) == ("tcp://10.0.0.5:8786", None)
        assert dask_cluster(None, {"OMS_DASK_ADDRESS": up}) == (up, None)
    down = f"tcp://127.0.0.1:{_closed_port()}"
    address, why = dask_cluster(None, {"OMS_DASK_ADDRESS": down})
    assert address is None and why == (
        f"$OMS_DASK_ADDRESS={down} does not answer (the dask service is down: `oms status`, `oms services up dask`)"
    )
    address, why = dask_cluster("", {})
    assert address is None and why.startswith("no dask_address parameter and no $OMS_DASK_ADDRESS")


@pytest.mark.timeout(600)
def test_a_sweep_without_an_address_takes_the_standing_cluster_from_the_environment(
    prefect_server, tmp_path, btc_hourly, monkeypatch
):
    from flows.backtest_sweep import backtest_sweep, standing_cluster

    expected = {tuple(p.params.values()): p.score for p in evaluate(SMA, grid(SPACE), btc_hourly, threads=1)}
    with standing_cluster(2) as cluster:
        monkeypatch.setenv("OMS_DASK_ADDRESS", cluster.scheduler_address)
        assert not cluster.scheduler.task_prefixes
        out = backtest_sweep(kind="sma_cross", space=SPACE, runner="dask", chunks=3, datasets=str(DATASETS),
                             archive=str(tmp_path / "none"))  # fmt: skip
        assert {tuple(r["params"].values()): r["score"] for r in out["points"]} == expected
        assert "warm_worker" in cluster.scheduler.task_prefixes  # its workers ran this sweep


@pytest.mark.timeout(600)
def test_a_sweep_whose_standing_cluster_is_down_warns_why_and_runs_on_a_local_one(
    prefect_server, tmp_path, btc_hourly, monkeypatch
):
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.backtest_sweep import backtest_sweep

    down = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("OMS_DASK_ADDRESS", down)
    state = backtest_sweep(kind="sma_cross", space=SPACE, runner="dask", workers=1, chunks=2, return_state=True,
                           datasets=str(DATASETS), archive=str(tmp_path / "none"))  # fmt: skip
    assert len(state.result()["points"]) == 7

    async def logs():
        async with get_client() as client:
            flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            return [(r.level, r.message) for r in await client.read_logs(log_filter=flt)]

    warnings = [m for level, m in asyncio.run(logs()) if level == logging.WARNING]
    assert warnings == [
        "backtest-sweep: a cold local Dask cluster of 1 workers (about 10 s of start and shutdown before and after "
        f"the points) because $OMS_DASK_ADDRESS={down} does not answer (the dask service is down: `oms status`, "
        "`oms services up dask`)"
    ]
