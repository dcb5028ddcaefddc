"""What every `oms` subcommand shares: the console, loading config, and turning errors into messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from oms.config import Config, ConfigError, load_config

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class CommandError(Exception):
    """An expected failure: printed as one clear message, exit status 1, never a traceback."""


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="DIR", default=None, help="configuration folder (default: the project's configs/)"
    )


def config_from(args: argparse.Namespace) -> Config:
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError("configuration is invalid:\n" + "\n".join(f"  {p}" for p in exc.problems)) from exc


def data_dir_from(args: argparse.Namespace) -> Path:
    """The data folder: ``--data DIR`` if given, else the configured one (``OMS_DATA_DIR``, stream.yaml)."""
    if getattr(args, "data", None):
        return Path(args.data)
    return config_from(args).data_dir()


def fail(message: str, code: int = 1) -> int:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return code


def write(text: str) -> None:
    sys.stdout.write(text + "\n")
