"""`oms stream run` (the trading daemon, in the foreground) and `oms stream status` (accounts, positions, PnL).

``run`` loads ``configs/``, pins the process to ``daemon.cpu_cores``, and runs ``stream.daemon.Daemon`` on
uvloop until SIGTERM or Ctrl-C. Keys come from ``--keys``: ``vault`` (the key store, AppRole ``daemon``),
``demo`` (the local exchange's demo-keys file in the data folder), ``env`` (``OMS_KEY_*`` variables), or
``auto`` (``vault`` once `oms keys init` wrote the daemon's AppRole, as `oms up` does; else ``demo`` when every
exchange is on the local venue and the file exists, else ``env`` when any ``OMS_KEY_*`` variable is set, else
``vault``).

``status`` reads the live state every daemon writes to the ``oms_state`` KV bucket (no daemon needed to
answer) and prints one table: account, holder, trading state, positions, open orders, equity and PnL; it
connects as the read-only ``reader`` identity. ``halt`` / ``reduce-only`` / ``resume [ACCOUNT]`` send the kill
switch (``cmd.halt[.{exchange}.{account}]``...) as the ``trader`` identity, the only one allowed to.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from decimal import Decimal, InvalidOperation

import msgspec
import nats
import uvloop
from nats.js.errors import BucketNotFoundError, NoKeysError, NotFoundError

from kernels.affinity import pin_from_config
from oms.bus.auth import CredentialsError
from oms.bus.connect import NatsClientSettings, connect_as
from oms.bus.subjects import SubjectError, kill_switch_subject
from oms.cli import stream_futures
from oms.cli.common import CommandError, add_config_option, config_from, console, write
from oms.cli.tables import fit
from oms.config import Config
from oms.keys.factory import key_provider
from oms.keys.provider import KeyProvider
from oms.keys.redact import install_redaction
from oms.model import Order, Position
from oms.model.codec import decode
from stream.daemon import Daemon, DaemonSettings, install_signal_handlers
from stream.gc_tuning import tune_gc
from stream.livestate import AccountPnl, TradingStateView
from stream.logfiles import install
from stream.wiring import WiringError

log = logging.getLogger("oms.stream")


def keys_for(cfg: Config, source: str) -> KeyProvider:
    return key_provider(cfg, source, "daemon")


async def _run(cfg: Config, args: argparse.Namespace) -> int:
    overrides = {}
    if args.nats_url:
        overrides["nats_url"] = args.nats_url
    if args.local_url:
        overrides["local_url"] = args.local_url
    settings = DaemonSettings.from_config(cfg, **overrides)
    accounts = [a for a in (args.accounts or "").split(",") if a] or None
    try:
        daemon = Daemon(cfg, keys_for(cfg, args.keys), settings, accounts=accounts)
    except WiringError as exc:
        raise CommandError(str(exc)) from exc
    install_signal_handlers(daemon)
    try:
        await daemon.start()
    except Exception:
        await daemon.stop()
        raise
    tune_gc()  # started: what the start allocated is frozen out of the collector's walks
    await daemon.wait_stopped()
    return 0


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    d = cfg.stream.daemon
    install(
        cfg.data_dir() / "logs" / "stream",
        [f"{ex}/{n}" for ex, ns in cfg.accounts.items() for n in ns],
        d.log_max_bytes,
        d.log_backups,
    )
    report = pin_from_config(cfg, "daemon")
    (log.info if report.ok else log.warning)("%s", report)
    return uvloop.run(_run(cfg, args))


# ------------------------------------------------------------------ status
async def _read_state(who: NatsClientSettings, bucket: str) -> dict[str, dict[str, bytes]]:
    nc = await connect_as(who, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        js = nc.jetstream()
        try:
            kv = await js.key_value(bucket)
        except (BucketNotFoundError, NotFoundError):
            return {}
        try:
            keys = await kv.keys()
        except NoKeysError:
            return {}
        out: dict[str, dict[str, bytes]] = {}
        for key in keys:
            exchange, name, kind = key.split(".", 2)
            entry = await kv.get(key)
            if entry.value:
                out.setdefault(f"{exchange}/{name}", {})[kind] = entry.value
        return out
    finally:
        await nc.close()


STATUS_COLUMNS = (
    "account", "state", "holder", "positions", "open", "equity", "unrealised", "realised", "fees", "funding",
)  # fmt: skip


def _plain(value: str) -> str:
    """A decimal string without an exponent (``1E+5`` is ``100000``)."""
    try:
        return f"{Decimal(value):f}"
    except (InvalidOperation, ValueError):
        return value


def status_rows(state: dict[str, dict[str, bytes]]) -> list[tuple[str, ...]]:
    rows = []
    for account in sorted(state):
        kinds = state[account]
        ts = decode(kinds["trading_state"], TradingStateView) if "trading_state" in kinds else None
        pnl = decode(kinds["pnl"], AccountPnl) if "pnl" in kinds else None
        positions = msgspec.json.decode(kinds.get("positions", b"[]"), type=list[Position])
        orders = msgspec.json.decode(kinds.get("open_orders", b"[]"), type=list[Order])
        label = "-" if ts is None else (ts.trading_state if ts.trading else f"not trading: {ts.reason or '?'}")
        rows.append(
            (
                account,
                label,
                ts.holder if ts else "-",
                ", ".join(f"{p.symbol} {p.qty}" for p in positions) or "flat",
                str(len(orders)),
                _plain(pnl.equity) if pnl else "-",
                _plain(pnl.unrealised) if pnl else "-",
                _plain(pnl.realised) if pnl else "-",
                _plain(pnl.fees) if pnl else "-",
                _plain(pnl.funding) if pnl else "-",
            )
        )
    return rows


def print_status(state: dict[str, dict[str, bytes]]) -> None:
    fit(
        "stream daemon: accounts",
        STATUS_COLUMNS,
        status_rows(state),
        right=("open", "equity", "unrealised", "realised", "fees", "funding"),
    )


def read_live_state(cfg: Config) -> dict[str, dict[str, bytes]]:
    """The daemons' live state (``oms_state`` KV) as the read-only identity; raises OSError/nats errors."""
    return asyncio.run(_read_state(NatsClientSettings.from_config(cfg, "reader"), "oms_state"))


def _identity(args: argparse.Namespace, identity: str) -> NatsClientSettings:
    cfg = config_from(args)
    try:
        return NatsClientSettings.from_config(cfg, identity, url=args.nats_url)
    except CredentialsError as exc:
        raise CommandError(str(exc)) from exc


def status(args: argparse.Namespace) -> int:
    who = _identity(args, "reader")  # a dashboard's read-only identity
    url = who.url
    try:
        state = asyncio.run(_read_state(who, "oms_state"))
    except CredentialsError as exc:
        raise CommandError(str(exc)) from exc
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        raise CommandError(f"cannot read the live state from NATS at {url}: {exc} (is `oms up` running?)") from exc
    if not state:
        console.print("no daemon has written live state yet (start one with `oms stream run` or `oms up`)")
        return 0
    print_status(state)
    return 0


# ------------------------------------------------------------------ kill switch
async def _kill_switch(who: NatsClientSettings, subject: str, body: bytes, timeout: float) -> dict:
    nc = await connect_as(who, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        msg = await nc.request(subject, body, timeout=timeout)
        return msgspec.json.decode(msg.data)
    finally:
        await nc.close()


def kill_switch(args: argparse.Namespace) -> int:
    """``oms stream halt|reduce-only|resume [ACCOUNT]``: the kill switch, sent as the trader identity."""
    action = args.stream_command.replace("-", "_")
    who = _identity(args, "trader")
    try:
        subject = kill_switch_subject(action, args.account)
    except (SubjectError, ValueError) as exc:
        raise CommandError(f"{args.account!r}: {exc}") from exc
    body = msgspec.json.encode({"cancel_orders": bool(args.cancel_orders), "reason": args.reason or ""})
    try:
        reply = asyncio.run(_kill_switch(who, subject, body, args.timeout))
    except CredentialsError as exc:
        raise CommandError(str(exc)) from exc
    except nats.errors.NoRespondersError:
        raise CommandError(f"no daemon answers {subject} (is `oms stream run` or `oms up` running?)") from None
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        raise CommandError(f"{subject} over NATS at {who.url} failed: {exc}") from exc
    if not reply.get("ok"):
        raise CommandError(f"{subject} refused: {reply.get('error', reply)}")
    accounts = ", ".join(reply.get("accounts", ())) or "no account"
    write(f"{reply.get('trading_state')}: {accounts}; {reply.get('cancelled', 0)} open order(s) cancelled")
    return 0


def register(sub) -> None:
    p = sub.add_parser("stream", help="the trading daemon: run it, or show its accounts")
    s = p.add_subparsers(dest="stream_command", required=True, metavar="ACTION")
    r = s.add_parser("run", help="run the stream daemon in the foreground (SIGTERM stops it cleanly)")
    add_config_option(r)
    r.add_argument("--accounts", help="comma-separated accounts to trade (binance/sub_mm or binance); default all")
    r.add_argument("--keys", choices=("auto", "vault", "demo", "env"), default="auto", help="where keys come from")
    r.add_argument("--nats-url", help="NATS server (default: services.nats.port in stream.yaml)")
    r.add_argument("--local-url", help="local exchange address (default: exchanges.yaml local_exchange)")
    r.set_defaults(func=run)
    st = s.add_parser("status", help="accounts, positions and PnL from the daemons' live state")
    add_config_option(st)
    st.add_argument("--nats-url", help="NATS server (default: services.nats.port in stream.yaml)")
    st.set_defaults(func=status)
    for action, what in (("halt", "halt"), ("reduce-only", "switch to reduce-only"), ("resume", "resume")):
        k = s.add_parser(action, help=f"kill switch: {what} one account (exchange/name) or every account")
        add_config_option(k)
        k.add_argument("account", nargs="?", help="exchange/name; default every account of every daemon")
        k.add_argument("--cancel-orders", action="store_true", help="also cancel the open orders")
        k.add_argument("--reason", help="why (goes into the risk event)")
        k.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the daemon's answer")
        k.add_argument("--nats-url", help="NATS server (default: services.nats.port in stream.yaml)")
        k.set_defaults(func=kill_switch)
    stream_futures.register(s)  # oms stream futures ACCOUNT --leverage/--margin-type/--position-mode
