"""One `oms up`/`down` at a time per data folder: an flock on `{data_dir}/run/services.lock`.

Two `oms up` at once used to stop each other's not-yet-healthy servers. Now the second waits for the
first (up to a bounded timeout), saying who it waits for, and then finds the services running; on
timeout it fails naming the PID and command that hold the lock. The kernel releases an flock when its
holder exits, however it exits, so a crashed `oms up` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from oms.services.process import ServiceError, os_reason

DEFAULT_WAIT = 300.0  # an `oms up` of the whole stack takes well under this on a busy 2-core machine


class ServiceLock:
    """``with ServiceLock(data_dir, "oms up"):`` holds the data folder's service lock."""

    def __init__(
        self,
        data_dir: Path,
        purpose: str,
        timeout: float = DEFAULT_WAIT,
        on_wait: Callable[[str], None] | None = None,
    ):
        self.path = Path(data_dir) / "run" / "services.lock"
        self.purpose = purpose
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as written by its holder: 'PID 123 (`oms up`, since 08:01:02 UTC)'."""
        try:
            info = json.loads(Path(self.path).read_text() or "{}")
            since = time.strftime("%H:%M:%S UTC", time.gmtime(float(info["since"])))
            return f"PID {int(info['pid'])} (`{info['purpose']}`, since {since})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process (it has not written its PID yet)"

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ServiceError(f"cannot take the services lock {self.path}: {os_reason(exc)}") from exc
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = self.holder()
                    os.close(fd)
                    raise ServiceError(
                        f"another oms command holds {self.path}: {who}; waited {self.timeout:.0f}s for it "
                        f"to finish. Wait for it, or stop that process if it hangs."
                    ) from None
                if not told:
                    told = True
                    message = f"waiting for {self.holder()} to finish (lock {self.path})"
                    (self.on_wait or _to_stderr)(message)
                time.sleep(0.1)
        record = json.dumps({"pid": os.getpid(), "purpose": self.purpose, "since": time.time()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        except OSError:
            pass  # the lock holds without the note (e.g. a full disk); waiters then cannot name us
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ServiceLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
