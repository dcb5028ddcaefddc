"""The embedded services come up healthy, survive `up` twice, keep OpenBao data across a restart, and go down."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import hvac
import psutil
import pytest
import yaml

from oms.config import DEFAULT_CONFIG_DIR
from oms.services import ServiceError, Services
from oms.services.nats import NatsService
from oms.services.process import find_binary
from tests.harness.servers import loopback_settings

OMS = str(Path(sys.executable).parent / "oms")


def test_stack_up_twice_restart_keeps_secrets_and_down(tmp_path):
    services = Services(loopback_settings(tmp_path / "data", localex_enabled=False))
    try:
        first = services.up()
        assert [(r.name, r.outcome) for r in first] == [
            ("nats", "started"),
            ("openbao", "started"),
            ("prefect", "started"),
        ]
        status = {s.name: s for s in services.status()}
        assert status["nats"].state == "running" and status["nats"].detail == "JetStream ok"
        assert status["openbao"].state == "running" and status["openbao"].detail == "unsealed, active"
        assert status["prefect"].state == "running"
        assert status["localex"].state == "stopped"
        pids = {name: s.pid for name, s in status.items() if s.pid}

        again = services.up()
        assert {r.outcome for r in again} == {"already running"}
        assert {s.name: s.pid for s in services.status() if s.pid} == pids

        init_file = tmp_path / "data" / "openbao" / "init.json"
        assert init_file.stat().st_mode & 0o777 == 0o600
        client = services["openbao"].client()
        client.secrets.kv.v2.create_or_update_secret(
            path="exchanges/binance_spot_main", secret={"api_key": "k1", "api_secret": "s1"}
        )

        assert services.down() == ["prefect", "openbao", "nats"]
        for pid in pids.values():
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert all(s.state == "stopped" for s in services.status())

        services.up()
        client = services["openbao"].client()
        read = client.secrets.kv.v2.read_secret_version(
            path="exchanges/binance_spot_main", raise_on_deleted_version=True
        )
        assert read["data"]["data"] == {"api_key": "k1", "api_secret": "s1"}
    finally:
        services.down()
    assert services.down() == []


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        svc = NatsService(loopback_settings(tmp_path, nats_port=port))
        with pytest.raises(ServiceError, match=rf"nats cannot start: port {port} on 127.0.0.1 is already in use"):
            svc.up()
    assert svc.status().state == "stopped"


def test_missing_binary_is_a_clear_error():
    with pytest.raises(ServiceError, match=r"binary 'no-such-server' not found .*\(pip install it\)"):
        find_binary("no-such-server", "pip install it")


def test_failed_start_names_the_service_and_its_log(tmp_path):
    svc = NatsService(loopback_settings(tmp_path))
    (tmp_path / "nats").mkdir()
    (tmp_path / "nats" / "jetstream").write_text("not a folder")  # JetStream cannot use its store
    with pytest.raises(ServiceError) as info:
        svc.up()
    message = str(info.value)
    assert message.startswith("nats failed to start (exit code")
    assert str(svc.log_file) in message


def test_cli_services_up_status_down(tmp_path):
    cfg_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg_dir)
    s = loopback_settings(tmp_path / "data")
    stream = yaml.safe_load((cfg_dir / "stream.yaml").read_text())
    stream["services"] = {
        "data_dir": str(s.data_dir),
        "nats": {"port": s.nats_port, "monitor_port": s.nats_monitor_port},
        "openbao": {"port": s.openbao_port, "cluster_port": s.openbao_cluster_port},
        "prefect": {"port": s.prefect_port},
        "local_exchange": {"enabled": False},
    }
    (cfg_dir / "stream.yaml").write_text(yaml.safe_dump(stream))

    def oms(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [OMS, *args, "--config", str(cfg_dir)],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "COLUMNS": "250"},
        )

    try:
        up = oms("services", "up", "nats", "openbao")
        assert up.returncode == 0, up.stderr
        assert f"nats     started          nats://127.0.0.1:{s.nats_port}" in up.stdout
        assert "openbao  started" in up.stdout
        status = oms("services", "status")
        assert status.returncode == 0, status.stdout
        assert "JetStream ok" in status.stdout and "unsealed, active" in status.stdout
        again = oms("services", "up", "nats")
        assert "already running" in again.stdout
        token = (s.data_dir / "openbao" / "init.json").read_text()
        assert hvac.Client(
            url=f"http://127.0.0.1:{s.openbao_port}", token=yaml.safe_load(token)["root_token"]
        ).is_authenticated()
    finally:
        down = oms("services", "down")
    assert down.returncode == 0 and "stopped: openbao, nats" in down.stdout
    assert "nothing was running" in oms("services", "down").stdout


def test_cli_reports_invalid_configuration_without_traceback(tmp_path):
    cfg_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg_dir)
    (cfg_dir / "stream.yaml").write_text("services: {nats: {port: zero}}\n")
    res = subprocess.run(
        [OMS, "services", "status", "--config", str(cfg_dir)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "stream.yaml: services.nats.port: Input should be a valid integer" in res.stderr
    assert "Traceback" not in res.stderr
