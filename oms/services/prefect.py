"""The Prefect server (API and UI) with its SQLite database under data/prefect.

It listens on 127.0.0.1 unless ``services.prefect.host`` says otherwise. Beyond loopback (or with
``api_auth: always``) the API is protected by Prefect's auth string: a random ``oms:<token>`` generated once
into ``data/prefect/api-auth-string`` (mode 0600), given to the server as ``PREFECT_SERVER_API_AUTH_STRING``
and to this project's clients as ``PREFECT_API_AUTH_STRING`` by ``client_env``. The UI asks for it at login.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from oms.services.base import Service, http_get
from oms.services.process import find_binary
from oms.services.settings import ServiceSettings

AUTH_FILE = "api-auth-string"


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


def needs_auth(settings: ServiceSettings) -> bool:
    """True when the API must be protected: listening beyond loopback, or configured to always."""
    if settings.prefect_api_auth == "always":
        return True
    return not ipaddress.ip_address(settings.prefect_host).is_loopback


def auth_string_file(settings: ServiceSettings) -> Path:
    return settings.data_dir / "prefect" / AUTH_FILE


def ensure_auth_string(settings: ServiceSettings) -> str:
    """The API auth string, generated on first use into a 0600 file (never logged or printed)."""
    path = auth_string_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = f"oms:{secrets.token_urlsafe(24)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _client_host(host: str) -> str:
    """Where this machine's clients reach a server listening on ``host`` (loopback for a wildcard)."""
    return "127.0.0.1" if ipaddress.ip_address(host).is_unspecified else host


class PrefectService(Service):
    name = "prefect"
    start_timeout = 90.0

    @property
    def address(self) -> str:
        return f"http://{_client_host(self.settings.prefect_host)}:{self.settings.prefect_port}"

    def ports(self) -> list[int]:
        return [self.settings.prefect_port]

    def client_env(self) -> dict[str, str]:
        """What a Prefect client of this project needs: the API URL, and the auth string when it is on."""
        env = {"PREFECT_API_URL": f"{self.address}/api"}
        if needs_auth(self.settings):
            env["PREFECT_API_AUTH_STRING"] = ensure_auth_string(self.settings)
        return env

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_binary("prefect", "pip install prefect")
        home = self.settings.data_dir / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        host = self.settings.prefect_host
        env = prefect_env(home)
        env.update(
            {
                "PREFECT_SERVER_API_HOST": host,
                "PREFECT_SERVER_API_PORT": str(self.settings.prefect_port),
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
                "PREFECT_UI_API_URL": f"{self.address}/api",
            }
        )
        if needs_auth(self.settings):
            env["PREFECT_SERVER_API_AUTH_STRING"] = ensure_auth_string(self.settings)
        return [binary, "server", "start", "--host", host, "--port", str(self.settings.prefect_port)], env

    def health(self) -> tuple[bool, str]:
        # /api/health answers without the auth string (Prefect lets health probes through)
        code, body = http_get(f"{self.address}/api/health")
        if code == 200 and body.strip() == b"true":
            guarded = ", API behind its auth string" if needs_auth(self.settings) else ""
            return True, f"UI {self.address}{guarded}"
        return False, f"/api/health answered {code}" if code else "no answer"
