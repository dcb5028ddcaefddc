"""Fixtures that start the real nats-server, OpenBao and Prefect server through the project's own
service classes (so the tests exercise them too), each on free 127.0.0.1 ports in a temporary folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from oms.bus.connect import NatsClientSettings, connect_as
from oms.services import ServiceSettings, free_port
from oms.services.nats import NatsService
from oms.services.openbao import OpenBaoService
from oms.services.prefect import PrefectService, prefect_env


def loopback_settings(data_dir: Path, **overrides) -> ServiceSettings:
    """Service settings with every port free right now and data under `data_dir`."""
    values = dict(
        data_dir=data_dir,
        nats_port=free_port(),
        nats_monitor_port=free_port(),
        openbao_port=free_port(),
        openbao_cluster_port=free_port(),
        prefect_port=free_port(),
        localex_port=free_port(),
        dask_port=free_port(),
        dask_dashboard_port=free_port(),
        dask_enabled=False,  # the sweeps' Dask cluster only where a test asks for it (test_dask_service.py)
        flows_enabled=False,  # the flow runner only where a test asks for it (tests/flows/)
    )
    values.update(overrides)
    return ServiceSettings(**values)


@dataclass(frozen=True)
class NatsHandle:
    url: str
    store_dir: Path
    service: NatsService

    def settings(self, identity: str = "daemon") -> NatsClientSettings:
        """Client settings of one bus identity (oms.bus.auth) for this server."""
        return nats_settings(self.service, identity)

    async def connect(self, identity: str = "daemon", **options):
        """A nats-py client connected as ``identity`` (the server admits no anonymous client)."""
        return await connect_as(self.settings(identity), **options)


def nats_settings(service: NatsService, identity: str = "daemon") -> NatsClientSettings:
    """Client settings of ``identity`` for a NatsService started by a test."""
    return NatsClientSettings(service.address, identity, service.settings.data_dir)


@dataclass(frozen=True)
class OpenBaoHandle:
    address: str
    root_token: str
    service: OpenBaoService

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token, timeout=30)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory) -> Iterator[NatsHandle]:
    """nats-server with JetStream (file storage) for the whole test session."""
    svc = NatsService(loopback_settings(tmp_path_factory.mktemp("nats")))
    svc.up()
    try:
        yield NatsHandle(svc.address, svc.settings.data_dir / "nats", svc)
    finally:
        svc.down()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory) -> Iterator[OpenBaoHandle]:
    """A persistent (raft) OpenBao, initialised and unsealed, KV v2 at secret/, for the whole session."""
    svc = OpenBaoService(loopback_settings(tmp_path_factory.mktemp("openbao")))
    svc.up()
    try:
        yield OpenBaoHandle(svc.address, svc.root_token(), svc)
    finally:
        svc.down()


def _drain_prefect_clients() -> None:
    """Flush Prefect's background event/log senders of this process before their server goes away."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker  # only once a test has imported prefect
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        worker.drain_all(timeout=5)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[str]:
    """A Prefect API server with its own SQLite database; PREFECT_API_URL points at it meanwhile."""
    svc = PrefectService(loopback_settings(tmp_path_factory.mktemp("prefect")))
    svc.up()
    previous = {k: os.environ.get(k) for k in ("PREFECT_API_URL",)}
    os.environ.update(
        {
            k: v
            for k, v in prefect_env(os.environ["PREFECT_HOME"], svc.settings.prefect_port).items()
            if k == "PREFECT_API_URL"
        }
    )
    try:
        yield f"{svc.address}/api"
    finally:
        _drain_prefect_clients()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        svc.down()
