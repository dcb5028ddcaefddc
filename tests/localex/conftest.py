"""A real local exchange on a free loopback port, one per test module, run in its own thread and loop.

Sync clients (ccxt, python-binance ``Client``) and async ones (ccxt.pro, ``AsyncClient``) talk to it over
real sockets; tests read keys from its admin API like any caller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from localex.admin_client import AdminClient
from localex.engine import Exchange
from localex.server.app import build_app, server_state
from localex.server.protocol import make_runner
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive.market import load_default_paths
from tests.harness.remote_exchange import new_account


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """A running server: its base URL and admin helpers."""

    url: str
    loop: asyncio.AbstractEventLoop
    app: web.Application

    @property
    def admin_token(self) -> str:
        """The server's admin token (a fixture's server holds it in memory: no data folder)."""
        return server_state(self.app).admin_token

    def admin(self, method: str, path: str, body: dict[str, object] | None = None) -> object:
        """Call the admin API over HTTP with the server's token and return the decoded JSON."""
        return AdminClient(self.url, self.admin_token).call(method, path, body)

    def resting_futures_price(self, symbol: str = "BTCUSDT", below: float = 0.03) -> str:
        """A BUY limit price ``below`` (fraction) under the mark: rests on the book and stays inside USD-M's
        PERCENT_PRICE band (mark * 0.95 .. 1.05) while the replay moves the mark a little."""
        with urllib.request.urlopen(f"{self.url}/fapi/v1/premiumIndex?symbol={symbol}", timeout=5) as resp:
            mark = float(json.loads(resp.read())["markPrice"])
        return f"{mark * (1 - below):.1f}"

    def new_account(
        self,
        spot: dict[str, str] | None = None,
        futures: dict[str, str] | None = None,
        permissions: list[str] | None = None,
        parent: str | None = None,
    ) -> tuple[str, str, str]:
        """Create and fund an account with one key: ``(account_id, api_key, secret)``."""
        return new_account(self.admin, spot, futures, permissions, parent)


def start_server(config: ServerConfig, exchange: Exchange | None = None) -> Iterator[LocalServer]:
    """Start the app in a thread (on ``exchange`` when given, e.g. one with a test clock); yield it; stop it."""
    loop = asyncio.new_event_loop()
    app = build_app(config, exchange, paths=load_default_paths() if config.replay else None)
    runner = make_runner(app)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, config.host, config.port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="localex-test-server", daemon=True)
    thread.start()
    assert ready.wait(10), "local exchange did not start"
    try:
        yield LocalServer(f"http://{config.host}:{config.port}", loop, app)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A local exchange for one test module (generous rate limits so suites do not trip them)."""
    limits = RateLimitConfig(
        spot_weight_per_minute=100_000,
        futures_weight_per_minute=100_000,
        spot_orders_per_10s=10_000,
        futures_orders_per_10s=10_000,
        futures_orders_per_minute=100_000,
    )
    yield from start_server(ServerConfig(port=free_port(), rate_limits=limits, speed=600.0, replay_interval_s=0.1))


@contextlib.contextmanager
def localex_process(
    data_dir: Path | None, *args: str, port: int | None = None, umask: int | None = None, replay: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m localex`` as its own process (``--no-replay`` unless ``replay``: then real prices move its
    books and marks; a free port unless ``port``), healthy; yields ``(process, url)`` and stops it with SIGTERM
    (asserting a clean exit)."""
    port = port or free_port()
    command = [sys.executable, "-m", "localex", "--port", str(port), *([] if replay else ["--no-replay"]), *args]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    if umask is not None:  # through a shell: preexec_fn is unsafe in this threaded test process
        command = ["/bin/sh", "-c", f"umask {umask:03o} && exec {shlex.join(command)}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/api/v3/ping", timeout=1) as resp:
                    assert resp.read() == b"{}"
                break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise AssertionError(f"local exchange exited with {proc.returncode}: {out}") from None
                assert time.monotonic() < deadline, "local exchange did not become healthy"
                time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
