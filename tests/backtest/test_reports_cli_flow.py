"""Metrics, the report folder, `oms backtest` and the `backtest` flow on a real Prefect server."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pyarrow.parquet as pq

from backtest.metrics import drawdown, metrics, round_trips
from backtest.report import write_report
from backtest.run import Account, run
from oms.cli.main import main
from strategies.sma_cross import STRATEGY as SMA
from tests.backtest.conftest import DATASETS

SMA_PARAMS = {"fast_window": 10, "slow_window": 30}


def test_metrics_follow_from_the_equity_and_the_fills(btc_hourly):
    res = run(SMA, SMA_PARAMS, btc_hourly, [Account("a", "100000")])
    m = metrics(res, 0)
    assert m["final_usdt"] == float(res.final_equity())
    assert math.isclose(m["total_return"], m["final_usdt"] / 100_000 - 1)
    eq = res.equity[:, 0] / 1e8
    peak = np.maximum.accumulate(eq)
    assert math.isclose(m["max_drawdown"], float((eq / peak - 1).min()))
    trips = round_trips(res, 0)
    assert m["trades"] == len(trips) == len(res.trades) // 2
    assert math.isclose(m["win_rate"], sum(p > 0 for p in trips) / len(trips))
    assert math.isclose(m["fees_usdt"], res.trades[:, 6].sum() / 1e8)
    assert 0.4 < m["exposure"] < 0.6  # long about half the time
    assert math.isclose(sum(trips), m["final_usdt"] - 100_000 - _open_value(res, btc_hourly), abs_tol=1e-6)
    assert drawdown(np.array([100, 120, 90, 130]))[2] == 90 / 120 - 1


def _open_value(res, tape):
    """Cash flows of the fills since the position was last flat, plus the open position at the last close."""
    t = res.trades
    held = np.cumsum(t[:, 3] * t[:, 5])
    flat = np.flatnonzero(held == 0)
    since = t[flat[-1] + 1 :] if len(flat) else t
    flows = sum(-int(f[3]) * int(f[4]) * int(f[5]) * 10 - int(f[6]) for f in since)  # mult 10
    return (flows + int(res.pos[0, 0]) * int(tape.events[-1, 7]) * 10) / 1e8


def test_the_report_folder_has_metrics_trades_charts_and_fingerprint(btc_hourly, tmp_path):
    res = run(SMA, SMA_PARAMS, btc_hourly, [Account("a", "100000")])
    out = write_report(res, tmp_path)
    assert out.name == f"sma_cross-{res.fingerprint()[:12]}"
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["fingerprint"] == res.fingerprint() and doc["accounts"]["a"]["fills"] == len(res.trades)
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    assert len(trades) == len(res.fills)
    assert trades[0]["side"] == "BUY" and trades[0]["price"] == "2623.79" and trades[0]["fee_usdt"] == "99.90009583"
    for png in ("equity.png", "drawdown.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fingerprint.txt").read_text().strip() == res.fingerprint()


def test_oms_backtest_prints_the_metrics_and_writes_the_report(tmp_path, capsys):
    code = main(["backtest", "--kind", "sma_cross", "--param", "fast_window=10", "--param", "slow_window=30",
                 "--datasets", str(DATASETS), "--archive", str(tmp_path / "none"), "--out", str(tmp_path)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "sharpe" in text and "max_drawdown" in text and "478,185.1837" in text
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("sma_cross-")]
    assert (folder / "trades.parquet").exists()
    assert main(["backtest", "--kind", "sma_cross", "--param", "slow_window=3", "--datasets", str(DATASETS),
                 "--archive", str(tmp_path / "none"), "--out", str(tmp_path)]) == 1  # fmt: skip
    assert "slow_window (3) must be above fast_window (10)" in capsys.readouterr().err


def test_the_backtest_flow_publishes_artifacts_on_a_real_prefect_server(prefect_server, tmp_path):
    from prefect import get_client

    from flows.backtest import backtest

    out = backtest(kind="sma_cross", params=SMA_PARAMS, name="trend", out=str(tmp_path), archive=str(tmp_path / "no"),
                   datasets=str(DATASETS))  # fmt: skip
    assert out["metrics"]["final_usdt"] == 478185.18374199
    assert (tmp_path / f"trend-{out['fingerprint'][:12]}" / "metrics.json").exists()

    async def artifacts_then_clean_up():
        async with get_client() as client:
            found = await client.read_artifacts()
            # leave the session's shared server as found: other tests count its flow runs
            for run_ in await client.read_flow_runs():
                flow_ = await client.read_flow(run_.flow_id)
                if flow_.name == "backtest":
                    await client.delete_flow_run(run_.id)
            return found

    found = {a.key: a for a in asyncio.run(artifacts_then_clean_up())}
    assert "backtest-trend" in found and "backtest-trend-summary" in found
    assert "| sharpe |" in found["backtest-trend-summary"].data
    assert found["backtest-trend"].type == "table"
