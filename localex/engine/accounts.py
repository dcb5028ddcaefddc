"""Accounts, wallets and API keys of the local exchange.

An account has a spot wallet and a USD-M futures wallet (asset -> Balance), futures settings per
symbol (leverage, margin type), the position mode, its positions and an index of its open orders.
``Ledger`` owns all accounts and keys; it never decides on orders (that is ``matching``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from dataclasses import dataclass, field
from typing import Final

from .errors import ExchangeError
from .types import (
    ALL_PERMISSIONS,
    CROSSED,
    WALLET_FUTURES,
    WALLET_SPOT,
    ApiKey,
    Balance,
    Order,
    Position,
)

DEFAULT_LEVERAGE: Final = 20


@dataclass(slots=True, eq=False)
class Account:
    """One account (main, sub or internal). ``internal`` accounts are hidden from listings."""

    account_id: str
    email: str
    parent_id: str | None
    created_ns: int
    internal: bool = False
    unlimited: bool = False  # the liquidity provider: no balance or margin checks
    spot: dict[str, Balance] = field(default_factory=dict)
    futures: dict[str, Balance] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    dual_side: bool = False
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    open_orders: dict[tuple[str, str], dict[int, Order]] = field(default_factory=dict)
    open_by_client_id: dict[tuple[str, str, str], Order] = field(default_factory=dict)
    order_margin: int = 0  # futures initial margin reserved by open orders (1e-8 USDT)

    @property
    def is_sub(self) -> bool:
        """True for a sub-account."""
        return self.parent_id is not None

    def wallet(self, wallet: str) -> dict[str, Balance]:
        """The asset -> Balance dict of "SPOT" or "FUTURES"."""
        if wallet == WALLET_SPOT:
            return self.spot
        if wallet == WALLET_FUTURES:
            return self.futures
        raise ExchangeError(-1130, f"Data sent for parameter 'wallet' is not valid: {wallet}")

    def bal(self, wallet: dict[str, Balance], asset: str) -> Balance:
        """The Balance of ``asset`` in ``wallet``, created at zero if absent."""
        b = wallet.get(asset)
        if b is None:
            b = wallet[asset] = Balance(asset)
        return b

    def leverage_of(self, symbol: str) -> int:
        """Futures leverage of ``symbol`` (default 20)."""
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def margin_type_of(self, symbol: str) -> str:
        """ISOLATED or CROSSED (default)."""
        return self.margin_type.get(symbol, CROSSED)

    def position(self, symbol: str, position_side: str) -> Position:
        """The position of ``symbol`` / side, created flat if absent."""
        key = (symbol, position_side)
        p = self.positions.get(key)
        if p is None:
            p = self.positions[key] = Position(self.account_id, symbol, position_side)
        return p


ACCOUNT_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
EMAIL_RE: Final = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+\Z")
MAX_EMAIL: Final = 254
KEY_RE: Final = re.compile(r"^[A-Za-z0-9]{64}\Z")
MAX_LABEL: Final = 128
KEY_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class Ledger:
    """All accounts and API keys.

    Key ids and secrets come from ``seed`` (the same seed, the same keys: for tests) or, with
    ``random_keys``, from the operating system's generator (``random.SystemRandom``), so no two installs
    share a key.
    """

    def __init__(self, seed: int = 0, random_keys: bool = False) -> None:
        self._rng: random.Random = random.SystemRandom() if random_keys else random.Random(seed)
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, ApiKey] = {}
        self._next_id = 1

    def create(
        self,
        now_ns: int,
        email: str | None = None,
        parent_id: str | None = None,
        account_id: str | None = None,
        internal: bool = False,
        unlimited: bool = False,
    ) -> Account:
        """Create an account; a sub-account needs an existing, non-sub parent.

        ``account_id``: 1-64 letters, digits, ``_`` or ``-``; ``email``: an address of at most 254 characters.
        """
        if account_id is not None and not ACCOUNT_ID_RE.match(account_id):
            raise ExchangeError(
                -1130, "Data sent for parameter 'accountId' is not valid: 1-64 letters, digits, '_' or '-' expected."
            )
        if email is not None and (len(email) > MAX_EMAIL or not EMAIL_RE.match(email)):
            raise ExchangeError(
                -1130, f"Data sent for parameter 'email' is not valid: an address of at most {MAX_EMAIL} characters."
            )
        if parent_id is not None:
            parent = self.get(parent_id)
            if parent.is_sub:
                raise ExchangeError(
                    -1130, "Data sent for parameter 'parent' is not valid: a sub-account cannot own sub-accounts."
                )
        if account_id is None:
            while True:
                account_id = str(10_000_000 + self._next_id)
                self._next_id += 1
                if account_id not in self.accounts:
                    break
        if account_id in self.accounts:
            raise ExchangeError(-1130, f"Account already exists: {account_id}")
        if email is None:
            email = (
                f"{account_id}@localex.invalid"
                if parent_id is None
                else f"{account_id}_virtual@{parent_id}.localex.invalid"
            )
        if any(a.email == email for a in self.accounts.values()):
            raise ExchangeError(-1130, f"Email already used: {email}")
        acc = Account(account_id, email, parent_id, now_ns, internal=internal, unlimited=unlimited)
        self.accounts[account_id] = acc
        return acc

    def get(self, account_id: str) -> Account:
        """The account; ExchangeError(-1000, "Unknown account: X") if absent."""
        acc = self.accounts.get(account_id)
        if acc is None:
            raise ExchangeError(-1000, f"Unknown account: {account_id}")
        return acc

    def create_key(self, account_id: str, permissions: frozenset[str], label: str, now_ns: int) -> ApiKey:
        """A new API key (64 alphanumerics) and secret (64 alphanumerics) for ``account_id``."""
        self._check_key_request(account_id, permissions, label)
        rng = self._rng
        while True:
            key = "".join(rng.choice(KEY_ALPHABET) for _ in range(64))
            if key not in self.keys:
                break
        secret = "".join(rng.choice(KEY_ALPHABET) for _ in range(64))
        k = ApiKey(key, secret, account_id, frozenset(permissions), label, now_ns)
        self.keys[key] = k
        return k

    def restore_key(
        self, account_id: str, api_key: str, secret: str, permissions: frozenset[str], label: str, now_ns: int
    ) -> ApiKey:
        """Register a key made earlier (the demo keys kept across restarts): 64 alphanumerics each, unused."""
        self._check_key_request(account_id, permissions, label)
        if not KEY_RE.match(api_key) or not KEY_RE.match(secret):
            raise ExchangeError(-1130, "Data sent for parameter 'apiKey' is not valid: 64 letters or digits expected.")
        if api_key in self.keys:
            raise ExchangeError(-1130, "Data sent for parameter 'apiKey' is not valid: the key exists already.")
        k = ApiKey(api_key, secret, account_id, frozenset(permissions), label, now_ns)
        self.keys[api_key] = k
        return k

    def _check_key_request(self, account_id: str, permissions: frozenset[str], label: str) -> None:
        self.get(account_id)
        bad = set(permissions) - ALL_PERMISSIONS
        if bad:
            raise ExchangeError(-1130, f"Data sent for parameter 'permissions' is not valid: {sorted(bad)}")
        if len(label) > MAX_LABEL or not label.isprintable():
            raise ExchangeError(
                -1130, f"Data sent for parameter 'label' is not valid: at most {MAX_LABEL} printable characters."
            )

    def revoke_key(self, api_key: str) -> ApiKey:
        """Mark a key revoked; ExchangeError(-2014) if unknown."""
        k = self.keys.get(api_key)
        if k is None:
            raise ExchangeError(-2014, "API-key format invalid.")
        k.revoked = True
        return k

    def lookup_key(self, api_key: str) -> ApiKey | None:
        """The live key, or None when unknown or revoked."""
        k = self.keys.get(api_key)
        if k is None or k.revoked:
            return None
        return k


def sign(secret: str, payload: str) -> str:
    """Binance's signature: hex HMAC-SHA256 of ``payload`` with ``secret`` (for tests and the server)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
