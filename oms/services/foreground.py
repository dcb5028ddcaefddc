"""Run one embedded service in the foreground, for a supervisor (systemd) instead of `oms up`.

``run_foreground`` starts the service exactly as `oms up` does (same command, same data folder, same PID
record, so `oms services status` sees it), waits until it is healthy (OpenBao: initialised and unsealed),
tells systemd it is ready (``sd_notify`` READY=1 on ``$NOTIFY_SOCKET`` when the unit is ``Type=notify``),
then waits. SIGTERM or SIGINT stops the server and returns 0; the server dying on its own returns its exit
code, so the unit's ``Restart=`` policy applies.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable

from oms.services.base import UNHEALTHY, Service
from oms.services.process import ServiceError


def sd_notify(message: str) -> bool:
    """Send ``message`` to systemd's notification socket; False when not run by systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(message.encode())
    return True


def run_foreground(service: Service, report: Callable[[str], None] = print, poll_s: float = 0.5) -> int:
    """Start ``service``, report readiness, and block until a signal or the server's own exit."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        outcome = service.up()
        if outcome.startswith(UNHEALTHY):
            raise ServiceError(f"{service.name} is {outcome}")
        if outcome.startswith("already running (not started from this data folder"):
            raise ServiceError(
                f"{service.name}: another server already answers on {service.address}; "
                "stop it or change the port before running this one under a supervisor"
            )
        state = service.proc.running()
        pid = state.pid if state else None
        report(f"{service.name} {outcome}: {service.address} (PID {pid}, log {service.log_file})")
        sd_notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS={service.name} on {service.address}")
        while not stop.wait(poll_s):
            code = service.proc.exited()  # polls (and reaps) the child this process spawned
            if code is None and service.proc.running() is None:  # one adopted from `oms up` is gone
                code = 1
            if code is not None:
                report(f"{service.name} (PID {pid}) exited on its own (code {code}); log: {service.log_file}")
                service.proc.clear()
                return code if code else 1
        sd_notify("STOPPING=1")
        service.down()
        report(f"{service.name} stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
