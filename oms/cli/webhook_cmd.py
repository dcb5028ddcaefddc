"""`oms webhook secret`: create (or rotate) the webhook's shared secret in Vault/OpenBao.

The new secret goes to ``secret/webhooks/tradingview`` (a new version; the daemon picks it up within a
minute) and to a 0600 file for you to paste into the TradingView alert (``--out``, default
``data/keys/webhook-secret``); ``--stdout`` prints it instead. It is never logged.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from oms.cli.common import CommandError, add_config_option, config_from, write
from oms.keys.factory import open_store
from oms.keys.provider import KeyStoreError
from oms.keys.webhook import WEBHOOK_SECRET_PATH, new_webhook_secret


def run_secret(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    try:
        store = open_store(cfg, "admin", cache=False)
        value, version = new_webhook_secret(store)
    except KeyStoreError as exc:
        raise CommandError(f"cannot write the webhook secret: {exc}") from exc
    where = store.full_path(WEBHOOK_SECRET_PATH)
    if args.stdout:
        write(value)
        return 0
    out = Path(args.out) if args.out else cfg.data_dir() / "keys" / "webhook-secret"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
    except OSError as exc:
        raise CommandError(f"wrote {where} v{version} but cannot write {out}: {exc.strerror or exc}") from exc
    write(f'webhook secret: {where} v{version}; the value is in {out} (mode 0600): put it in the alert\'s "secret"')
    return 0


def register(sub) -> None:
    p = sub.add_parser("webhook", help="the TradingView-style alert webhook")
    wsub = p.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    s = wsub.add_parser("secret", help="create or rotate the webhook's shared secret in Vault")
    add_config_option(s)
    s.add_argument("--out", metavar="FILE", help="where to write the value (default data/keys/webhook-secret)")
    s.add_argument("--stdout", action="store_true", help="print the value instead of writing a file")
    s.set_defaults(func=run_secret)
