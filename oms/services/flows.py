"""The flow runner: ``python -m flows.serve`` registers every deployment of prefect.yaml and runs them.

It needs the Prefect server (and, for the flows themselves, NATS, OpenBao and the local exchange), so it
starts last. Healthy once it has registered its deployments: it then writes ``flows/serve.json`` with its
PID and their ids in the data folder, and the health check reads it (a file of an earlier run, with another
PID, does not count).
"""

from __future__ import annotations

import json
import sys

from oms.services.base import Service, http_get
from oms.services.prefect import prefect_env


class FlowsService(Service):
    name = "flows"
    start_timeout = 180.0  # imports every flow module (Prefect, DuckDB, the venue libraries) on a busy machine

    @property
    def ready_file(self):
        return self.settings.data_dir / "flows" / "serve.json"

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.prefect_port}/deployments"

    def ports(self) -> list[int]:
        return []

    def command(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        env = prefect_env(s.data_dir / "prefect", s.prefect_port)
        env.update(
            {
                "OMS_DATA_DIR": str(s.data_dir),
                "OMS_NATS_PORT": str(s.nats_port),
                "OMS_OPENBAO_PORT": str(s.openbao_port),
                "OMS_PREFECT_PORT": str(s.prefect_port),
                "OMS_LOCAL_EXCHANGE_PORT": str(s.localex_port),
            }
        )
        if s.dask_enabled:  # backtest-sweep on runner=dask uses the standing cluster (flows.backtest_sweep)
            env["OMS_DASK_ADDRESS"] = f"tcp://{s.host}:{s.dask_port}"
        if s.config_dir is not None:
            env["OMS_CONFIG_DIR"] = str(s.config_dir)  # the flows load the configuration `oms up` was given
        self.ready_file.unlink(missing_ok=True)
        return [sys.executable, "-m", "flows.serve", "--ready-file", str(self.ready_file)], env

    def health(self) -> tuple[bool, str]:
        code, body = http_get(f"http://{self.settings.host}:{self.settings.prefect_port}/api/health")
        if code != 200:
            return False, "the Prefect server does not answer"
        st = self.proc.running()
        try:
            doc = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return False, "registering deployments"
        if st is None or doc.get("pid") != st.pid:
            return False, "registering deployments"
        return True, f"{len(doc.get('deployments', {}))} deployments served"
