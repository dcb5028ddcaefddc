"""``oms exchange serve``: run the local Binance-compatible exchange in the foreground.

The local exchange is a separate component (``localex/``) that the product never imports: this command
runs it as its own process (``python -m localex``), passing every option through, and waits for it.
"""

from __future__ import annotations

import argparse
import os
import sys


def _serve(args: argparse.Namespace) -> int:
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
