"""Issue 15, items 1, 8, 9 and 10: the embedded services under bad timing and bad input.

Every test starts the real servers on free loopback ports in its own folder and checks both the message
and that nothing else changed (the live server kept, nothing left running, the record kept or cleared).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest
import yaml

from oms.config import DEFAULT_CONFIG_DIR, load_config
from oms.services import ServiceError, Services, ServiceSettings
from oms.services.base import http_get
from oms.services.lock import ServiceLock
from oms.services.nats import NatsService
from tests.harness.servers import loopback_settings

OMS = str(Path(sys.executable).parent / "oms")


def write_config(folder: Path, s: ServiceSettings, localex: bool = False) -> Path:
    """configs/ with the services of ``s`` (ports, data folder)."""
    cfg_dir = folder / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg_dir)
    stream = yaml.safe_load((cfg_dir / "stream.yaml").read_text())
    stream["services"] = {
        "data_dir": str(s.data_dir),
        "nats": {"port": s.nats_port, "monitor_port": s.nats_monitor_port},
        "openbao": {"port": s.openbao_port, "cluster_port": s.openbao_cluster_port},
        "prefect": {"port": s.prefect_port},
        "local_exchange": {"enabled": localex},
    }
    (cfg_dir / "stream.yaml").write_text(yaml.safe_dump(stream))
    exchanges = yaml.safe_load((cfg_dir / "exchanges.yaml").read_text())
    exchanges["local_exchange"]["port"] = s.localex_port
    (cfg_dir / "exchanges.yaml").write_text(yaml.safe_dump(exchanges))
    return cfg_dir


def oms(*args: str, env: dict | None = None, columns: int = 250, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OMS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
    )


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# --------------------------------------------------------------------------- item 1: never replace a live server
async def _flood_ws_api(url: str, frames: int) -> set[int]:
    """Send ``frames`` pings on one WebSocket API connection; the set of statuses answered."""
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws-api/v3") as ws:
        for i in range(frames):
            await ws.send_str(json.dumps({"id": i, "method": "ping"}))
        for _ in range(frames):
            msg = await ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            statuses.add(json.loads(msg.data).get("status", 0))
    return statuses


def test_a_rate_limited_exchange_stays_healthy_and_up_keeps_it(tmp_path):
    services = Services(loopback_settings(tmp_path / "data"))
    try:
        assert [r.outcome for r in services.up(["localex"])] == ["started"]
        before = services["localex"].status()
        process = psutil.Process(before.pid)
        statuses = asyncio.run(_flood_ws_api(services["localex"].address, 8000))
        assert 429 in statuses or 418 in statuses, statuses
        code, _ = http_get(services["localex"].address + "/api/v3/ping")
        assert code == 418  # this IP is banned: the old health check called the exchange dead here
        status = services["localex"].status()
        assert status.state == "running" and "rate-limited (418" in status.detail
        again = services.up(["localex"])
        assert [r.outcome for r in again] == ["already running"] and again[0].ok
        assert services["localex"].status().pid == before.pid
        assert process.is_running() and process.create_time() == psutil.Process(before.pid).create_time()
    finally:
        services.down()


def test_a_live_but_unresponsive_server_is_reported_not_killed(tmp_path):
    services = Services(loopback_settings(tmp_path / "data", localex_enabled=False))
    try:
        services.up(["nats"])
        pid = services["nats"].status().pid
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
        try:
            # kill() only queues the stop: a server thread on the other core may still answer a request
            deadline = time.monotonic() + 10
            while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
                assert time.monotonic() < deadline, "nats-server did not stop on SIGSTOP"
                time.sleep(0.01)
            [result] = services.up(["nats"])
            assert not result.ok and result.outcome.startswith("running but unhealthy (no answer)")
            assert f"PID {pid} left alone, not replaced" in result.outcome
            assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
            res = oms("services", "up", "nats", "--config", str(write_config(tmp_path, services.settings)))
            assert res.returncode == 1 and "running but unhealthy, left as they are: nats" in res.stderr
            assert psutil.pid_exists(pid) and services["nats"].proc.running() is not None
        finally:
            os.kill(pid, signal.SIGCONT)
        assert services["nats"].status().state == "running"
    finally:
        services.down()


def test_a_server_of_another_data_folder_on_our_ports_is_reported_as_running(tmp_path):
    first = Services(loopback_settings(tmp_path / "a", localex_enabled=False))
    second = Services(ServiceSettings(**{**first.settings.__dict__, "data_dir": tmp_path / "b"}))
    try:
        first.up(["nats"])
        pid = first["nats"].status().pid
        [result] = second.up(["nats"])
        assert result.outcome.startswith("already running (not started from this data folder")
        assert second["nats"].proc.state() is None  # nothing recorded, nothing started
        assert first["nats"].status().pid == pid and first["nats"].status().state == "running"
        names = [p.info["name"] for p in psutil.process_iter(["name"]) if p.info["name"] == "nats-server"]
        listeners = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == first.settings.nats_port]
        assert names and len({c.pid for c in listeners if c.status == psutil.CONN_LISTEN}) == 1
    finally:
        first.down()


# --------------------------------------------------------------------------- item 8: one up/down at a time
def test_two_oms_up_at_once_both_succeed_with_one_prefect(tmp_path):
    s = loopback_settings(tmp_path / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    env = {**os.environ, "COLUMNS": "250"}
    cmd = [OMS, "services", "up", "prefect", "--config", str(cfg)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        lines = sorted(out.splitlines()[0].split()[1] for out, _ in outs)
        assert lines == ["already", "started"], outs
        waited = [err for _, err in outs if "waiting for " in err]  # the second one said whom it waited for
        assert len(waited) == 1 and "to finish (lock " in waited[0]
        status = Services(s)["prefect"].status()
        assert status.state == "running"
        log = (s.data_dir / "logs" / "services" / "prefect.log").read_text()
        assert log.count("starting:") == 1  # one server, never stopped by the other `up`
    finally:
        Services(s).down()


def test_a_held_lock_names_its_holder_after_the_wait(tmp_path):
    s = loopback_settings(tmp_path / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    with ServiceLock(s.data_dir, "pytest holding the lock"):
        res = oms("services", "up", "nats", "--config", str(cfg), "--wait", "0.5")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"holds {s.data_dir / 'run' / 'services.lock'}: PID {os.getpid()} (`pytest holding the lock`" in res.stderr
    assert "waited 0s" in res.stderr or "waited 1s" in res.stderr
    assert Services(s)["nats"].proc.state() is None and not socket_in_use(s.nats_port)


def socket_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- item 9: say which service and why
def test_kill_9_is_reported_as_died_until_down_clears_it(tmp_path):
    s = loopback_settings(tmp_path / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    services = Services(s)
    services.up(["nats"])
    pid = services["nats"].status().pid
    process = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)  # our own child: waiting reaps it
    for _ in range(2):  # reading the status does not forget the death
        res = oms("status", "--config", str(cfg))
        assert res.returncode == 1, res.stdout
        assert "died" in res.stdout and f"PID {pid}" in res.stdout
        assert f"nats died: PID {pid}" in res.stderr
    down = oms("down", "--config", str(cfg))
    assert down.returncode == 0 and f"nats: had died (PID {pid}); its record was cleared" in down.stdout
    after = oms("status", "--config", str(cfg))
    assert after.returncode == 0 and "died" not in after.stdout
    again = services.up(["nats"])
    assert again[0].outcome == "started"
    services.down()


def test_unknown_service_is_a_clear_error(tmp_path):
    cfg = write_config(tmp_path, loopback_settings(tmp_path / "data"))
    for verb in ("down", "up"):
        res = oms("services", verb, "foo", "--config", str(cfg))
        assert res.returncode == 1 and "unexpected" not in res.stderr
        assert "unknown service(s): foo; known: nats, openbao, prefect, localex" in res.stderr
    assert not (tmp_path / "data" / "run").exists() or not list((tmp_path / "data" / "run").glob("*.json"))


def test_port_busy_hint_names_where_the_port_was_set(tmp_path):
    s = loopback_settings(tmp_path / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = oms("services", "up", "nats", "--config", str(cfg), env={"OMS_NATS_PORT": str(port)})
        assert res.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use by another process" in res.stderr
        assert "(change it in environment variable OMS_NATS_PORT)" in res.stderr
        exchanges = cfg / "exchanges.yaml"
        exchanges.write_text(exchanges.read_text().replace(f"port: {s.localex_port}", f"port: {port}"))
        services = Services(ServiceSettings.from_config(load_config(cfg, env={})))
        with pytest.raises(ServiceError, match=rf"change it in {cfg / 'exchanges.yaml'} \(local_exchange.port\)"):
            services.up(["localex"])
    assert services["localex"].proc.state() is None


def test_a_file_as_data_folder_is_refused_before_anything_starts(tmp_path):
    s = loopback_settings(tmp_path / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    target = tmp_path / "a-file"
    target.write_text("x")
    res = oms("up", "--config", str(cfg), env={"OMS_DATA_DIR": str(target)})
    assert res.returncode == 1 and "unexpected" not in res.stderr
    assert (
        f"stream.yaml: services.data_dir: {target} is a file, not a folder (set by environment variable OMS_DATA_DIR)"
    ) in res.stderr
    with pytest.raises(ServiceError, match=rf"the services cannot use their data folder: {target} is a file"):
        Services(ServiceSettings(**{**s.__dict__, "data_dir": target})).up()
    assert target.read_text() == "x" and not socket_in_use(s.nats_port)


@pytest.fixture()
def small_tmpfs(tmp_path):
    """A 3 MB tmpfs: room for nats and OpenBao, not for Prefect's database. Needs mount rights (root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()}): full-disk test needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_read_only_data_folder_is_named(tmp_path, small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    s = loopback_settings(small_tmpfs / "data", localex_enabled=False)
    with pytest.raises(ServiceError) as info:
        Services(s).up()
    assert str(info.value) == (
        f"the services cannot use their data folder: {small_tmpfs / 'data'} cannot be created: "
        f"{small_tmpfs} is on a read-only file system"
    )
    cfg = write_config(tmp_path, s)
    res = oms("config", "check", str(cfg), env={"OMS_DATA_DIR": str(small_tmpfs)})
    assert res.returncode == 1
    assert f"stream.yaml: services.data_dir: {small_tmpfs} is on a read-only file system" in res.stdout
    assert not socket_in_use(s.nats_port)


def test_full_disk_names_the_cause_and_stops_what_it_started(small_tmpfs):
    s = loopback_settings(small_tmpfs / "data", localex_enabled=False)
    services = Services(s)
    try:
        with pytest.raises(ServiceError) as info:
            services.up()
        message = str(info.value)
        assert message.startswith("prefect failed to start (exit code")
        assert "cause: sqlite3.OperationalError: database or disk is full" in message
        assert message.endswith("(stopped openbao, nats again, which this `up` had started)")
        assert {st.state for st in services.status()} == {"stopped"}  # every service, the daemon's included
        assert not socket_in_use(s.nats_port) and not socket_in_use(s.openbao_port)
    finally:
        services.down()


def test_exchange_serve_refuses_bad_options_before_starting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = oms("exchange", "serve", "--port", str(port), timeout=60)
    assert res.returncode == 1 and f"--port {port}: already in use on 127.0.0.1" in res.stderr
    res = oms("exchange", "serve", "--port", "65536", timeout=60)
    assert res.returncode == 1 and "--port 65536: out of range (a TCP port is 1-65535)" in res.stderr
    res = oms("exchange", "serve", "--port", "http", timeout=60)
    assert res.returncode == 1 and "--port 'http': not a port number (1-65535)" in res.stderr
    target = tmp_path / "file"
    target.write_text("x")
    res = oms("exchange", "serve", "--port", "0", "--data-dir", str(target), timeout=60)
    assert res.returncode == 1 and "out of range" in res.stderr
    free = NatsService(loopback_settings(tmp_path)).settings.localex_port
    res = oms("exchange", "serve", "--port", str(free), "--data-dir", str(target), timeout=60)
    assert res.returncode == 1 and f"--data-dir: {target} is a file, not a folder" in res.stderr
    assert "Traceback" not in res.stderr and target.read_text() == "x"


# --------------------------------------------------------------------------- item 10: status fits the terminal
def test_status_fits_a_narrow_terminal_or_goes_one_service_a_line(tmp_path):
    s = loopback_settings(tmp_path / "a-rather-long-folder-name-for-the-data" / "data", localex_enabled=False)
    cfg = write_config(tmp_path, s)
    narrow = oms("status", "--config", str(cfg), columns=80)
    assert narrow.returncode == 0
    lines = narrow.stdout.splitlines()
    expected = [st.name for st in Services(ServiceSettings.from_config(load_config(cfg, env={}))).status()]
    assert {"nats", "openbao", "prefect", "localex", "flows"} <= set(expected)
    assert [line.split()[0] for line in lines] == expected
    for line, name in zip(lines, expected, strict=True):
        assert str(s.data_dir / "logs" / "services" / f"{name}.log") in line and "…" not in line
    wide = oms("status", "--config", str(cfg), columns=400)
    assert wide.returncode == 0 and "embedded services" in wide.stdout and "…" not in wide.stdout
    assert str(s.data_dir / "logs" / "services" / "openbao.log") in wide.stdout
    assert max(len(line) for line in wide.stdout.splitlines()) <= 400
