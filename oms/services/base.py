"""The shape every embedded service shares: start a process, wait for its health check, report status."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from oms.services.process import ManagedProcess, ServiceError, os_reason, port_in_use, tail
from oms.services.settings import ServiceSettings

UNHEALTHY = "running but unhealthy"


@dataclass(frozen=True)
class Status:
    name: str
    state: str  # running | stopped | unhealthy | died
    pid: int | None
    address: str
    detail: str
    log: Path


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a loopback URL; (status, body), status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""


class Service:
    """Base of the embedded services. Subclasses say how to run and how to check health."""

    name = "service"
    start_timeout = 30.0

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.proc = ManagedProcess(self.name, settings.data_dir)

    # -- to override ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        raise NotImplementedError

    def ports(self) -> list[int]:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def health(self) -> tuple[bool, str]:
        raise NotImplementedError

    def after_start(self) -> None:
        """Work to do once the process answers (OpenBao: init/unseal)."""

    # -- shared --------------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.proc.log_file

    def up(self) -> str:
        """Start unless already running; wait for health. Returns what happened.

        A live server is never replaced: if the recorded PID is alive it is reported (healthy or not)
        and left alone, and if nothing is recorded but the port answers as this service, that server is
        reported as running too. Only then does a busy port mean another program holds it."""
        st = self.proc.running()
        if st is not None:
            self.after_start()
            ok, detail = self.health()
            if ok:
                return "already running"
            return (
                f"{UNHEALTHY} ({detail}); PID {st.pid} left alone, not replaced (its log: "
                f"{self.log_file}; to restart it: oms services down {self.name}, then up)"
            )
        died = self.proc.died()
        self.proc.clear()
        busy = [p for p in self.ports() if port_in_use(p)]
        if busy and self.health()[0]:
            return (
                "already running (not started from this data folder, so its PID is unknown "
                "and `oms down` will not stop it)"
            )
        if busy:
            raise ServiceError(
                f"{self.name} cannot start: port {busy[0]} on 127.0.0.1 is already in use "
                f"by another process (change it in {self.settings.port_origin(busy[0])})"
            )
        try:
            command, env = self.command()
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            raise ServiceError(f"{self.name} cannot start: cannot prepare{where}: {os_reason(exc)}") from exc
        self.proc.spawn(command, self.address, env=env)
        self._wait_healthy()
        return f"started (the previous one, PID {died.pid}, had died)" if died else "started"

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        detail = "no answer"
        started = False
        while time.monotonic() < deadline:
            code = self.proc.exited()
            if code is not None:
                self.proc.stop()
                raise ServiceError(
                    f"{self.name} failed to start (exit code {code}); log: {self.log_file}\n"
                    f"{tail(self.log_file, since=self.proc.log_start)}"
                )
            if not started:
                started = self._answers()
                if started:
                    try:
                        self.after_start()
                    except ServiceError:
                        self.proc.stop()
                        raise
            if started:
                ok, detail = self.health()
                if ok:
                    return
            time.sleep(0.1)
        self.proc.stop()
        raise ServiceError(
            f"{self.name} did not become healthy within {self.start_timeout:.0f}s ({detail}); "
            f"log: {self.log_file}\n{tail(self.log_file, since=self.proc.log_start)}"
        )

    def _answers(self) -> bool:
        """True once the process accepts requests (before any initialisation)."""
        return self.health()[0]

    def down(self) -> bool:
        return self.proc.stop()

    def status(self) -> Status:
        st = self.proc.running()
        if st is None:
            gone = self.proc.died()
            if gone is not None:
                since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(gone.create_time))
                return Status(
                    self.name,
                    "died",
                    gone.pid,
                    self.address,
                    f"PID {gone.pid} (started {since}) is gone: killed or crashed; see its log",
                    self.log_file,
                )
            return Status(self.name, "stopped", None, self.address, "", self.log_file)
        ok, detail = self.health()
        return Status(self.name, "running" if ok else "unhealthy", st.pid, self.address, detail, self.log_file)
