"""`oms services up|down|status` and `oms up` / `oms down`: the embedded stack."""

from __future__ import annotations

import argparse

from rich.table import Table

from oms.cli.common import CommandError, add_config_option, config_from, console, write
from oms.services import ServiceError, Services, ServiceSettings


def services_from(args: argparse.Namespace) -> Services:
    return Services(ServiceSettings.from_config(config_from(args)))


def _names(args: argparse.Namespace) -> list[str] | None:
    return args.names or None


def run_up(args: argparse.Namespace) -> int:
    services = services_from(args)
    try:
        results = services.up(_names(args))
    except ServiceError as exc:
        raise CommandError(str(exc)) from exc
    for r in results:
        write(f"{r.name:8} {r.outcome:16} {r.address}")
    started = {r.name for r in results}
    data = services.settings.data_dir
    if "prefect" in started:
        write(f"Prefect UI:         {services['prefect'].address}")
    if "openbao" in started:
        write(f"OpenBao root token: {data / 'openbao' / 'init.json'} (mode 0600, with the unseal key)")
    if "localex" in started:
        write(
            f"local exchange:     {services['localex'].address} (demo API keys: "
            f"{data / 'localex' / 'localex-demo-keys.json'}, admin token: "
            f"{data / 'localex' / 'localex-admin-token'}, both mode 0600)"
        )
    write(f"logs: {services.settings.data_dir / 'logs' / 'services'}   stop with: oms down")
    return 0


def run_down(args: argparse.Namespace) -> int:
    services = services_from(args)
    stopped = services.down(_names(args))
    write(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def run_status(args: argparse.Namespace) -> int:
    services = services_from(args)
    table = Table(title="embedded services")
    for col in ("service", "state", "pid", "address", "health", "log"):
        table.add_column(col)
    unhealthy = False
    for st in services.status():
        colour = {"running": "green", "stopped": "dim", "unhealthy": "red"}[st.state]
        unhealthy |= st.state == "unhealthy"
        table.add_row(
            st.name, f"[{colour}]{st.state}[/]", str(st.pid or "-"), st.address, st.detail or "-", str(st.log)
        )
    console.print(table)
    return 1 if unhealthy else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "services",
        help="start, stop and inspect the embedded services",
        description="nats-server (JetStream), OpenBao, the Prefect server and the local "
        "exchange, on 127.0.0.1 with data and logs under data/.",
    )
    ssub = parser.add_subparsers(dest="services_cmd", required=True, metavar="COMMAND")
    for name, func, text in (
        ("up", run_up, "start the services (idempotent) and wait until each is healthy"),
        ("down", run_down, "stop what `up` started (by PID)"),
        ("status", run_status, "show each service, its PID, address and health"),
    ):
        p = ssub.add_parser(name, help=text, description=text)
        add_config_option(p)
        if name != "status":
            p.add_argument(
                "names", nargs="*", metavar="SERVICE", help="only these (nats, openbao, prefect, localex); default all"
            )
        p.set_defaults(func=func)

    up = sub.add_parser(
        "up",
        help="bring the platform up on its embedded defaults",
        description="Start every embedded service and print where each is (Prefect UI, NATS, OpenBao, local exchange).",
    )
    add_config_option(up)
    up.set_defaults(func=run_up, names=[])
    down = sub.add_parser("down", help="stop everything `oms up` started")
    add_config_option(down)
    down.set_defaults(func=run_down, names=[])
    status = sub.add_parser("status", help="status of the embedded services")
    add_config_option(status)
    status.set_defaults(func=run_status)
