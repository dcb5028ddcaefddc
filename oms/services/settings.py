"""Where the embedded services live: data folder and loopback ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oms.config import Config


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
    host: str = "127.0.0.1"

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
        )
