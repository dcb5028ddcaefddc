"""The project's local Binance-compatible exchange, as an embedded service."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oms.services.base import Service, http_get

ADMIN_TOKEN_FILE = "localex-admin-token"  # the name the exchange uses in its data folder


class LocalExchangeService(Service):
    name = "localex"
    start_timeout = 60.0

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.localex_port}"

    def ports(self) -> list[int]:
        return [self.settings.localex_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        data = self.settings.data_dir / "localex"
        data.mkdir(parents=True, exist_ok=True)
        return [
            sys.executable,
            "-m",
            "localex",
            "--host",
            self.settings.host,
            "--port",
            str(self.settings.localex_port),
            "--data-dir",
            str(data),
            # the admin API's token: generated there once (mode 0600) by the exchange, read by its callers
            "--admin-token-file",
            str(self.admin_token_file),
        ], {}

    @property
    def admin_token_file(self) -> Path:
        """The file holding the token ``/admin/v1`` wants in ``X-Admin-Token`` (mode 0600)."""
        return self.settings.data_dir / "localex" / ADMIN_TOKEN_FILE

    def health(self) -> tuple[bool, str]:
        """Alive when a ping answers 200, or 429/418 with Binance's error body: the exchange answering
        that this IP is over its request weight (or banned for a while) is alive and keeps its state."""
        code, body = http_get(f"{self.address}/api/v3/ping")
        if code == 200:
            return True, "REST + WebSocket"
        if code in (418, 429):
            try:
                error = json.loads(body)
                limited = isinstance(error, dict) and isinstance(error.get("code"), int)
            except ValueError:
                limited = False
            if limited:
                kind = "IP banned for a while" if code == 418 else "IP over its request weight"
                return True, f"alive; rate-limited ({code}, {kind}: {str(error.get('msg', ''))[:120]})"
        return False, f"/api/v3/ping answered {code}" if code else "no answer"
