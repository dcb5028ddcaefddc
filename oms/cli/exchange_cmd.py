"""``oms exchange serve``: run the local Binance-compatible exchange in the foreground.

The local exchange is a separate component (``localex/``) that the product never imports: this command
runs it as its own process (``python -m localex``), passing every option through, and waits for it.
Before that it checks the options whose mistakes the server would only report as a traceback: the port
(a number in 1-65535, free on the listen address) and the data folder (a folder it can write).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from oms.cli.common import CommandError
from oms.config.machine import data_dir_problem
from oms.services.process import port_in_use


def _preflight(passthrough: list[str]) -> None:
    """Refuse --port / --data-dir values the server could not use, with the option named."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8765")
    parser.add_argument("--data-dir", default=None)
    known, _ = parser.parse_known_args(passthrough)
    if any(arg in ("-h", "--help") for arg in passthrough):
        return
    try:
        port = int(known.port)
    except ValueError:
        raise CommandError(f"--port {known.port!r}: not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise CommandError(f"--port {port}: out of range (a TCP port is 1-65535)")
    if _is_ip(known.host) and port_in_use(port, known.host):
        raise CommandError(
            f"--port {port}: already in use on {known.host} by another process "
            "(`oms status` shows whether it is the local exchange of `oms up`)"
        )
    if known.data_dir is not None:
        problem = data_dir_problem(Path(known.data_dir))
        if problem:
            raise CommandError(f"--data-dir: {problem}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _serve(args: argparse.Namespace) -> int:
    _preflight(args.passthrough)
    os.execv(sys.executable, [sys.executable, "-m", "localex", *args.passthrough])
    return 0  # not reached: execv replaces this process


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``exchange serve`` to the ``oms`` command's subparsers."""
    exchange = subparsers.add_parser("exchange", help="the local exchange")
    sub = exchange.add_subparsers(dest="exchange_command", required=True)
    serve_parser = sub.add_parser(
        "serve",
        help="serve Spot and USD-M Futures on one loopback port (options: `python -m localex --help`)",
        add_help=False,
    )
    # Every option is the local exchange's own: main() hands the unparsed rest over as ``passthrough``.
    serve_parser.set_defaults(func=_serve, passthrough=[])
