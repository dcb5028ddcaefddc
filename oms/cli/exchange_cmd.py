"""``oms exchange serve``: run the local Binance-compatible exchange in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging

from oms.localex.server.runner import add_arguments, config_from_args, serve


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(config_from_args(args)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``exchange serve`` to the ``oms`` command's subparsers."""
    exchange = subparsers.add_parser("exchange", help="the local exchange")
    sub = exchange.add_subparsers(dest="exchange_command", required=True)
    serve_parser = sub.add_parser("serve", help="serve Spot and USD-M Futures on one loopback port")
    add_arguments(serve_parser)
    serve_parser.set_defaults(func=_serve)
