"""The key-provider interface: how connectors get an account's API key, whatever stores it.

The venue clients factory asks a ``KeyProvider`` for the credentials of one (exchange, market, account)
and never learns where they came from: the Vault/OpenBao key store, the local exchange's demo-keys file, or
environment variables. A provider raises ``KeyNotFound`` (or another ``KeyError`` subclass of ``KeyStoreError``)
naming the account and path; it never returns a placeholder.

``Credentials`` keeps the secret out of ``repr``/``str`` so that a credentials object that ends up in a log
line, an exception or a Prefect parameter shows only its fingerprint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Market = Literal["spot", "usdm"]


def fingerprint(api_key: str) -> str:
    """A short, stable, non-reversible name for a key (safe to print): the first 12 hex of its SHA-256."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Credentials:
    """One API key of one account and market. ``secret`` never appears in ``repr``."""

    exchange: str
    market: Market
    account: str
    api_key: str
    secret: str = field(repr=False)
    permissions: tuple[str, ...] = ()  # e.g. ("spot", "futures", "withdraw")
    version: int = 0  # the key store's version of this secret (0 where the source has no versions)
    created_ns: int = 0
    expires_ns: int = 0  # 0: no expiry
    venue_account: str = ""  # the venue's own id of the account (sub-account email, local exchange account id)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.api_key)

    @property
    def can_withdraw(self) -> bool:
        return "withdraw" in self.permissions

    def __str__(self) -> str:
        return f"{self.exchange}/{self.account}/{self.market} key {self.fingerprint} v{self.version}"


class KeyStoreError(Exception):
    """A key could not be had; the message names the account and where it was looked for."""


class KeyNotFound(KeyStoreError):
    """No key for this account and market at its path."""


class KeyRevoked(KeyNotFound):
    """The key at the path was revoked (its current version deleted)."""


class WithdrawalPermissionRefused(KeyStoreError):
    """A key of a sub or strategy account carries withdrawal permission: refused at load time."""


def vault_path(exchange: str, market: str, account_stem: str) -> str:
    """``secret/exchanges/{exchange}_{market}_{account}`` from an account's ``api_key_vault_path`` stem.

    The stem is ``{exchange}_{name}`` (``binance_sub_mm``); the path inserts the market after the exchange:
    ``exchanges/binance_spot_sub_mm`` (relative to the KV v2 mount ``secret``).
    """
    prefix = exchange + "_"
    if not account_stem.startswith(prefix):
        raise ValueError(f"vault path stem {account_stem!r} does not start with {prefix!r}")
    return f"exchanges/{exchange}_{market}_{account_stem[len(prefix) :]}"


@runtime_checkable
class KeyProvider(Protocol):
    """Where connectors get credentials. Implementations: the Vault key store (``oms.keys``), the local
    exchange's demo-keys file and environment variables (for the local venue and tests)."""

    def get(self, exchange: str, market: Market, account: str) -> Credentials:
        """The current credentials of ``account`` on ``exchange``/``market``; raises ``KeyStoreError``."""
        ...
