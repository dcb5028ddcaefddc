"""The shipped configs/ copied for a test of the whole platform: every port free, data under the test's folder.

``platform_configs(root)`` writes ``root/configs`` (the project's files with their ports and data folder
changed through the YAML, nothing else) and returns it with the ports it chose. The platform started on it
(`oms up --config root/configs`) is the one a newcomer gets from `make run`, on ports no other run uses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from oms.config import DEFAULT_CONFIG_DIR
from tests.harness.servers import free_port


@dataclass(frozen=True)
class PlatformConfigs:
    dir: Path
    data_dir: Path
    ports: dict[str, int]

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"


def _edit(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def platform_configs(root: Path, *, source: Path = DEFAULT_CONFIG_DIR) -> PlatformConfigs:
    target = root / "configs"
    shutil.copytree(source, target)
    return free_ports(target, root / "data")


def free_ports(target: Path, data: Path) -> PlatformConfigs:
    """Give the configs folder ``target`` free ports and the data folder ``data`` (its other files as they are)."""
    names = ("nats", "nats_monitor", "openbao", "openbao_cluster", "prefect", "localex", "health", "metrics", "webhook",
             "dask", "dask_dashboard")  # fmt: skip
    ports = {name: free_port() for name in names}

    def stream(doc: dict) -> None:
        doc["daemon"]["health_port"] = ports["health"]
        doc["daemon"]["metrics_port"] = ports["metrics"]
        s = doc["services"]
        s["data_dir"] = str(data)
        s["nats"] = {"port": ports["nats"], "monitor_port": ports["nats_monitor"]}
        s["openbao"] = {"port": ports["openbao"], "cluster_port": ports["openbao_cluster"]}
        s["prefect"] = {**s.get("prefect", {}), "port": ports["prefect"]}
        s["dask"] = {**s.get("dask", {}), "scheduler_port": ports["dask"], "dashboard_port": ports["dask_dashboard"]}
        if "webhook" in doc:
            doc["webhook"]["port"] = ports["webhook"]

    def exchanges(doc: dict) -> None:
        doc.setdefault("local_exchange", {})["port"] = ports["localex"]

    _edit(target / "stream.yaml", stream)
    _edit(target / "exchanges.yaml", exchanges)
    return PlatformConfigs(target, data, ports)


if __name__ == "__main__":  # a scratch platform for a person: python -m tests.harness.platform DIR
    import sys

    made = platform_configs(Path(sys.argv[1]))
    print(made.dir, made.ports)
