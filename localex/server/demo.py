"""Default demo accounts with LOCAL TEST keys (never real Binance credentials), random per install.

On start the server creates a main account with two sub-accounts, funds them and gives each one key.
The keys are random (``secrets``) and kept in ``DATA_DIR/localex-demo-keys.json``
(mode 0600, created atomically): a restart reads them back, so configured clients keep working, and no
two installs share them. Only a test that passes an explicit seed gets keys that are a function of it
(then the file is rewritten with those). They are also served at ``GET /admin/v1/demo-keys`` (admin token).
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from localex.engine import Exchange, ExchangeError
from localex.engine.accounts import KEY_ALPHABET
from localex.server.private_files import PrivateFileError, create_private, read_private, replace_private

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
LABEL = "demo (local test key)"


def _permissions(parent: str | None) -> tuple[str, ...]:
    # As the platform's rule says: withdrawal permission only on the main account.
    return ("SPOT", "FUTURES", "TRANSFER", "WITHDRAW") if parent is None else ("SPOT", "FUTURES", "TRANSFER")


def create_demo_accounts(
    exchange: Exchange, saved: dict[str, tuple[str, str]] | None = None
) -> list[dict[str, object]]:
    """Create, fund and key the demo accounts; return their keys (account, apiKey, secret, notice).

    ``saved`` (account id -> (apiKey, secret)) restores the keys of an earlier run instead of making new ones.
    """
    out: list[dict[str, object]] = []
    for account_id, email, parent, spot, futures in DEMO_ACCOUNTS:
        exchange.create_account(email, parent_id=parent, account_id=account_id)
        for asset, amount in spot.items():
            exchange.fund(account_id, asset, amount, wallet="SPOT")
        for asset, amount in futures.items():
            exchange.fund(account_id, asset, amount, wallet="FUTURES")
        perms = _permissions(parent)
        if saved is not None:
            api_key, secret = saved[account_id]
            key = exchange.restore_api_key(account_id, api_key, secret, perms, LABEL)
        else:
            key = exchange.create_api_key(account_id, permissions=perms, label=LABEL)
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


def _new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(64))


def _encode(keys: list[dict[str, object]]) -> bytes:
    return json.dumps({"notice": NOTICE, "keys": keys}, indent=2).encode()


def read_keys(path: Path) -> dict[str, tuple[str, str]]:
    """The saved demo keys (account id -> (apiKey, secret)); PrivateFileError naming the file if unusable."""
    raw = read_private(path)
    try:
        rows = json.loads(raw)["keys"]
        saved = {str(r["accountId"]): (str(r["apiKey"]), str(r["secret"])) for r in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise PrivateFileError(f"{path} is not a demo-keys file ({exc}): delete it to generate new keys") from exc
    missing = [a for a, *_ in DEMO_ACCOUNTS if a not in saved]
    if missing:
        raise PrivateFileError(f"{path} has no key for {', '.join(missing)}: delete it to generate new keys")
    return saved


def write_keys(data_dir: str, keys: list[dict[str, object]]) -> Path:
    """Write the demo keys to ``data_dir`` (created 0600, replacing an earlier file) and return the file."""
    path = Path(data_dir) / KEYS_FILE
    replace_private(path, _encode(keys))
    return path


def setup_demo(exchange: Exchange, data_dir: str | None, seeded: bool) -> list[dict[str, object]]:
    """The demo accounts of this install: keys from the seed (``seeded``), else the saved ones, else new ones.

    Keys made here for an install are saved only if no other process saved some meanwhile (``O_EXCL``):
    two servers starting together in one data folder end up with one set of keys, the first one's.
    """
    if data_dir is None:
        return create_demo_accounts(exchange)
    path = Path(data_dir) / KEYS_FILE
    if seeded:
        keys = create_demo_accounts(exchange)
        write_keys(data_dir, keys)
        return keys
    if path.exists():
        keys = _restore(exchange, path)
        log.info("demo keys read from %s", path)
        return keys
    proposal = [
        {
            "accountId": account_id,
            "email": email,
            "parentId": parent,
            "apiKey": _new_key(),
            "secret": _new_key(),
            "permissions": sorted(_permissions(parent)),
            "notice": NOTICE,
        }
        for account_id, email, parent, _, _ in DEMO_ACCOUNTS
    ]
    if create_private(path, _encode(proposal)):
        log.info("demo keys generated in %s (mode 0600)", path)
    return _restore(exchange, path)


def _restore(exchange: Exchange, path: Path) -> list[dict[str, object]]:
    try:
        return create_demo_accounts(exchange, read_keys(path))
    except ExchangeError as exc:  # a key of the wrong shape: the file was edited
        raise PrivateFileError(f"{path} holds an unusable key ({exc.msg}): delete it to generate new keys") from exc
