"""`oms deploy systemd`: unit files for this checkout (services, stream daemon, flow runner)."""

from __future__ import annotations

import argparse
from pathlib import Path

from oms.cli.common import CommandError, add_config_option, config_from, write


def run_systemd(args: argparse.Namespace) -> int:
    from oms.services.systemd import render_units, write_units

    cfg = config_from(args)
    dest = Path(args.dest) if args.dest else cfg.data_dir() / "systemd"
    units = render_units(cfg, system=args.system, config_dir=Path(args.config) if args.config else None)
    try:
        paths = write_units(units, dest)
    except OSError as exc:
        raise CommandError(f"cannot write the units to {dest}: {exc.strerror or exc}") from exc
    for path in paths:
        write(f"wrote {path}")
    scope = "" if args.system else "--user "
    files = " ".join(str(p) for p in paths)
    write("install and start them with:")
    write(f"  systemctl {scope}link {files}")
    write(f"  systemctl {scope}daemon-reload && systemctl {scope}enable --now oms.target")
    write(f"logs: journalctl {scope}-u 'oms-*'   status: systemctl {scope}status 'oms-*'")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy", help="deployment files for this checkout")
    dsub = parser.add_subparsers(dest="deploy_cmd", required=True, metavar="COMMAND")
    p = dsub.add_parser(
        "systemd",
        help="write systemd units for the services, the stream daemon and the flow runner",
        description="Render deploy/systemd/*.in for this checkout (its .venv, its configs, the daemon's CPU "
        "cores from stream.yaml) into DEST (default: data/systemd/). User units unless --system.",
    )
    add_config_option(p)
    p.add_argument("--dest", metavar="DIR", help="where to write the units (default: DATA/systemd)")
    p.add_argument(
        "--system",
        action="store_true",
        help="system units (run as the current user, with raised priority) instead of user units",
    )
    p.set_defaults(func=run_systemd)
