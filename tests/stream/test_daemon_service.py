"""The daemon as a managed service: `Services.up(["stream"])` starts `oms stream run` and waits for its /health,
`status` reports how many accounts trade, `down` stops it with SIGTERM (a clean stop, not a kill)."""

from __future__ import annotations

import asyncio

from oms.config import load_config
from oms.services import Services, ServiceSettings
from tests.stream.conftest import unique


async def test_oms_up_starts_the_daemon_and_down_stops_it_cleanly(bench, monkeypatch):
    name = unique("svc")
    cfg_dir = bench.write([name])
    for key, value in bench.env.items():
        monkeypatch.setenv(key, value)  # `--keys auto` takes OMS_KEY_* when there is no demo-keys file
    settings = ServiceSettings.from_config(load_config(cfg_dir, env={}))
    assert settings.stream_enabled is False and settings.config_dir == cfg_dir  # off unless configured
    settings = ServiceSettings(**{**settings.__dict__, "stream_enabled": True})
    services = Services(settings)
    try:
        up = await asyncio.to_thread(services.up, ["stream"])
        assert [(r.name, r.outcome) for r in up] == [("stream", "started")]
        status = services["stream"].status()
        assert status.state == "running" and "of 2 account(s) trading" in status.detail, status
        assert "stream" in [s.name for s in services.status()]
    finally:
        stopped = await asyncio.to_thread(services.down, ["stream"])
    assert stopped == ["stream"]
    log = services["stream"].log_file.read_text()
    assert "stopping (open orders: leave)" in log and "stopped" in log.splitlines()[-1]
