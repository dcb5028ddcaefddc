"""The standing Dask cluster for parameter sweeps: a scheduler and its workers, preloaded and warm.

``python -m flows.backtest_sweep`` runs a LocalCluster of ``services.dask.workers`` processes of
``threads`` threads each, scheduler on ``tcp://127.0.0.1:{scheduler_port}``, each worker preloaded with
``flows.backtest_sweep`` (Prefect, the engine, and the strategy's compiled loop from Numba's cache) before it
registers. The flow runner gets this address as ``OMS_DASK_ADDRESS`` (``oms.services.flows``), so a
``backtest-sweep`` started from the Prefect UI pays its compute only, not a cold cluster (about 10 s).

Healthy once the scheduler's HTTP server (``dashboard_port``) counts every worker in ``/json/counts.json``;
the workers are children of the one process, so `oms down` stops them with it (its process group).
"""

from __future__ import annotations

import json
import sys

from oms.services.base import Service, http_get
from oms.services.prefect import prefect_env


class DaskService(Service):
    name = "dask"
    start_timeout = 180.0  # every worker imports Prefect and the engine on a busy machine (measured 20 s at load 3)

    @property
    def address(self) -> str:
        return f"tcp://{self.settings.host}:{self.settings.dask_port}"

    def ports(self) -> list[int]:
        return [self.settings.dask_port, self.settings.dask_dashboard_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        # the workers run Prefect tasks: they report to this platform's Prefect server, like the flow runner
        env = prefect_env(s.data_dir / "prefect", s.prefect_port)
        env["OMS_DATA_DIR"] = str(s.data_dir)
        if s.config_dir is not None:
            env["OMS_CONFIG_DIR"] = str(s.config_dir)
        return [
            sys.executable,
            "-m",
            "flows.backtest_sweep",
            "--host",
            s.host,
            "--port",
            str(s.dask_port),
            "--dashboard-port",
            str(s.dask_dashboard_port),
            "--workers",
            str(s.dask_workers),
            "--threads",
            str(s.dask_threads),
        ], env

    def health(self) -> tuple[bool, str]:
        code, body = http_get(f"http://{self.settings.host}:{self.settings.dask_dashboard_port}/json/counts.json")
        if code != 200:
            return False, f"/json/counts.json answered {code}" if code else "no answer"
        try:
            workers = int(json.loads(body).get("workers", 0))
        except (ValueError, TypeError, AttributeError):
            return False, "the scheduler's /json/counts.json is not Dask's JSON"
        wanted = self.settings.dask_workers
        if workers < wanted:
            return False, f"{workers} of {wanted} workers up (preloading flows.backtest_sweep)"
        return True, f"{workers} workers x {self.settings.dask_threads} threads, preloaded for sweeps"
