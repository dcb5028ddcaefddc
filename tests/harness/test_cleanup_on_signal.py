"""A test run stopped by SIGTERM still stops the servers its fixtures started (no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_to_a_test_run_stops_its_nats_server(tmp_path):
    pidfile = tmp_path / "nats.pid"
    proc = None
    test_file = ROOT / "tests" / "harness" / f"_sigterm_probe_{os.getpid()}_test.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            import time
            from pathlib import Path

            def test_hangs(nats_server):
                Path({str(pidfile)!r}).write_text(str(nats_server.service.proc.running().pid))
                time.sleep(120)
            """
        )
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the probe run never started its nats-server"
            time.sleep(0.1)
        nats_pid = int(pidfile.read_text())
        assert psutil.pid_exists(nats_pid)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        alive = psutil.wait_procs([psutil.Process(nats_pid)], timeout=30)[1] if psutil.pid_exists(nats_pid) else []
        for orphan in alive:  # this test's own orphan: stop it before failing
            orphan.kill()
        assert not alive, f"nats-server {nats_pid} outlived the stopped test run:\n{out.decode()}"
    finally:
        test_file.unlink(missing_ok=True)
        if proc is not None and proc.poll() is None:
            proc.kill()
