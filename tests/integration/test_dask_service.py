"""The sweeps' standing Dask cluster as a platform service: it starts warm, answers, is reported, and stops."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from oms.config import DEFAULT_CONFIG_DIR
from oms.services import Services
from oms.services.dask_cluster import DaskService
from tests.harness.servers import loopback_settings

OMS = str(Path(sys.executable).parent / "oms")


def _worker_modules() -> dict:
    """Run in a Dask worker: what its preload left there."""
    from backtest.compiled import _ENGINES, SIGNATURE

    return {"flow": "flows.backtest_sweep" in sys.modules, "prefect": "prefect" in sys.modules,
            "warm": any(SIGNATURE in e.signatures for e in _ENGINES.values())}  # fmt: skip


@pytest.mark.timeout(300)
def test_the_dask_service_starts_preloaded_answers_and_stops_with_its_workers(tmp_path):
    settings = loopback_settings(tmp_path / "data", dask_enabled=True, dask_workers=2)
    services = Services(settings)
    dask = services["dask"]
    assert isinstance(dask, DaskService) and dask.address == f"tcp://127.0.0.1:{settings.dask_port}"
    try:
        t0 = time.monotonic()
        (result,) = services.up(["dask"])
        print(f"dask service start: {time.monotonic() - t0:.1f} s")
        assert (result.name, result.outcome) == ("dask", "started")
        (status,) = [s for s in services.status() if s.name == "dask"]
        assert status.state == "running" and status.detail == "2 workers x 1 threads, preloaded for sweeps"
        main = psutil.Process(status.pid)
        procs = [main, *main.children(recursive=True)]
        assert len(procs) >= 3  # the scheduler's process and its two workers (with their nannies)

        from distributed import Client

        with Client(dask.address, timeout=30) as client:
            states = client.run(_worker_modules)
        assert len(states) == 2
        assert all(s == {"flow": True, "prefect": True, "warm": True} for s in states.values())
        assert services.up(["dask"])[0].outcome == "already running"
    finally:
        stopped = services.down(["dask"])
    assert stopped == ["dask"]
    time.sleep(0.5)
    for proc in procs:  # the workers go with the scheduler's process
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    assert dask.status().state == "stopped" and dask.health() == (False, "no answer")


def test_a_disabled_dask_service_is_neither_started_nor_listed(tmp_path):
    services = Services(loopback_settings(tmp_path / "data", dask_enabled=False))
    assert "dask" not in [s.name for s in services._select(None)]
    assert "dask" not in [s.name for s in services.status()]


def test_the_flow_runner_is_given_the_standing_clusters_address_only_when_it_is_on(tmp_path):
    on = Services(loopback_settings(tmp_path / "a", dask_enabled=True))
    _, env = on["flows"].command()
    assert env["OMS_DASK_ADDRESS"] == f"tcp://127.0.0.1:{on.settings.dask_port}"
    off = Services(loopback_settings(tmp_path / "b", dask_enabled=False))
    assert "OMS_DASK_ADDRESS" not in off["flows"].command()[1]


@pytest.mark.parametrize(
    ("dask", "message"),
    [
        ({"workers": 0}, "stream.yaml: services.dask.workers: Input should be greater than or equal to 1"),
        ({"threads": "two"}, "stream.yaml: services.dask.threads: Input should be a valid integer"),
        ({"scheduler_port": 9000, "dashboard_port": 9000}, "scheduler_port and dashboard_port are both 9000"),
        ({"processes": 4}, "stream.yaml: services.dask.processes: unknown key"),
    ],
)
def test_a_bad_dask_setting_is_named_by_file_and_key(tmp_path, dask, message):
    cfg_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg_dir)
    stream = yaml.safe_load((cfg_dir / "stream.yaml").read_text())
    stream["services"]["dask"] = dask
    (cfg_dir / "stream.yaml").write_text(yaml.safe_dump(stream))
    env = {k: v for k, v in os.environ.items() if k not in ("OMS_CONFIG_DIR", "OMS_DATA_DIR")}
    res = subprocess.run([OMS, "services", "status", "--config", str(cfg_dir)], capture_output=True, text=True,
                         timeout=60, env={**env, "COLUMNS": "250"})  # fmt: skip
    assert res.returncode == 1
    assert message in res.stderr and "Traceback" not in res.stderr
