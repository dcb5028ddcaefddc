"""Start, track and stop one background server process that this project owns.

State lives in `{data_dir}/run/{name}.json` (PID, process-group ID, start time, address) so that `down`
stops exactly what `up` started, even from another shell; a PID reused by an unrelated process is
recognised by its start time and left alone. Output goes to `{data_dir}/logs/services/{name}.log`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says which, why and where its log is."""


@dataclass(frozen=True)
class RunState:
    pid: int
    create_time: float
    address: str
    command: list[str]


def find_binary(name: str, install_hint: str) -> str:
    """The path of `name`, looked up next to this interpreter first (the project's virtualenv), then PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError(f"binary '{name}' not found next to {sys.executable} or on PATH ({install_hint})")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port on 127.0.0.1 that is free right now (for tests and ad-hoc servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Lines that say why a server stopped, wherever they are in its log (a traceback's last lines often do not).
CAUSES = re.compile(
    r"disk is full|no space left|enospc|read-only file system|permission denied|address already in use"
    r"|database is locked|too many open files|cannot allocate memory",
    re.IGNORECASE,
)


def tail(path: Path, lines: int = 12, since: int = 0) -> str:
    """The last ``lines`` of a log written from byte ``since`` on, led by any line naming a known cause
    (full disk, read-only file system, permission denied, port in use) found earlier in that part."""
    try:
        with open(path, "rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    last = text[-lines:]
    causes = list(dict.fromkeys(line.strip() for line in text[:-lines] if CAUSES.search(line)))[-3:]
    return "\n".join([f"cause: {c[:300]}" for c in causes] + last)


def os_reason(exc: OSError) -> str:
    """An OSError as a short reason, e.g. 'No space left on device (the disk is full)'."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        text += " (the disk is full)"
    elif exc.errno == errno.EROFS:
        text += " (read-only file system)"
    return text


class ManagedProcess:
    """One long-running child process, detached into its own session, tracked by a state file."""

    def __init__(self, name: str, data_dir: Path):
        self.name = name
        self.data_dir = Path(data_dir)
        self.state_file = self.data_dir / "run" / f"{name}.json"
        self.log_file = self.data_dir / "logs" / "services" / f"{name}.log"
        self._popen: subprocess.Popen | None = None  # set when this object spawned the process
        self.log_start = 0  # where the current start's output begins in the log

    # ------------------------------------------------------------------ state
    def state(self) -> RunState | None:
        try:
            raw = json.loads(self.state_file.read_text())
            return RunState(int(raw["pid"]), float(raw["create_time"]), str(raw["address"]), list(raw["command"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def running(self) -> RunState | None:
        """The recorded process if it is still the one we started, else None (the record stays: see died)."""
        st = self.state()
        if st is None:
            return None
        return st if _is_alive(st) else None

    def died(self) -> RunState | None:
        """The record of a process we started that is gone (killed, crashed, or its PID reused), else None."""
        st = self.state()
        if st is None or _is_alive(st):
            return None
        return st

    def clear(self) -> None:
        """Forget the recorded process (after it stopped or died)."""
        self.state_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------ lifecycle
    def spawn(
        self, command: list[str], address: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> RunState:
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_file, "ab")  # closed by the `with` below, after the child has it
        except OSError as exc:
            raise ServiceError(
                f"{self.name} cannot start: cannot write its log {self.log_file}: {os_reason(exc)}"
            ) from exc
        with log:
            try:
                log.write(
                    f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} starting: "
                    f"{' '.join(command)}\n".encode()
                )
                log.flush()
            except OSError as exc:
                raise ServiceError(
                    f"{self.name} cannot start: cannot write its log {self.log_file}: {os_reason(exc)}"
                ) from exc
            self.log_start = log.tell()
            try:
                proc = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **(env or {})},
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServiceError(f"{self.name} failed to start: {exc}; log: {self.log_file}") from exc
        self._popen = proc
        state = RunState(proc.pid, psutil.Process(proc.pid).create_time(), address, command)
        try:
            _write_atomic(self.state_file, json.dumps(state.__dict__))
        except OSError as exc:  # an untracked server could never be stopped by `down`: stop it now
            _terminate(proc)
            raise ServiceError(
                f"{self.name} cannot start: cannot record its PID in {self.state_file}: {os_reason(exc)}"
            ) from exc
        return state

    def exited(self) -> int | None:
        """The exit code if the process we just spawned has already ended."""
        return self._popen.poll() if self._popen is not None else None

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the recorded process group (SIGTERM, then SIGKILL). True if something was stopped; the
        record of a process that had died is cleared (``died()`` tells that case apart beforehand)."""
        st = self.running()
        if st is None:
            self.clear()
            return False
        try:
            pgid = os.getpgid(st.pid)
        except ProcessLookupError:
            self.clear()
            return False
        # start_new_session made the child a group leader: the group holds only what it spawned.
        target = pgid if pgid == st.pid else None
        self._signal(st.pid, target, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(st.pid, target):
            time.sleep(0.05)
        if self._alive(st.pid, target):
            self._signal(st.pid, target, signal.SIGKILL)
            time.sleep(0.1)
        if self._popen is not None:
            self._popen.poll()  # reap our own child so it does not linger as a zombie
        self.state_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pid: int, pgid: int | None, sig: int) -> None:
        try:
            if pgid is not None:
                os.killpg(pgid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _alive(pid: int, pgid: int | None) -> bool:
        if pgid is not None:
            return _group_has_live(pgid)
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def _is_alive(st: RunState) -> bool:
    """The recorded PID is alive and is the very process we started (same start time), not a reuse."""
    try:
        proc = psutil.Process(st.pid)
        return abs(proc.create_time() - st.create_time) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _terminate(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _group_has_live(pgid: int) -> bool:
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, PermissionError):
            continue
    return False
