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


# Long end-to-end files that run in `make test-scenarios` (CI runs it after `make test`), so that `make test`
# stays under 15 minutes; everything under tests/scenarios/ is a scenario too (its own conftest).
SCENARIO_FILES = {
    "tests/integration/test_services_hardening.py",  # whole service stacks started and broken, ~3 min
    "tests/integration/test_services.py",  # the whole stack up, twice, restarted, down (~90 s)
    "tests/integration/test_prefect_auth.py",  # a Prefect server of its own behind the auth string
    "tests/integration/test_up_provisioning.py",  # OpenBao and the local exchange up, three times
    "tests/integration/test_live_preflight.py",  # Vault and a local exchange as the "live" venue
    "tests/backtest/test_sweep_flow.py",  # a Dask cluster under Prefect
    "tests/backtest/test_engine_cache.py",  # a fresh-cache compile in a second process
    "tests/stream/test_daemon_controls.py",  # the daemon against the local exchange, end to end
    "tests/stream/test_daemon_key_rotation.py",
    "tests/stream/test_daemon_nats_outage.py",
    "tests/stream/test_daemon_process.py",
    "tests/stream/test_daemon_risk_webhook.py",
    "tests/stream/test_daemon_service.py",
    "tests/stream/test_daemon_strategies.py",
    "tests/stream/test_emulation_parents.py",  # parent orders through the daemon, a restart included (~60 s)
    "tests/stream/test_emulation_controls.py",  # slippage, managed exits, hosted on_fill/on_timer (~35 s)
    "tests/venues/binance/test_binance_failover.py",  # sockets cut mid-request through a proxy
    "tests/venues/binance/test_binance_many_accounts.py",  # 200 user streams
    "tests/keys/test_rotation_e2e.py",
    # the daemon against the local exchange, 20-35 s each: make test stays under 15 minutes on a fresh clone
    "tests/stream/test_breaker_trades.py",
    "tests/stream/test_daemon_amend.py",
    "tests/stream/test_daemon_funding.py",  # funding through the daemon, a restart included
    "tests/stream/test_daemon_market_streams.py",
    "tests/stream/test_daemon_futures_monitor.py",
    "tests/stream/test_daemon_futures_settings.py",  # USD-M settings enforced and commanded (~30 s)
}


def pytest_collection_modifyitems(config, items):
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[1]
    for item in items:
        try:
            rel = Path(item.path).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if rel in SCENARIO_FILES:
            item.add_marker(pytest.mark.scenario)
