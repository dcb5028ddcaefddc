"""Where the embedded services live: data folder and loopback ports, and where each setting came from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from oms.config import Config
from oms.config.machine import data_dir_problem

PORT_FIELDS = (
    "nats_port",
    "nats_monitor_port",
    "openbao_port",
    "openbao_cluster_port",
    "prefect_port",
    "localex_port",
    "dask_port",
    "dask_dashboard_port",
)


@dataclass(frozen=True)
class ServiceSettings:
    data_dir: Path
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    openbao_port: int = 8200
    openbao_cluster_port: int = 8201
    prefect_port: int = 4200
    localex_port: int = 8765
    localex_enabled: bool = True
    stream_enabled: bool = False  # the stream daemon under `oms up` (services.stream.enabled)
    stream_health_port: int = 8780
    dask_enabled: bool = True  # the standing Dask cluster for sweeps (services.dask.enabled)
    dask_port: int = 8786
    dask_dashboard_port: int = 8787
    dask_workers: int = 2
    dask_threads: int = 1
    config_dir: Path | None = None  # the configuration the daemon is started with
    flows_enabled: bool = True  # the flow runner (python -m flows.serve) with the other services
    host: str = "127.0.0.1"
    prefect_host: str = "127.0.0.1"  # the Prefect UI may listen beyond loopback (then behind its auth string)
    prefect_api_auth: str = "auto"  # "auto": an auth string when prefect_host is not loopback; "always"
    # setting name -> where it was set (an environment variable, or a config file and key), for hints
    origins: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_config(cls, cfg: Config) -> ServiceSettings:
        s = cfg.stream.services
        return cls(
            data_dir=cfg.data_dir(),
            nats_port=s.nats.port,
            nats_monitor_port=s.nats.monitor_port,
            openbao_port=s.openbao.port,
            openbao_cluster_port=s.openbao.cluster_port,
            prefect_port=s.prefect.port,
            localex_port=cfg.exchanges.local_exchange.port,
            localex_enabled=s.local_exchange.enabled,
            prefect_host=s.prefect.host,
            prefect_api_auth=s.prefect.api_auth,
            stream_enabled=s.stream.enabled,
            stream_health_port=cfg.stream.daemon.health_port,
            dask_enabled=s.dask.enabled,
            dask_port=s.dask.scheduler_port,
            dask_dashboard_port=s.dask.dashboard_port,
            dask_workers=s.dask.workers,
            dask_threads=s.dask.threads,
            config_dir=cfg.dir,
            origins={
                "data_dir": cfg.origin("stream.yaml", "services", "data_dir"),
                "nats_port": cfg.origin("stream.yaml", "services", "nats", "port"),
                "nats_monitor_port": cfg.origin("stream.yaml", "services", "nats", "monitor_port"),
                "openbao_port": cfg.origin("stream.yaml", "services", "openbao", "port"),
                "openbao_cluster_port": cfg.origin("stream.yaml", "services", "openbao", "cluster_port"),
                "prefect_port": cfg.origin("stream.yaml", "services", "prefect", "port"),
                "localex_port": cfg.origin("exchanges.yaml", "local_exchange", "port"),
                "dask_port": cfg.origin("stream.yaml", "services", "dask", "scheduler_port"),
                "dask_dashboard_port": cfg.origin("stream.yaml", "services", "dask", "dashboard_port"),
            },
        )

    def origin(self, name: str) -> str:
        """Where to change setting ``name`` (e.g. 'environment variable OMS_NATS_PORT')."""
        return self.origins.get(name, f"ServiceSettings.{name}")

    def port_origin(self, port: int) -> str:
        """Where to change the setting(s) that gave ``port``."""
        names = [f.name for f in fields(self) if f.name in PORT_FIELDS and getattr(self, f.name) == port]
        return " or ".join(self.origin(n) for n in names) or "the service settings"

    def data_dir_problem(self) -> str | None:
        """Why the data folder is unusable (the check `oms config check` runs too), naming its origin."""
        reason = data_dir_problem(self.data_dir)
        if reason is None:
            return None
        where = self.origins.get("data_dir")
        return f"{reason} (data folder set by {where})" if where else reason
