"""Run the server until SIGTERM/SIGINT: ``python -m localex`` and ``oms exchange serve`` share this."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from localex.engine import ENGINE, ENGINE_REASON
from localex.server.app import build_app, server_state
from localex.server.guard import check_listen_host
from localex.server.logs import BACKUPS, LOG_FILE, MAX_BYTES, setup_logging
from localex.server.private_files import PrivateFileError
from localex.server.protocol import make_runner
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
    parser.add_argument("--host", default="127.0.0.1", help="listen address: loopback only (127.0.0.1, ::1, localhost)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port for REST, streams and WebSocket API")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="make every API key (the demo keys too) a function of this seed, for tests; "
        "default: random keys, the demo keys kept in the data folder across restarts",
    )
    parser.add_argument("--speed", type=float, default=60.0, help="seconds of market history per second")
    parser.add_argument(
        "--data-dir", default=None, help="folder of this install: demo keys, admin token and log (all mode 0600)"
    )
    parser.add_argument(
        "--admin-token-file",
        default=None,
        metavar="FILE",
        help="the token /admin/v1 wants in X-Admin-Token, generated there (0600) if missing "
        "(default: DATA_DIR/localex-admin-token; without a data folder a token only this process knows)",
    )
    parser.add_argument(
        "--log-file",
        default=None,
        metavar="FILE",
        help="rotating log file, mode 0600 (default: DATA_DIR/localex.log; '-' or no data folder: stderr)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="debug also logs each rejected input (info sums them up once a minute)",
    )
    parser.add_argument(
        "--log-max-bytes",
        type=int,
        default=MAX_BYTES,
        metavar="N",
        help=f"rotate the log file at N bytes, keeping {BACKUPS} old ones (default {MAX_BYTES})",
    )
    parser.add_argument(
        "--bad-input-summary-s",
        type=float,
        default=60.0,
        metavar="S",
        help="log one INFO line summing up the rejected input every S seconds (default 60)",
    )
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
        admin_token_file=args.admin_token_file,
        replay=not args.no_replay,
        rate_limits=RateLimitConfig(enabled=not args.no_rate_limits),
        max_open_orders=args.max_open_orders,
        bad_input_summary_s=args.bad_input_summary_s,
    )


def log_file_of(args: argparse.Namespace) -> Path | None:
    """Where the log goes: ``--log-file``, else the data folder's ``localex.log``; None for stderr."""
    if args.log_file == "-":
        return None
    if args.log_file is not None:
        return Path(args.log_file)
    return Path(args.data_dir) / LOG_FILE if args.data_dir else None


async def serve(config: ServerConfig, log_file: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection and stop."""
    paths = load_default_paths() if config.replay else None
    app = build_app(config, paths=paths)
    state = server_state(app)
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    tune_gc()
    log.info("local exchange listening on http://%s:%d", config.host, config.port)
    log.log(
        logging.INFO if ENGINE == "compiled" else logging.WARNING, "matching engine: %s (%s)", ENGINE, ENGINE_REASON
    )
    if state.admin_token_file is None:
        log.warning("admin API token not saved (no --data-dir or --admin-token-file): /admin/v1 is unusable")
    where = f"; log: {log_file}" if log_file is not None else ""
    print(f"local exchange ready on http://{config.host}:{config.port} (health: /api/v3/ping{where})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping local exchange")
    state.counters.log_summary()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localex``."""
    parser = argparse.ArgumentParser(
        prog="python -m localex",
        description="The local Binance-compatible exchange (Spot and USD-M Futures on one port).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_listen_host(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0-65535)")
    if args.log_max_bytes < 1024 or not args.bad_input_summary_s > 0:
        parser.error("--log-max-bytes must be at least 1024 and --bad-input-summary-s above 0")
    log_file = log_file_of(args)
    try:
        setup_logging(log_file, getattr(logging, args.log_level.upper()), args.log_max_bytes)
        asyncio.run(serve(config_from_args(args), log_file))
    except (PrivateFileError, OSError) as exc:
        print(f"local exchange cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
