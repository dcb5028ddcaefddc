"""``python -m localex`` as the embedded stack runs it: health check, demo keys file, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import free_port

from localex import clients
from localex.admin_client import AdminClient


def test_subprocess_serves_demo_keys_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localex",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            "--seed",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert urllib.request.urlopen(url + "/api/v3/ping", timeout=1).read() == b"{}"
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not become healthy"
                time.sleep(0.1)
        saved = json.loads((tmp_path / "localex-demo-keys.json").read_text())
        assert "LOCAL TEST KEYS" in saved["notice"]
        served = AdminClient.for_install(url, tmp_path).call("GET", "/admin/v1/demo-keys")
        assert [k["apiKey"] for k in served] == [k["apiKey"] for k in saved["keys"]]
        main = saved["keys"][0]
        ex = clients.ccxt_sync(url, main["apiKey"], main["secret"])
        assert ex.fetch_balance()["total"]["USDT"] == 1_000_000
        subs = ex.sapiGetSubAccountList()["subAccounts"]
        assert {s["email"] for s in subs} == {"demo-sub-spot@localex.invalid", "demo-sub-futures@localex.invalid"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_oms_exchange_serve_runs_the_local_exchange_as_its_own_process(tmp_path: Path) -> None:
    port = free_port()
    oms = Path(sys.executable).with_name("oms")
    proc = subprocess.Popen(
        [str(oms), "exchange", "serve", "--port", str(port), "--no-replay", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=1).read() == b"{}"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "oms exchange serve did not serve"
                time.sleep(0.1)
        assert (tmp_path / "localex-demo-keys.json").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_oms_refuses_unknown_options_outside_exchange_serve() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("oms")), "config", "check", "--bogus"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unrecognized arguments: --bogus" in out.stderr
