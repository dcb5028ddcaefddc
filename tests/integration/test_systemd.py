"""`oms deploy systemd` writes units systemd accepts; `oms services run` is the foreground form they start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from oms.bus import NatsClientSettings, connect_as
from oms.services import free_port

ROOT = Path(__file__).resolve().parents[2]
OMS = str(Path(sys.executable).parent / "oms")


def _units(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, str]:
    dest = tmp_path / "units"
    out = subprocess.run(
        [OMS, "deploy", "systemd", "--dest", str(dest), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    ).stdout
    assert "systemctl" in out and "enable --now oms.target" in out
    return {p.name: p.read_text() for p in sorted(dest.iterdir())}


def _options(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_units_cover_every_part_and_carry_the_daemons_cores(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    stream = configs / "stream.yaml"
    stream.write_text(stream.read_text().replace("cpu_cores: [1]", "cpu_cores: [0, 1]"))
    units = _units(tmp_path, "--config", str(configs), env={"OMS_NATS_PORT": "4999"})
    assert set(units) == {
        "oms-nats.service",
        "oms-openbao.service",
        "oms-prefect.service",
        "oms-localex.service",
        "oms-dask.service",
        "oms-stream.service",
        "oms-flows.service",
        "oms.target",
    }
    dask = _options(units["oms-dask.service"])
    assert dask["ExecStart"][0].endswith(f"services run dask --config {configs.resolve()}")
    assert "oms-dask.service" in _options(units["oms-flows.service"])["After"][0]
    daemon = _options(units["oms-stream.service"])
    assert daemon["CPUAffinity"] == ["0 1"]
    assert daemon["Restart"] == ["always"]
    assert daemon["ExecStart"] == [f"{OMS} stream run --config {configs.resolve()}"]
    assert "User" not in daemon and "Nice" not in daemon  # user units: no privileged options
    assert daemon["Environment"] == ['"OMS_NATS_PORT=4999"']
    nats_unit = _options(units["oms-nats.service"])
    assert nats_unit["Type"] == ["notify"]
    assert nats_unit["ExecStart"] == [f"{OMS} services run nats --config {configs.resolve()}"]
    target = _options(units["oms.target"])
    assert set(target["Wants"][0].split()) == set(units) - {"oms.target"}
    assert target["WantedBy"] == ["default.target"]


def test_system_units_run_as_the_user_with_raised_priority(tmp_path):
    daemon = _options(_units(tmp_path, "--system")["oms-stream.service"])
    assert daemon["User"] and daemon["Nice"] == ["-5"] and daemon["OOMScoreAdjust"] == ["-500"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("mode", [(), ("--system",)], ids=["user", "system"])
def test_systemd_accepts_the_units(tmp_path, mode):
    _units(tmp_path, *mode)
    paths = sorted(str(p) for p in (tmp_path / "units").iterdir())
    res = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def test_services_run_reports_ready_to_systemd_and_stops_on_sigterm(tmp_path):
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(60)
    port = free_port()
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "OMS_DATA_DIR": str(tmp_path / "data"),
        "OMS_NATS_PORT": str(port),
        "OMS_NATS_MONITOR_PORT": str(free_port()),
    }
    proc = subprocess.Popen([OMS, "services", "run", "nats"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        ready = listener.recv(4096).decode()
        assert "READY=1" in ready and f"MAINPID={proc.pid}" in ready

        async def roundtrip() -> bool:  # the server answers a client of one of its identities
            nc = await connect_as(NatsClientSettings(f"nats://127.0.0.1:{port}", "reader", tmp_path / "data"))
            try:
                await nc.flush(timeout=5)
                return nc.is_connected
            finally:
                await nc.close()

        import asyncio

        assert asyncio.run(roundtrip())
        record = tmp_path / "data" / "run" / "nats.json"
        assert record.exists()  # `oms services status` sees it like one from `oms up`
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "STOPPING=1" in listener.recv(4096).decode()
        assert not record.exists()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run([OMS, "services", "down", "nats"], env=env, capture_output=True)
        listener.close()
