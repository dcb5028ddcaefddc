"""The Prefect server (API and UI) with its SQLite database under data/prefect."""

from __future__ import annotations

from oms.services.base import Service, http_get
from oms.services.process import find_binary


def prefect_env(home, api_port: int | None = None) -> dict[str, str]:
    """Environment for Prefect processes of this project: own home, no telemetry, our API if given."""
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    }
    if api_port is not None:
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{api_port}/api"
    return env


class PrefectService(Service):
    name = "prefect"
    start_timeout = 90.0

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.prefect_port}"

    def ports(self) -> list[int]:
        return [self.settings.prefect_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_binary("prefect", "pip install prefect")
        home = self.settings.data_dir / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        env = prefect_env(home)
        env.update(
            {
                "PREFECT_SERVER_API_HOST": self.settings.host,
                "PREFECT_SERVER_API_PORT": str(self.settings.prefect_port),
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
                "PREFECT_UI_API_URL": f"{self.address}/api",
            }
        )
        return [binary, "server", "start", "--host", self.settings.host, "--port", str(self.settings.prefect_port)], env

    def health(self) -> tuple[bool, str]:
        code, body = http_get(f"{self.address}/api/health")
        if code == 200 and body.strip() == b"true":
            return True, f"UI {self.address}"
        return False, f"/api/health answered {code}" if code else "no answer"
