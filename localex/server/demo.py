"""Default demo accounts with deterministic LOCAL TEST keys (never real Binance credentials).

On start the server creates a main account with two sub-accounts, funds them and creates one key each.
Keys come from the engine's seeded generator, so the same seed gives the same keys; they are written to
``DATA_DIR/localex-demo-keys.json`` and served at ``GET /admin/v1/demo-keys``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from localex.engine import Exchange

log = logging.getLogger(__name__)
KEYS_FILE = "localex-demo-keys.json"
NOTICE = "LOCAL TEST KEYS of the crypto-oms local exchange; they do not work on Binance."
DEMO_ACCOUNTS = (
    # account id, email, parent, SPOT funding, FUTURES funding
    (
        "demo_main",
        "demo-main@localex.invalid",
        None,
        {"USDT": "1000000", "BTC": "10", "ETH": "100", "LTC": "1000"},
        {"USDT": "1000000"},
    ),
    ("demo_sub_spot", "demo-sub-spot@localex.invalid", "demo_main", {"USDT": "100000", "BTC": "1"}, {}),
    ("demo_sub_futures", "demo-sub-futures@localex.invalid", "demo_main", {"USDT": "10000"}, {"USDT": "100000"}),
)


def create_demo_accounts(exchange: Exchange) -> list[dict[str, object]]:
    """Create, fund and key the demo accounts; return their keys (account, apiKey, secret, notice)."""
    out: list[dict[str, object]] = []
    for account_id, email, parent, spot, futures in DEMO_ACCOUNTS:
        exchange.create_account(email, parent_id=parent, account_id=account_id)
        for asset, amount in spot.items():
            exchange.fund(account_id, asset, amount, wallet="SPOT")
        for asset, amount in futures.items():
            exchange.fund(account_id, asset, amount, wallet="FUTURES")
        # As the platform's rule says: withdrawal permission only on the main account.
        perms = ("SPOT", "FUTURES", "TRANSFER", "WITHDRAW") if parent is None else ("SPOT", "FUTURES", "TRANSFER")
        key = exchange.create_api_key(account_id, permissions=perms, label="demo (local test key)")
        out.append(
            {
                "accountId": account_id,
                "email": email,
                "parentId": parent,
                "apiKey": key.api_key,
                "secret": key.secret,
                "permissions": sorted(key.permissions),
                "notice": NOTICE,
            }
        )
    return out


def write_keys(data_dir: str, keys: list[dict[str, object]]) -> Path:
    """Write the demo keys to ``data_dir`` (mode 0600) and return the file."""
    path = Path(data_dir) / KEYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"notice": NOTICE, "keys": keys}, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
