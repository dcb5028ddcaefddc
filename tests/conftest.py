"""Shared test harness: real servers on free loopback ports in temporary folders, stopped at the end.

Prefect is made hermetic before anything imports it: a temporary PREFECT_HOME, no telemetry, and no
PREFECT_API_URL inherited from the developer's shell (the `prefect_server` fixture sets its own).
"""

from __future__ import annotations

import os
import tempfile

_PREFECT_HOME = tempfile.mkdtemp(prefix="oms-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.pop("PREFECT_API_URL", None)

pytest_plugins = ["tests.harness.servers"]


def _interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C, so every fixture's teardown still stops its servers.

    The services run in their own sessions (they outlive `oms up` by design), so a test run killed by a
    timeout or `kill` would otherwise leave its nats-server, OpenBao and Prefect children running.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def _raise(signum, _frame):
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the run at once
        raise KeyboardInterrupt(f"test run stopped by signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


_interrupt_on_termination()
