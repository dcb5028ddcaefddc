"""Bring the embedded services up, down, and report their status, in dependency order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from oms.services.base import UNHEALTHY, Service, Status
from oms.services.dask_cluster import DaskService
from oms.services.flows import FlowsService
from oms.services.localex import LocalExchangeService
from oms.services.lock import DEFAULT_WAIT, ServiceLock
from oms.services.nats import NatsService
from oms.services.openbao import OpenBaoService
from oms.services.prefect import PrefectService
from oms.services.process import ServiceError
from oms.services.settings import ServiceSettings
from oms.services.stream import StreamService

ORDER = ("nats", "openbao", "prefect", "localex", "dask", "stream", "flows")  # the flow runner needs the others


@dataclass(frozen=True)
class UpResult:
    name: str
    outcome: str
    address: str

    @property
    def ok(self) -> bool:
        """False when a live server was found unhealthy (and left alone)."""
        return not self.outcome.startswith(UNHEALTHY)


@dataclass(frozen=True)
class DownResult:
    name: str
    outcome: str  # "stopped" | "had died (PID n); its record was cleared"


class Services:
    """The embedded stack: nats-server (JetStream), OpenBao, Prefect server, local exchange, the sweeps' Dask
    cluster, stream daemon, flow runner."""

    def __init__(
        self,
        settings: ServiceSettings,
        lock_timeout: float = DEFAULT_WAIT,
        on_wait: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self.lock_timeout = lock_timeout
        self.on_wait = on_wait
        self.all: dict[str, Service] = {
            "nats": NatsService(settings),
            "openbao": OpenBaoService(settings),
            "prefect": PrefectService(settings),
            "localex": LocalExchangeService(settings),
            "dask": DaskService(settings),
            "stream": StreamService(settings),
            "flows": FlowsService(settings),
        }

    def _select(self, names: Iterable[str] | None) -> list[Service]:
        if names is None:
            enabled = {
                "localex": self.settings.localex_enabled,
                "dask": self.settings.dask_enabled,
                "stream": self.settings.stream_enabled,
                "flows": self.settings.flows_enabled,
            }
            names = [n for n in ORDER if enabled.get(n, True)]
        names = list(names)
        unknown = [n for n in names if n not in self.all]
        if unknown:
            raise ServiceError(f"unknown service(s): {', '.join(map(str, unknown))}; known: {', '.join(ORDER)}")
        return [self.all[n] for n in ORDER if n in names]

    def __getitem__(self, name: str) -> Service:
        return self.all[name]

    def _lock(self, purpose: str) -> ServiceLock:
        problem = self.settings.data_dir_problem()
        if problem:
            raise ServiceError(f"the services cannot use their data folder: {problem}")
        return ServiceLock(self.settings.data_dir, purpose, timeout=self.lock_timeout, on_wait=self.on_wait)

    def up(self, names: Iterable[str] | None = None, on_started: Callable[[str], None] | None = None) -> list[UpResult]:
        """Start the selected services (all by default) in order; idempotent.

        One `up` or `down` at a time per data folder (a lock; a second one waits). If a service cannot
        start, the ones this call started are stopped again, so a failed `up` leaves things as they were,
        and the error names the service, the reason and its log. ``on_started(name)`` runs once each service
        is healthy, before the next one starts (`oms up` initialises Vault and provisions keys there); what it
        raises as ``ServiceError`` undoes the start like a failed service."""
        selected = self._select(names)
        results: list[UpResult] = []
        with self._lock("oms up"):
            for service in selected:
                try:
                    outcome = service.up()
                except ServiceError as exc:
                    self._undo(results, exc)
                results.append(UpResult(service.name, outcome, service.address))
                if on_started is not None:
                    try:
                        on_started(service.name)
                    except ServiceError as exc:
                        self._undo(results, exc)
        return results

    def _undo(self, results: list[UpResult], exc: ServiceError) -> None:
        """Stop what this `up` started, newest first, and raise ``exc`` saying so."""
        undone = [r.name for r in reversed(results) if r.outcome.startswith("started")]
        for name in undone:
            self.all[name].down()
        if undone:
            raise ServiceError(f"{exc}\n(stopped {', '.join(undone)} again, which this `up` had started)") from exc
        raise exc

    def stop(self, names: Iterable[str] | None = None) -> list[DownResult]:
        """Stop what `up` started, in reverse order; also clears the records of services that died."""
        selected = self._select(names) if names is not None else [self.all[n] for n in ORDER]
        out: list[DownResult] = []
        with self._lock("oms down"):
            for service in reversed(selected):
                gone = service.proc.died()
                if service.down():
                    out.append(DownResult(service.name, "stopped"))
                elif gone is not None:
                    out.append(DownResult(service.name, f"had died (PID {gone.pid}); its record was cleared"))
        return out

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop what `up` started, in reverse order; returns the names actually stopped."""
        return [r.name for r in self.stop(names) if r.outcome == "stopped"]

    def status(self) -> list[Status]:
        """Every service; the stream daemon and the Dask cluster only when enabled (``services.stream.enabled``,
        ``services.dask.enabled``) or running."""
        optional = {"stream": self.settings.stream_enabled, "dask": self.settings.dask_enabled}
        shown = [n for n in ORDER if optional.get(n, True) or self.all[n].proc.state()]
        return [self.all[n].status() for n in shown]
