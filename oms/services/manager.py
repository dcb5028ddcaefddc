"""Bring the embedded services up, down, and report their status, in dependency order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from oms.services.base import Service, Status
from oms.services.localex import LocalExchangeService
from oms.services.nats import NatsService
from oms.services.openbao import OpenBaoService
from oms.services.prefect import PrefectService
from oms.services.process import ServiceError
from oms.services.settings import ServiceSettings

ORDER = ("nats", "openbao", "prefect", "localex")


@dataclass(frozen=True)
class UpResult:
    name: str
    outcome: str
    address: str


class Services:
    """The embedded stack: nats-server (JetStream), OpenBao, Prefect server, local exchange."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.all: dict[str, Service] = {
            "nats": NatsService(settings),
            "openbao": OpenBaoService(settings),
            "prefect": PrefectService(settings),
            "localex": LocalExchangeService(settings),
        }

    def _select(self, names: Iterable[str] | None) -> list[Service]:
        if names is None:
            names = [n for n in ORDER if n != "localex" or self.settings.localex_enabled]
        names = list(names)
        unknown = [n for n in names if n not in self.all]
        if unknown:
            raise ServiceError(f"unknown service(s) {unknown}; known: {', '.join(ORDER)}")
        return [self.all[n] for n in ORDER if n in names]

    def __getitem__(self, name: str) -> Service:
        return self.all[name]

    def up(self, names: Iterable[str] | None = None) -> list[UpResult]:
        """Start the selected services (all by default) in order; idempotent."""
        return [UpResult(s.name, s.up(), s.address) for s in self._select(names)]

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop what `up` started, in reverse order; returns the names actually stopped."""
        selected = self._select(names) if names is not None else [self.all[n] for n in ORDER]
        return [s.name for s in reversed(selected) if s.down()]

    def status(self) -> list[Status]:
        return [self.all[n].status() for n in ORDER]
