"""`oms stream futures ACCOUNT`: change a USD-M account's leverage, margin type or position mode in the daemon.

    oms stream futures binance/sub_futures_trend --leverage BTC/USDT:USDT=5 --margin-type BTC/USDT:USDT=cross
    oms stream futures binance/sub_futures_basis --position-mode one_way

Sends the settings commands (``oms.model.settings``) in one request on ``cmd.order.{exchange}.{account}`` as the
``trader`` identity and prints one line per command: the venue's answer, or the refusal's code and reason
(``risk:MAX_LEVERAGE``, ``venue:-4048`` while a position is open, ...). Exit status 1 if any was refused.
"""

from __future__ import annotations

import argparse
import asyncio

import msgspec
import nats

from oms.bus.auth import CredentialsError
from oms.bus.connect import NatsClientSettings, connect_as
from oms.bus.subjects import SubjectError, command_subject
from oms.cli.common import CommandError, add_config_option, config_from, write
from oms.model import MarginType, PositionMode
from oms.model.commands import CommandReply, CommandRequest, decode_reply, encode_request
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode


def _pair(text: str, what: str) -> tuple[str, str]:
    symbol, sep, value = text.rpartition("=")
    if not sep or not symbol or not value:
        raise CommandError(f"--{what} {text!r}: expected SYMBOL=VALUE, e.g. BTC/USDT:USDT=5")
    return symbol, value


def commands_of(args: argparse.Namespace) -> tuple:
    acct = args.account
    out: list = []
    try:
        if args.position_mode:
            out.append(SetPositionMode(account=acct, position_mode=PositionMode(args.position_mode)))
        for text in args.margin_type or ():
            symbol, value = _pair(text, "margin-type")
            out.append(SetMarginType(account=acct, symbol=symbol, margin_type=MarginType(value)))
        for text in args.leverage or ():
            symbol, value = _pair(text, "leverage")
            out.append(SetLeverage(account=acct, symbol=symbol, leverage=int(value)))
    except ValueError as exc:
        raise CommandError(f"{acct}: {exc}") from exc
    if not out:
        raise CommandError("nothing to change: give --leverage, --margin-type and/or --position-mode")
    return tuple(out)


async def _send(who: NatsClientSettings, subject: str, body: bytes, timeout: float) -> CommandReply:
    nc = await connect_as(who, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        return decode_reply((await nc.request(subject, body, timeout=timeout)).data)
    finally:
        await nc.close()


def futures(args: argparse.Namespace) -> int:
    exchange, _, name = args.account.partition("/")
    try:
        subject = command_subject(exchange, name)
    except (SubjectError, ValueError) as exc:
        raise CommandError(f"{args.account!r}: {exc}") from exc
    commands = commands_of(args)
    try:
        who = NatsClientSettings.from_config(config_from(args), "trader", url=args.nats_url)
        body = encode_request(CommandRequest(request_id="cli-futures", commands=commands))
        reply = asyncio.run(_send(who, subject, body, args.timeout))
    except CredentialsError as exc:
        raise CommandError(str(exc)) from exc
    except nats.errors.NoRespondersError:
        raise CommandError(f"no daemon answers {subject} (is `oms stream run` or `oms up` running?)") from None
    except (OSError, nats.errors.Error, TimeoutError, msgspec.DecodeError) as exc:
        raise CommandError(f"{subject} over NATS failed: {exc}") from exc
    if reply.error:
        raise CommandError(f"{subject} refused the request ({reply.code}): {reply.error}")
    refused = 0
    for cmd, r in zip(commands, reply.results, strict=False):
        what = type(cmd).__name__
        if r.ok and r.settings is not None:
            s = r.settings
            got = {"leverage": s.leverage, "max_notional": s.max_notional, "margin_type": s.margin_type,
                   "position_mode": s.position_mode}  # fmt: skip
            shown = ", ".join(f"{k} {v}" for k, v in got.items() if v is not None)
            write(f"{what} {getattr(cmd, 'symbol', args.account)}: ok ({shown})")
        else:
            refused += 1
            write(f"{what} {getattr(cmd, 'symbol', args.account)}: refused ({r.code}): {r.reason}")
    return 1 if refused else 0


def register(s) -> None:
    """The ``futures`` action under ``oms stream``."""
    f = s.add_parser("futures", help="change a USD-M account's leverage, margin type or position mode")
    add_config_option(f)
    f.add_argument("account", help="exchange/name, e.g. binance/sub_futures_trend")
    f.add_argument("--leverage", action="append", metavar="SYMBOL=N", help="e.g. BTC/USDT:USDT=5 (repeatable)")
    f.add_argument("--margin-type", action="append", metavar="SYMBOL=TYPE", help="TYPE: cross or isolated")
    f.add_argument("--position-mode", choices=[m.value for m in PositionMode], help="the whole USD-M account")
    f.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the daemon's answer")
    f.add_argument("--nats-url", help="NATS server (default: services.nats.port in stream.yaml)")
    f.set_defaults(func=futures)
