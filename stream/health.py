"""The daemon's operations endpoints (aiohttp, loopback only).

On ``daemon.health_port``:

* ``GET /health``: 200 with every account's summary while the daemon runs and trades all its accounts,
  503 (same body) when one of them is not trading (refused, reconciling, disconnected) or it is stopping;
* ``GET /health/{exchange}/{account}``: one account: ``connected``, ``last_message_age_s``,
  ``rate_limit_headroom`` (share of the weight budget free this minute), ``trading`` and ``trading_state``,
  ``open_orders``; 404 naming the accounts it has for another.

On ``daemon.metrics_port``: ``GET /metrics`` in Prometheus text format (``stream.metrics``). If both ports
are the same, one server answers all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from stream.metrics import CONTENT_TYPE

log = logging.getLogger("stream.health")
HOST = "127.0.0.1"


class OpsServer:
    """``account_health(name)`` -> dict or None; ``summary()`` -> (healthy, dict); ``metrics()`` -> bytes."""

    def __init__(
        self,
        health_port: int,
        metrics_port: int,
        *,
        summary: Callable[[], tuple[bool, dict]],
        account_health: Callable[[str], dict | None],
        accounts: Callable[[], list[str]],
        metrics: Callable[[], bytes],
    ):
        self.health_port, self.metrics_port = health_port, metrics_port
        self._summary, self._account, self._accounts, self._metrics = summary, account_health, accounts, metrics
        self._runners: list[web.AppRunner] = []

    async def _health(self, request: web.Request) -> web.Response:
        ok, body = self._summary()
        return web.json_response(body, status=200 if ok else 503)

    async def _one(self, request: web.Request) -> web.Response:
        name = f"{request.match_info['exchange']}/{request.match_info['account']}"
        body = self._account(name)
        if body is None:
            return web.json_response(
                {"error": f"{name} is not an account of this daemon", "accounts": self._accounts()}, status=404
            )
        return web.json_response(body, status=200 if body.get("trading") else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        health = web.Application()
        health.router.add_get("/health", self._health)
        health.router.add_get("/health/{exchange}/{account}", self._one)
        if self.metrics_port == self.health_port:
            health.router.add_get("/metrics", self._metrics_page)
            apps = [(health, self.health_port)]
        else:
            metrics = web.Application()
            metrics.router.add_get("/metrics", self._metrics_page)
            apps = [(health, self.health_port), (metrics, self.metrics_port)]
        for app, port in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, HOST, port).start()
            except OSError as exc:
                await runner.cleanup()
                await self.stop()
                raise OSError(
                    f"cannot serve on {HOST}:{port} (daemon.health_port/metrics_port in "
                    f"configs/stream.yaml): {exc.strerror or exc}"
                ) from exc
            self._runners.append(runner)
        log.info(
            "health on http://%s:%d/health, metrics on http://%s:%d/metrics",
            HOST,
            self.health_port,
            HOST,
            self.metrics_port,
        )

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
