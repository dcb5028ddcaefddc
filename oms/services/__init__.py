"""Embedded services: nats-server with JetStream, OpenBao, the Prefect server, the local exchange."""

from oms.services.manager import DownResult, Services, UpResult
from oms.services.process import ServiceError, free_port
from oms.services.settings import ServiceSettings

__all__ = ["DownResult", "ServiceError", "ServiceSettings", "Services", "UpResult", "free_port"]
