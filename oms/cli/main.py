"""The `oms` command: one entry point, subcommands grouped by part of the platform."""

from __future__ import annotations

import argparse
import os
import sys

from oms.cli import (
    archive_cmd,
    backtest_cmd,
    config_cmd,
    data_cmd,
    deploy_cmd,
    exchange_cmd,
    flows_cmd,
    keys_cmd,
    services_cmd,
    sql_cmd,
    stream_cmd,
    webhook_cmd,
)
from oms.cli.common import CommandError, fail

COMMAND_MODULES = [
    config_cmd,
    services_cmd,
    exchange_cmd,
    data_cmd,
    sql_cmd,
    archive_cmd,
    keys_cmd,
    backtest_cmd,
    deploy_cmd,
    stream_cmd,
    webhook_cmd,
    flows_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oms",
        description="crypto-oms: multi-exchange, multi-account trading platform. "
        "Start with `oms up`; check configs with `oms config check`.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        if not hasattr(args, "passthrough"):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.passthrough = rest
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("OMS_DEBUG"):
            raise
        return fail(f"unexpected {type(exc).__name__}: {exc} (run with OMS_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
