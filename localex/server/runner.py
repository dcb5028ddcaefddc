"""Run the server until SIGTERM/SIGINT: ``python -m localex`` and ``oms exchange serve`` share this."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal

from aiohttp import web

from localex.engine import ENGINE, ENGINE_REASON
from localex.server.app import build_app
from localex.server.ratelimit import RateLimitConfig
from localex.server.state import ServerConfig
from oms.archive.market import load_default_paths

log = logging.getLogger("localex")
# The engine keeps every order and fill, so the heap only grows and the default collector (a young
# collection every 700 allocations, full ones as the heap grows) costs ~25% of the engine's time.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collector settings for the server process, applied once start-up is done.

    ``gc.freeze()`` moves everything allocated so far (modules, markets, the replayed price paths) out of
    the collector's sight; the higher young-generation threshold makes collections rarer. Reference
    cycles are still collected, only less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's command-line options."""
    parser.add_argument("--host", default="127.0.0.1", help="listen address (loopback only by design)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port for REST, streams and WebSocket API")
    parser.add_argument("--seed", type=int, default=0, help="seed of the engine (demo keys, liquidity)")
    parser.add_argument("--speed", type=float, default=60.0, help="seconds of market history per second")
    parser.add_argument("--data-dir", default=None, help="directory for the demo keys file")
    parser.add_argument("--admin-token", default=None, help="require X-Admin-Token on /admin/v1")
    parser.add_argument("--no-replay", action="store_true", help="do not replay real prices (empty books)")
    parser.add_argument("--no-rate-limits", action="store_true", help="switch request/order limits off")
    parser.add_argument(
        "--max-open-orders",
        type=int,
        default=None,
        metavar="N",
        help="open orders per account and symbol (MAX_NUM_ORDERS; default Binance's 200)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A ``ServerConfig`` from parsed options."""
    return ServerConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        data_dir=args.data_dir,
        admin_token=args.admin_token,
        replay=not args.no_replay,
        rate_limits=RateLimitConfig(enabled=not args.no_rate_limits),
        max_open_orders=args.max_open_orders,
    )


async def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection and stop."""
    paths = load_default_paths() if config.replay else None
    app = build_app(config, paths=paths)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    tune_gc()
    log.info("local exchange listening on http://%s:%d", config.host, config.port)
    log.log(
        logging.INFO if ENGINE == "compiled" else logging.WARNING, "matching engine: %s (%s)", ENGINE, ENGINE_REASON
    )
    print(f"local exchange ready on http://{config.host}:{config.port} (health: /api/v3/ping)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping local exchange")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localex``."""
    parser = argparse.ArgumentParser(
        prog="python -m localex",
        description="The local Binance-compatible exchange (Spot and USD-M Futures on one port).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(config_from_args(args)))
    return 0
