"""The stream daemon as a managed service: ``oms up`` starts it after the others, ``oms down`` stops it first.

It runs ``python -m oms.cli.main stream run --config DIR`` (the same command a user runs in the foreground);
``oms down`` sends SIGTERM, on which the daemon stops taking commands, cancels or leaves its open orders
(``daemon.on_shutdown``) and flushes its events. Healthy once ``/health`` on ``daemon.health_port`` answers:
200 when every account trades, 503 while one is not (still a running daemon; the body says which and why).
"""

from __future__ import annotations

import json
import sys

from oms.services.base import Service, http_get


class StreamService(Service):
    name = "stream"
    start_timeout = 120.0  # kernels warm up and every account reconciles before /health answers

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.stream_health_port}/health"

    def ports(self) -> list[int]:
        return [self.settings.stream_health_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        command = [sys.executable, "-m", "oms.cli.main", "stream", "run"]
        if self.settings.config_dir is not None:
            command += ["--config", str(self.settings.config_dir)]
        return command, {}

    def down(self) -> bool:
        """SIGTERM, and time for the daemon's clean stop (cancels, flush, leases) before SIGKILL."""
        return self.proc.stop(timeout=60.0)

    def health(self) -> tuple[bool, str]:
        code, body = http_get(self.address)
        if code not in (200, 503):
            return False, f"/health answered {code}" if code else "no answer"
        try:
            doc = json.loads(body)
            accounts = doc.get("accounts", {})
        except (ValueError, AttributeError):
            return False, "/health answered something that is not the daemon's JSON"
        trading = sum(1 for a in accounts.values() if a.get("trading"))
        return True, f"{trading} of {len(accounts)} account(s) trading"
