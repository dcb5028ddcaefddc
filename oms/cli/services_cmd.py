"""`oms services up|down|status` and `oms up` / `oms down`: the embedded stack."""

from __future__ import annotations

import argparse

from oms.cli.common import CommandError, add_config_option, config_from, err_console, write
from oms.cli.tables import fit
from oms.services import ServiceError, Services, ServiceSettings
from oms.services.base import Status
from oms.services.lock import DEFAULT_WAIT

COLUMNS = ("service", "state", "pid", "address", "health", "log")
COLOURS = {"running": "green", "stopped": "dim", "unhealthy": "red", "died": "bold red"}


def services_from(args: argparse.Namespace) -> Services:
    return Services(
        ServiceSettings.from_config(config_from(args)),
        lock_timeout=getattr(args, "wait", DEFAULT_WAIT),
        on_wait=lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True),
    )


def _names(args: argparse.Namespace) -> list[str] | None:
    return args.names or None


def live_preflight(args: argparse.Namespace) -> None:
    """`oms up --live`: every check of oms.services.live, before anything starts; refuses with each reason."""
    from oms.config import ConfigError
    from oms.services.live import preflight

    try:
        result = preflight(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError("configuration is invalid:\n" + "\n".join(f"  {p}" for p in exc.problems)) from exc
    for note in result.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if not result.ok:
        lines = "\n".join(f"  {p}" for p in result.problems)
        raise CommandError(f"refusing to start live ({len(result.problems)} problem(s)):\n{lines}")
    write(f"live preflight passed: {result.checked_keys} keys, every account with its own risk limits")


def run_up(args: argparse.Namespace) -> int:
    if getattr(args, "live", False):
        live_preflight(args)
        if args.check:
            return 0
        return run_live(args)
    services = services_from(args)
    hook = None
    if not _names(args):  # the whole platform: Vault initialised and keys provisioned between services
        from oms.cli.platform_flows import StartupRuns, chain
        from oms.cli.platform_keys import KeyProvisioning

        cfg = config_from(args)
        hook = chain(
            KeyProvisioning(cfg, services, write),
            StartupRuns(services, cfg.stream.services.flows.start_runs(), write),
        )
    try:
        results = services.up(_names(args), on_started=hook)
    except ServiceError as exc:
        raise CommandError(str(exc)) from exc
    if _names(args):  # some services: one line each
        for r in results:
            write(f"{r.name:8} {r.outcome:16} {r.address}")
    else:  # the whole platform: services, accounts and where to look next
        from oms.cli.up_report import report

        report(config_from(args), services, results)
    started = {r.name for r in results}
    data = services.settings.data_dir
    if "prefect" in started:
        from oms.services.prefect import auth_string_file, needs_auth

        if needs_auth(services.settings):
            write(f"Prefect login:      {auth_string_file(services.settings)} (user:password, mode 0600)")
    if "nats" in started:
        creds = services["nats"].credentials_dir
        write(f"NATS identities:    {creds}/{{daemon,trader,reader,flows}}.nk (NKey seeds, 0600; no anonymous clients)")
    if "openbao" in started:
        init = data / "openbao" / "init.json"
        revoked = services["openbao"].root_revoked()
        what = "the unseal key; the root token was revoked by `oms keys init`" if revoked else "unseal key, root token"
        write(f"OpenBao:            {init} (mode 0600: {what})")
    if "localex" in started:
        write(
            f"local exchange:     {services['localex'].address} (demo API keys: "
            f"{data / 'localex' / 'localex-demo-keys.json'}, admin token: "
            f"{data / 'localex' / 'localex-admin-token'}, both mode 0600)"
        )
    if "flows" in started:
        write(f"flow runner:        {services['flows'].address} (every deployment of prefect.yaml, on its schedule)")
    if "stream" in started:
        write(f'trade logs:         {data / "logs"}/YYYY/MM/DD/{{account}}/trades.jsonl; query: oms sql "..."')
    write(f"logs: {services.settings.data_dir / 'logs' / 'services'}   stop with: oms down")
    unhealthy = [r.name for r in results if not r.ok]
    if unhealthy:
        raise CommandError(f"running but unhealthy, left as they are: {', '.join(unhealthy)} (see above)")
    return 0


LIVE_SERVICES = ("nats", "prefect", "stream", "flows")  # no OpenBao (your Vault) and no local exchange


def run_live(args: argparse.Namespace) -> int:
    """`oms up --live` after a passed preflight: every exchange on its live endpoints, keys from your Vault.

    The environment of this command, with ``OMS_<EXCHANGE>_VENUE=live`` for every configured exchange, is what
    the daemon and the flow runner inherit; NATS and the Prefect server are the embedded ones."""
    import os

    from oms.services.live import live_env

    os.environ.update(live_env(getattr(args, "config", None), os.environ))
    services = services_from(args)
    try:
        results = services.up(LIVE_SERVICES)
    except ServiceError as exc:
        raise CommandError(str(exc)) from exc
    from oms.cli.up_report import report

    report(config_from(args), services, results)
    write("LIVE: the daemon trades the real exchanges with keys from your Vault; `oms down` stops it")
    unhealthy = [r.name for r in results if not r.ok]
    if unhealthy:
        raise CommandError(f"running but unhealthy, left as they are: {', '.join(unhealthy)} (see above)")
    return 0


def run_platform(args: argparse.Namespace) -> int:
    """`oms run` (what `make run` runs): `up`, then stay in the foreground until Ctrl-C or SIGTERM, then `down`.

    A service that dies meanwhile is reported once (with its log) and the others keep running."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_up(args)
        write("running; Ctrl-C stops everything (`oms down` from another terminal does too)")
        services = services_from(args)
        reported: set[str] = set()
        while not stop.wait(2.0):
            statuses = services.status()
            if all(st.state == "stopped" for st in statuses):
                write("every service was stopped from elsewhere; leaving")
                return 0
            for st in statuses:
                if st.state == "died" and st.name not in reported:
                    reported.add(st.name)
                    err_console.print(f"{st.name} died: {st.detail} ({st.log})", markup=False, highlight=False)
        write("stopping ...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return run_down(args)


def run_down(args: argparse.Namespace) -> int:
    services = services_from(args)
    try:
        results = services.stop(_names(args))
    except ServiceError as exc:
        raise CommandError(str(exc)) from exc
    stopped = [r.name for r in results if r.outcome == "stopped"]
    write(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    for r in results:
        if r.outcome != "stopped":
            write(f"{r.name}: {r.outcome}")
    return 0


def run_foreground_service(args: argparse.Namespace) -> int:
    from oms.services.foreground import run_foreground

    services = services_from(args)
    try:
        service = services[args.name]
    except KeyError:
        raise CommandError(f"unknown service {args.name!r}; known: {', '.join(services.all)}") from None
    try:
        return run_foreground(service, report=write)
    except ServiceError as exc:
        raise CommandError(str(exc)) from exc


def _cells(st: Status) -> tuple[str, ...]:
    return (st.name, st.state, str(st.pid or "-"), st.address, st.detail or "-", str(st.log))


def _line(row: tuple[str, ...]) -> str:
    name, state, pid, address, health, log = row
    return f"{name:8} {state:9} pid {pid:7} {address}  health: {health}  log: {log}"


def run_status(args: argparse.Namespace) -> int:
    """The services, and (when the daemon runs) its accounts with positions and PnL from the live state."""
    services = services_from(args)
    statuses = services.status()
    fit(
        "embedded services",
        COLUMNS,
        [_cells(st) for st in statuses],
        styles=[{1: COLOURS[st.state]} for st in statuses],
        line=_line,
    )
    bad = [st for st in statuses if st.state in ("unhealthy", "died")]
    for st in bad:
        if st.state == "died":
            err_console.print(
                f"{st.name} died: {st.detail} ({st.log}); `oms services up {st.name}` starts it again",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    running = {st.name for st in statuses if st.state in ("running", "unhealthy")}
    if getattr(args, "accounts", True) and {"nats", "stream"} <= running:
        _print_accounts(args)
    return 1 if bad else 0


def _print_accounts(args: argparse.Namespace) -> None:
    import nats

    from oms.bus.auth import CredentialsError
    from oms.cli.stream_cmd import print_status, read_live_state

    try:
        state = read_live_state(config_from(args))
    except (CredentialsError, OSError, nats.errors.Error, TimeoutError) as exc:
        err_console.print(f"accounts: the live state cannot be read from NATS: {exc}", markup=False, highlight=False)
        return
    if state:
        print_status(state)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "services",
        help="start, stop and inspect the embedded services",
        description="nats-server (JetStream), OpenBao, the Prefect server, the local "
        "exchange and the flow runner, on 127.0.0.1 with data and logs under data/.",
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
            _add_wait_option(p)
        if name != "status":
            p.add_argument(
                "names",
                nargs="*",
                metavar="SERVICE",
                help="only these (nats, openbao, prefect, localex, flows); default all",
            )
        p.set_defaults(func=func, accounts=False)

    run = ssub.add_parser(
        "run",
        help="run one service in the foreground (for systemd: `oms deploy systemd`)",
        description="Start one service as `up` does, report readiness to systemd (sd_notify), and stay in the "
        "foreground until SIGTERM, which stops it; exits with the server's code if it dies on its own.",
    )
    add_config_option(run)
    run.add_argument("name", metavar="SERVICE", help="nats, openbao, prefect or localex")
    run.set_defaults(func=run_foreground_service)

    up = sub.add_parser(
        "up",
        help="bring the platform up on its embedded defaults",
        description="Start every embedded service and print where each is (Prefect UI, NATS, OpenBao, local exchange).",
    )
    add_config_option(up)
    _add_wait_option(up)
    up.add_argument(
        "--live",
        action="store_true",
        help="trade on the real exchanges with keys from a real Vault (VAULT_ADDR); refuses to start when a "
        "sub-account key can withdraw or an account lacks its own limits in risk.yaml",
    )
    up.add_argument("--check", action="store_true", help="with --live: run the live preflight only, start nothing")
    up.set_defaults(func=run_up, names=[])
    run_all = sub.add_parser(
        "run",
        help="the platform in the foreground (`make run`): `up`, then Ctrl-C stops everything",
        description="Start every service as `oms up` does, stay in the foreground, and stop them all on Ctrl-C or "
        "SIGTERM (the daemon flushes its events first).",
    )
    add_config_option(run_all)
    _add_wait_option(run_all)
    run_all.set_defaults(func=run_platform, names=[], live=False)
    down = sub.add_parser("down", help="stop everything `oms up` started")
    add_config_option(down)
    _add_wait_option(down)
    down.set_defaults(func=run_down, names=[])
    status = sub.add_parser("status", help="status of the embedded services")
    add_config_option(status)
    status.set_defaults(func=run_status)


def _add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for another `oms up`/`down` on the same data folder (default {DEFAULT_WAIT:.0f})",
    )
