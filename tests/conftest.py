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
