"""`oms keys init|put|stage|show|list|rotate|revoke`: API keys in Vault/OpenBao.

Secrets are read from standard input (`--secret-stdin`) or an environment variable (`--secret-env VAR`),
never from the command line (where `ps` would show them), and never printed: `show` and `list` print
fingerprints, versions, ages and permissions only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import hvac
from rich.table import Table

from oms.cli.common import CommandError, add_config_option, config_from, console, write
from oms.keys import venue
from oms.keys.bootstrap import approle_token, generate_root, initialise
from oms.keys.factory import default_vault_address, open_store
from oms.keys.provider import KeyNotFound, KeyStoreError
from oms.keys.settings import AccountCatalog, VaultSettings, approle_file
from oms.keys.store import KeyInfo, parse_iso
from oms.services import ServiceError
from oms.services.openbao import OpenBaoService
from oms.services.settings import ServiceSettings


def _age(info: KeyInfo) -> str:
    seconds = info.age_s()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _secret(args: argparse.Namespace) -> str:
    if args.secret_env:
        value = os.environ.get(args.secret_env, "")
        if not value:
            raise CommandError(f"environment variable {args.secret_env} is empty or unset")
        return value
    if args.secret_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise CommandError("no secret on standard input")
        return value
    raise CommandError("give the secret with --secret-stdin or --secret-env VAR (never on the command line)")


def _store(args: argparse.Namespace, component: str = "admin"):
    cfg = config_from(args)
    try:
        return cfg, open_store(cfg, component, cache=False)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc


TOKEN_VARS = ("OMS_VAULT_TOKEN", "VAULT_TOKEN", "BAO_TOKEN")


def _init_token(args: argparse.Namespace) -> tuple[str | None, str]:
    """The privileged token the operator gave, and where it came from (never the token itself)."""
    if args.token_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise CommandError("--token-stdin: no token on standard input")
        return value, "standard input"
    if args.token_env:
        value = os.environ.get(args.token_env, "").strip()
        if not value:
            raise CommandError(f"--token-env: environment variable {args.token_env} is empty or unset")
        return value, args.token_env
    for var in TOKEN_VARS:
        if os.environ.get(var):
            return os.environ[var].strip(), var
    return None, ""


def _revoked_root_error(svc: OpenBaoService, embedded: bool) -> CommandError:
    ways = (
        "give a privileged token (root, or sudo on sys/policies/acl, sys/auth, sys/audit and auth/approle) with "
        "--token-stdin, --token-env VAR or OMS_VAULT_TOKEN / VAULT_TOKEN"
    )
    if embedded:
        return CommandError(
            f"`oms keys init` already ran and revoked the embedded OpenBao's root token ({svc.init_file}); running "
            f"it again needs a privileged token: {ways}; or pass --generate-root to make a root token for this run "
            "from the unseal key in that file and the oms-admin AppRole (revoked again at the end); or generate one "
            "by hand with `bao operator generate-root -init` and the unseal key (OpenBao >= 2.6 asks for a token "
            "allowed on sys/generate-root-token, such as the oms-admin AppRole's)"
        )
    return CommandError(
        "`oms keys init` against the Vault at OMS_VAULT_ADDR needs a privileged token: "
        f"{ways}; an operator can make one with `bao operator generate-root` (or `vault operator generate-root`) "
        "and the unseal or recovery keys"
    )


def _generated_root(cfg, svc: OpenBaoService, address: str) -> str:
    """A root token for this init run from the unseal key (init.json) and the oms-admin AppRole."""
    try:
        settings = VaultSettings.from_env("admin", cfg.data_dir(), address, os.environ)
        if settings.auth != "approle":
            where = approle_file(cfg.data_dir(), "admin")
            raise KeyStoreError(f"--generate-root needs the oms-admin AppRole ({where})")
        unseal = svc.credentials().get("unseal_key")
        if not unseal:
            raise KeyStoreError(f"--generate-root needs the unseal key in {svc.init_file}; it has none")
        token = approle_token(address, settings.role_id or "", settings.secret_id or "", settings.approle_mount)
        return generate_root(address, token, unseal)
    except (KeyStoreError, ServiceError) as exc:
        raise CommandError(f"--generate-root: {exc}") from exc


def run_init(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    svc = OpenBaoService(ServiceSettings.from_config(cfg))
    address = os.environ.get("OMS_VAULT_ADDR") or default_vault_address(cfg)
    embedded = not os.environ.get("OMS_VAULT_ADDR")
    token, source = _init_token(args)
    if not token and embedded:
        if svc.init_file.is_file() and "root_token" in svc.credentials():
            token, source = svc.root_token(), f"the root token in {svc.init_file}"
        elif args.generate_root and svc.init_file.is_file():
            token, source = _generated_root(cfg, svc, address), "a root token generated from the unseal key"
            write("root token: generated from the unseal key for this run (revoked at its end)")
        elif svc.init_file.is_file():
            raise _revoked_root_error(svc, embedded)
        else:
            raise CommandError(f"the embedded OpenBao is not initialised ({svc.init_file} missing): run `oms up` first")
    if not token:
        raise _revoked_root_error(svc, embedded)
    client = hvac.Client(url=address, token=token, namespace=os.environ.get("OMS_VAULT_NAMESPACE"), timeout=30)
    daemon = [tuple(a.split("/", 1)) for a in args.daemon_account] if args.daemon_account else None
    audit = args.audit_file or (str(svc.audit_file) if embedded else None)
    try:
        result = initialise(
            client,
            AccountCatalog.from_config(cfg),
            cfg.data_dir(),
            mount=os.environ.get("OMS_VAULT_MOUNT", "secret"),
            daemon_accounts=daemon,  # type: ignore[arg-type]
            audit_file=audit,
            init_file=svc.init_file if embedded else None,
            revoke_root=not args.keep_root,
        )
    except KeyStoreError as exc:
        raise CommandError(f"{exc} (token from {source})") from exc
    for component, path in result.roles.items():
        write(f"role oms-{component:9} credentials: {path} (mode 0600)")
    write(f"audit log: {result.audit_file or 'not managed here'}")
    write("root token: revoked" if result.root_revoked else "root token: kept (--keep-root or not a root token)")
    return 0


def _put_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("exchange")
    p.add_argument("account")
    p.add_argument("--market", choices=("spot", "usdm"), default="spot")
    p.add_argument("--api-key", required=True)
    p.add_argument("--secret-stdin", action="store_true", help="read the secret from the first line of stdin")
    p.add_argument("--secret-env", metavar="VAR", help="read the secret from this environment variable")
    p.add_argument("--permissions", default="spot", help="comma-separated, e.g. spot,futures,transfer,withdraw")


def run_put(args: argparse.Namespace) -> int:
    _, store = _store(args)
    secret = _secret(args)
    try:
        expires = parse_iso(args.expires, "--expires") if args.expires else 0
        creds = store.put(
            args.exchange,
            args.market,
            args.account,
            args.api_key,
            secret,
            [p for p in args.permissions.split(",") if p],
            expires_ns=expires,
            venue_account=args.venue_account or "",
        )
    except (KeyStoreError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    write(f"stored {creds} at {store.full_path(store.path(args.exchange, args.market, args.account))}")
    return 0


def run_stage(args: argparse.Namespace) -> int:
    _, store = _store(args)
    secret = _secret(args)
    try:
        fp = store.stage(
            args.exchange,
            args.market,
            args.account,
            args.api_key,
            secret,
            [p for p in args.permissions.split(",") if p],
        )
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    write(f"staged key {fp} for {args.exchange}/{args.account}/{args.market}: resume the rotation with {fp}")
    return 0


def _table(rows: list[tuple[str, str, KeyInfo | None, str]], title: str) -> Table:
    table = Table(title=title)
    for col in ("account", "market", "type", "fingerprint", "version", "age", "permissions", "expires", "state"):
        table.add_column(
            col, no_wrap=col in ("fingerprint", "permissions"), min_width=12 if col == "fingerprint" else None
        )
    for account, market, info, kind in rows:
        if info is None:
            table.add_row(account, market, kind, "-", "-", "-", "-", "-", "[red]no key[/]")
            continue
        state = "[red]revoked[/]" if info.revoked else "[green]active[/]"
        if kind != "main" and "withdraw" in info.permissions:
            state = "[red]REFUSED: withdraw on a sub-account[/]"
        expires = time.strftime("%Y-%m-%d", time.gmtime(info.expires_ns / 1e9)) if info.expires_ns else "never"
        table.add_row(
            account,
            market,
            kind,
            info.fingerprint,
            str(info.version),
            _age(info),
            ",".join(info.permissions),
            expires,
            state,
        )
    return table


def _describe(store, exchange: str, market: str, account: str) -> KeyInfo | None:
    try:
        return store.describe(exchange, market, account)
    except KeyNotFound:
        return None
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc


def run_show(args: argparse.Namespace) -> int:
    cfg, store = _store(args, args.component)
    acct = (
        store.catalog.get(args.exchange, args.account) if args.account in cfg.accounts.get(args.exchange, {}) else None
    )
    if acct is None:
        raise CommandError(f"account {args.exchange}/{args.account} is not configured")
    markets = [args.market] if args.market else list(acct.markets)
    rows = [(args.account, m, _describe(store, args.exchange, m, args.account), acct.type) for m in markets]
    console.print(_table(rows, f"key of {args.exchange}/{args.account}"))
    return 0 if all(r[2] is not None for r in rows) else 1


def run_list(args: argparse.Namespace) -> int:
    _, store = _store(args, args.component)
    by_exchange: dict[str, list] = {}
    for acct in store.catalog:
        for m in acct.markets:
            info = _describe(store, acct.exchange, m, acct.account)
            by_exchange.setdefault(acct.exchange, []).append((acct.account, m, info, acct.type))
    for exchange, rows in by_exchange.items():
        console.print(_table(rows, f"{exchange} keys"))
        mains = [r for r in rows if r[3] == "main"]
        for account, market, info, _ in mains:
            perm = "no key" if info is None else ("yes" if "withdraw" in info.permissions else "no")
            write(f"{exchange} main account {account} ({market}) withdrawal permission: {perm}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from flows.rotate_keys import RotationFailed, rotate_keys  # Prefect loads only for this command

    try:
        lines = rotate_keys(
            args.exchange, args.account, markets=[args.market] if args.market else None, config_dir=args.config
        )
    except RotationFailed as exc:
        raise CommandError(str(exc)) from exc
    for line in lines:
        write(f"rotated {args.exchange}/{args.account} {line}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    cfg, store = _store(args)
    try:
        info = store.describe(args.exchange, args.market, args.account)
        if info.revoked:
            raise CommandError(f"{info.path} v{info.version} is already revoked")
        if cfg.exchanges.exchanges[args.exchange].venue == "local" and not args.vault_only:
            creds = store.refresh(args.exchange, args.market, args.account)
            venue.revoke_key(cfg.exchanges.local_exchange.base_url, creds.api_key, venue.admin_token(cfg.data_dir()))
            write(f"revoked key {creds.fingerprint} on the local exchange")
        store.revoke(args.exchange, args.market, args.account, info.version)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    write(f"revoked {info.path} v{info.version} (key {info.fingerprint}); readers now get 'revoked'")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "keys",
        help="API keys in Vault/OpenBao: init, put, show, list, rotate, revoke",
        description="API keys at secret/exchanges/{exchange}_{market}_{account}. Secrets are never printed.",
    )
    ksub = parser.add_subparsers(dest="keys_cmd", required=True, metavar="COMMAND")

    p = ksub.add_parser("init", help="AppRoles and policies per component, audit device, revoke the root token")
    p.add_argument("--daemon-account", action="append", metavar="EXCHANGE/ACCOUNT", help="daemon reads only these")
    p.add_argument("--audit-file", help="file audit device path (default: data/openbao/audit.log)")
    p.add_argument("--keep-root", action="store_true", help="do not revoke the root token (not recommended)")
    p.add_argument("--token-stdin", action="store_true", help="read a privileged Vault token from standard input")
    p.add_argument("--token-env", metavar="VAR", help="read a privileged Vault token from this environment variable")
    p.add_argument(
        "--generate-root",
        action="store_true",
        help="embedded OpenBao, root already revoked: make a root token for this run from the unseal key",
    )
    p.set_defaults(func=run_init)

    p = ksub.add_parser("put", help="store a key as a new version (secret from stdin or an env var)")
    _put_common(p)
    p.add_argument("--expires", help="ISO 8601 UTC expiry, e.g. 2027-06-30T00:00:00Z")
    p.add_argument("--venue-account", help="the venue's id of the account (local exchange account id)")
    p.set_defaults(func=run_put)

    p = ksub.add_parser("stage", help="stage a key created by hand on a venue, for a paused rotation")
    _put_common(p)
    p.set_defaults(func=run_stage)

    for name, func, text in (
        ("show", run_show, "fingerprint, version, age and permissions of one account's key (never the secret)"),
        ("list", run_list, "every configured account's key, and the main accounts' withdrawal permission"),
    ):
        p = ksub.add_parser(name, help=text, description=text)
        if name == "show":
            p.add_argument("exchange")
            p.add_argument("account")
            p.add_argument("--market", choices=("spot", "usdm"))
        p.add_argument("--component", default="admin", help="AppRole to read with (admin, balances)")
        p.set_defaults(func=func)

    p = ksub.add_parser("rotate", help="run the rotate-keys flow for one account now")
    p.add_argument("exchange")
    p.add_argument("account")
    p.add_argument("--market", choices=("spot", "usdm"))
    p.set_defaults(func=run_rotate)

    p = ksub.add_parser("revoke", help="revoke an account's current key (on the local exchange and in Vault)")
    p.add_argument("exchange")
    p.add_argument("account")
    p.add_argument("--market", choices=("spot", "usdm"), default="spot")
    p.add_argument("--vault-only", action="store_true", help="only mark it revoked in Vault")
    p.set_defaults(func=run_revoke)

    for p in ksub.choices.values():
        add_config_option(p)
