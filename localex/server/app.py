"""The local exchange's aiohttp application: every route on one port, and its background tasks.

Path layout (one port): Spot REST ``/api/v3``, SAPI ``/sapi/v1|v3|v4``, USD-M REST ``/fapi/v1|v2|v3``;
Spot streams ``/ws/<stream>``, ``/stream?streams=``, ``/stream/ws/<n>`` (ccxt.pro); futures streams under
``/fstream`` (with ccxt.pro's ``/public``, ``/market``, ``/private`` categories and ``?listenKey=``);
WebSocket API ``/ws-api/v3`` (Spot) and ``/ws-fapi/v1`` (futures); admin ``/admin/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from localex.engine import Exchange, PricePath, Replay
from localex.engine.markets import default_specs
from localex.server import (
    demo,
    routes_admin,
    routes_algo,
    routes_amend,
    routes_futures,
    routes_futures_account,
    routes_market,
    routes_sapi,
    routes_spot,
)
from localex.server.depth import DepthPublisher
from localex.server.errors import BinanceError
from localex.server.events import EventRouter
from localex.server.guard import check_listen_host, host_guard
from localex.server.http import error_response, json_errors, json_response, make_handler
from localex.server.state import STATE_KEY, ServerConfig, ServerState
from localex.server.streams import serve_stream_socket
from localex.server.tickers import TICK_S, TickerPublisher
from localex.server.ws_api import serve_ws_api
from oms.archive.pricepath import CrossPath

log = logging.getLogger(__name__)
REPLAY_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("replay_task", asyncio.Task)
TICKER_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("ticker_task", asyncio.Task)
SUMMARY_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("summary_task", asyncio.Task)
DEPTH_KEY: web.AppKey[DepthPublisher] = web.AppKey("depth", DepthPublisher)


def _stream_handler(state: ServerState) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ip = request.remote or "127.0.0.1"
        endpoint = "fstream" if request.path.startswith("/fstream") else "stream"
        try:
            state.limiter.charge_connection(ip, endpoint, time.time_ns() // 1_000_000)
        except BinanceError as err:
            state.counters.bad("ws_stream_connection_rate", ip)
            state.counters.error(err.code)
            return error_response(err)
        return await serve_stream_socket(request, state.hub, state.listen_keys.by_key)

    return handle


def _ws_api_handler(state: ServerState, market: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve_ws_api(request, state, market)

    return handle


async def _ticker_loop(state: ServerState, publisher: TickerPublisher) -> None:
    while True:
        await asyncio.sleep(TICK_S - time.time() % TICK_S)  # wake on 100 ms boundaries: pushes stay on time
        try:
            publisher.tick(state.exchange.now_ns() // 1_000_000)
        except Exception:
            log.exception("ticker publishing failed")


async def _replay_loop(state: ServerState, router: EventRouter) -> None:
    interval = state.config.replay_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            state.exchange.advance()  # to the exchange's own clock: marks, ladder, funding times passed
            now_ms = time.time_ns() // 1_000_000
            for key in state.listen_keys.expired(now_ms):
                account = state.listen_keys.by_key.get(key)
                if account is not None:
                    state.listen_keys.close(account)
                state.hub.close_listen_key(key)
        except Exception:
            log.exception("replay step failed")


async def _summary_loop(state: ServerState) -> None:
    interval = state.config.bad_input_summary_s
    while True:
        await asyncio.sleep(interval)
        state.counters.log_summary()


def _refuse_host(state: ServerState) -> Callable[[web.Request], web.StreamResponse]:
    def refuse(request: web.Request) -> web.StreamResponse:
        state.counters.bad("http_bad_host", f"{request.method} {request.path} Host={request.headers.get('Host')!r}")
        msg = "Host header must name this server on loopback (127.0.0.1, localhost or [::1] with its port)"
        if request.path.startswith("/admin/"):
            return json_response({"code": -1, "msg": msg}, 403)
        state.counters.error(-1002)
        return json_response({"code": -1002, "msg": f"You are not authorized to execute this request. {msg}."}, 403)

    return refuse


def build_app(
    config: ServerConfig, exchange: Exchange | None = None, paths: Mapping[str, PricePath | CrossPath] | None = None
) -> web.Application:
    """The application: routes, engine listener, demo accounts, replay timer (when ``paths`` given).

    ValueError when ``config.host`` is not a loopback address; ``PrivateFileError`` when the install's
    admin token or demo-keys file is unusable (the message names the file and the fix).
    """
    check_listen_host(config.host)
    if exchange is None:
        specs = default_specs()
        if config.max_open_orders is not None:
            specs = [dataclasses.replace(s, max_num_orders=config.max_open_orders) for s in specs]
        # no seed: keys from the operating system's generator; liquidity is seeded either way
        exchange = Exchange(clock=time.time_ns, seed=config.seed or 0, specs=specs, random_keys=config.seed is None)
    ex = exchange
    state = ServerState(ex, config)
    depth = DepthPublisher(state)
    router = EventRouter(state, depth)
    app = web.Application(
        middlewares=[host_guard(config.host, _refuse_host(state)), json_errors], client_max_size=1 << 20
    )
    app[STATE_KEY] = state
    app[DEPTH_KEY] = depth
    for module in (
        routes_market,
        routes_spot,
        routes_amend,
        routes_futures,
        routes_futures_account,
        routes_algo,
        routes_sapi,
    ):
        for ep in module.ENDPOINTS:
            app.router.add_route(ep.method, ep.path, make_handler(ep, state))
    routes_admin.add_routes(app, state)
    stream = _stream_handler(state)
    for path in ("/ws", "/ws/{tail:.*}", "/stream", "/stream/{tail:.*}", "/fstream/{tail:.*}"):
        app.router.add_get(path, stream)
    app.router.add_get("/ws-api/v3", _ws_api_handler(state, "spot"))
    app.router.add_get("/ws-fapi/v1", _ws_api_handler(state, "usdm"))

    if config.demo_accounts:
        state.demo_keys = demo.setup_demo(ex, config.data_dir, seeded=config.seed is not None)

    async def on_startup(app: web.Application) -> None:
        router.bind(asyncio.get_running_loop())
        ex.add_listener(router.on_event)
        if paths and config.replay:
            Replay(ex, paths, speed=config.speed, seed=config.seed)
        app[REPLAY_TASK] = asyncio.get_running_loop().create_task(_replay_loop(state, router))
        app[TICKER_TASK] = asyncio.get_running_loop().create_task(_ticker_loop(state, TickerPublisher(state, depth)))
        app[SUMMARY_TASK] = asyncio.get_running_loop().create_task(_summary_loop(state))

    async def on_shutdown(app: web.Application) -> None:
        for key in (REPLAY_TASK, TICKER_TASK, SUMMARY_TASK):
            task = app.get(key)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for conn in list(state.hub.connections):
            await conn.outbox.ws.close(code=1001, message=b"server shutdown")
        for session in list(state.ws_api_sessions):
            await session.outbox.ws.close(code=1001, message=b"server shutdown")  # type: ignore[attr-defined]
        ex.remove_listener(router.on_event)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


def server_state(app: web.Application) -> ServerState:
    """The state of a built app (for tests and the embedded stack)."""
    return app[STATE_KEY]
