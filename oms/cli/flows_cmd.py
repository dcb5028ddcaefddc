"""`oms flows serve|check|list`: the Prefect deployments of prefect.yaml (see flows/serve.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from oms.cli.common import CommandError, add_config_option, config_from, write

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def _env(args: argparse.Namespace) -> dict[str, str]:
    """The flows' environment: the configured Prefect server unless PREFECT_API_URL says otherwise."""
    cfg = config_from(args)
    env = dict(os.environ)
    env.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{cfg.stream.services.prefect.port}/api")
    env.setdefault("PREFECT_HOME", str(cfg.data_dir() / "prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    cmd = [sys.executable, "-m", "flows.serve", "--prefect-yaml", str(args.prefect_yaml), *extra]
    try:
        return subprocess.call(cmd, env=_env(args))
    except KeyboardInterrupt:
        return 130


def run_serve(args: argparse.Namespace) -> int:
    return _run(args, ["--limit", str(args.limit)])


def run_check(args: argparse.Namespace) -> int:
    return _run(args, ["--check"])


def run_list(args: argparse.Namespace) -> int:
    try:
        doc = yaml.safe_load(Path(args.prefect_yaml).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CommandError(f"cannot read {args.prefect_yaml}: {exc}") from exc
    for d in doc.get("deployments") or []:
        when = ", ".join(s.get("cron", f"every {s.get('interval')} s") for s in d.get("schedules") or []) or "on demand"
        write(f"{d['name']:36} {when:16} {d['entrypoint']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "flows",
        help="serve and inspect the Prefect deployments (prefect.yaml)",
        description="The Prefect flows of the platform: every deployment of prefect.yaml.",
    )
    fsub = parser.add_subparsers(dest="flows_cmd", required=True, metavar="COMMAND")
    for name, func, text in (
        ("serve", run_serve, "register every deployment with its schedule on the Prefect server and run them "
                             "(foreground; `oms up` starts it as the `flows` service)"),
        ("check", run_check, "load and validate every deployment (flows, parameters, schedules); exit 1 on a problem"),
        ("list", run_list, "list the deployments and their schedules"),
    ):  # fmt: skip
        p = fsub.add_parser(name, help=text, description=text)
        add_config_option(p)
        p.add_argument("--prefect-yaml", type=Path, default=PREFECT_YAML, help="deployments file (%(default)s)")
        if name == "serve":
            p.add_argument("--limit", type=int, default=4, help="flow runs at once (%(default)s)")
        p.set_defaults(func=func)
