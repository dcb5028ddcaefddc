"""Connect to NATS as one of the platform's identities (``oms.bus.auth``): the one settings helper every
client uses (the daemon, the flows, the CLI, tools).

``NatsClientSettings.from_config(cfg, "trader")`` takes the URL from ``OMS_NATS_URL`` or ``configs/stream.yaml``
(127.0.0.1 and the configured port) and the seed from ``OMS_NATS_CREDENTIALS_DIR`` or ``{data_dir}/keys/nats``;
``await connect_as(settings)`` returns a connected nats-py client that signs the server's nonce with the
identity's NKey and uses the identity's own reply inbox.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS

from oms.bus.auth import IDENTITIES, credentials_dir, inbox_prefix, load_seed, permissions

ENV_URL = "OMS_NATS_URL"
ENV_CREDENTIALS_DIR = "OMS_NATS_CREDENTIALS_DIR"


@dataclass(frozen=True)
class NatsClientSettings:
    """Where NATS is and who this client is. The seed is read when connecting, never kept in a repr."""

    url: str
    identity: str
    data_dir: Path = field(repr=False)  # the credentials live in credentials_dir(data_dir)
    credentials: Path | None = None  # an explicit credentials folder (OMS_NATS_CREDENTIALS_DIR)

    def __post_init__(self) -> None:
        permissions(self.identity)  # an unknown identity is refused here, naming the known ones

    @classmethod
    def from_config(cls, cfg: Any, identity: str, *, url: str | None = None) -> NatsClientSettings:
        """From an ``oms.config.Config`` (its data folder and nats port), the environment first."""
        port = cfg.stream.services.nats.port
        return cls.from_env(identity, cfg.data_dir(), default_url=url or f"nats://127.0.0.1:{port}")

    @classmethod
    def from_env(cls, identity: str, data_dir: Path, *, default_url: str = "nats://127.0.0.1:4222"):
        creds = os.environ.get(ENV_CREDENTIALS_DIR)
        return cls(
            url=os.environ.get(ENV_URL) or default_url,
            identity=identity,
            data_dir=Path(data_dir),
            credentials=Path(creds) if creds else None,
        )

    @property
    def credentials_dir(self) -> Path:
        return self.credentials if self.credentials is not None else credentials_dir(self.data_dir)

    def options(self) -> dict[str, Any]:
        """nats-py ``connect`` options for this identity (reads and checks the seed file)."""
        seed = load_seed(self.credentials_dir, self.identity)
        return {
            "nkeys_seed_str": seed,
            "inbox_prefix": inbox_prefix(self.identity),
            "name": f"oms-{self.identity}",
        }

    def at(self, url: str | None) -> NatsClientSettings:
        """The same identity at ``url`` (an explicit URL, e.g. a flow's parameter; None keeps this one)."""
        return self if url is None else NatsClientSettings(url, self.identity, self.data_dir, self.credentials)

    def with_identity(self, identity: str) -> NatsClientSettings:
        return NatsClientSettings(self.url, identity, self.data_dir, self.credentials)


async def connect_as(settings: NatsClientSettings, **overrides: Any) -> NATS:
    """A nats-py client connected as ``settings.identity`` (``overrides`` go to ``nats.connect``)."""
    options: dict[str, Any] = {"connect_timeout": 5, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5}
    options.update(settings.options())
    options.update(overrides)
    return await nats.connect(settings.url, **options)


__all__ = ["ENV_CREDENTIALS_DIR", "ENV_URL", "IDENTITIES", "NatsClientSettings", "connect_as"]
