"""Key providers for the local venue and simple deployments: the local exchange's demo-keys file, and
environment variables. Both implement ``oms.keys.KeyProvider``; the Vault key store replaces them in
production.

``DemoKeysFile`` reads ``localex-demo-keys.json`` (written by the local exchange into its data directory:
``{"keys": [{"accountId", "apiKey", "secret", "permissions", "email", ...}]}``). An account is found by
``accounts`` (our account name -> the file's ``accountId``), else by its own name, else as ``demo_<name>``.
The file is re-read when it changes, so a restarted exchange's keys are picked up. One key serves both
markets of an account, as on Binance.

``EnvKeys`` reads ``OMS_KEY_<EXCHANGE>_<MARKET>_<ACCOUNT>_API_KEY`` and ``..._SECRET`` (upper-case), falling
back to ``OMS_KEY_<EXCHANGE>_<ACCOUNT>_API_KEY``/``_SECRET`` for both markets; it reads the environment on
each call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from oms.keys.provider import Credentials, KeyNotFound, KeyStoreError, Market

_PERMISSIONS = {"SPOT": "spot", "FUTURES": "futures", "WITHDRAW": "withdraw", "TRANSFER": "transfer"}


class DemoKeysFile:
    """Credentials from the local exchange's demo-keys file (LOCAL TEST keys, never real ones)."""

    def __init__(self, path: str | os.PathLike, accounts: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.accounts = dict(accounts or {})
        self._stamp: tuple[int, int] | None = None
        self._rows: dict[str, dict] = {}

    def _load(self) -> dict[str, dict]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyNotFound(f"demo keys file {self.path} does not exist (is the local exchange running?)") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                doc = json.loads(self.path.read_text())
                rows = {str(r["accountId"]): r for r in doc["keys"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyStoreError(f"demo keys file {self.path} is unreadable: {exc!r}") from None
            self._rows, self._stamp = rows, stamp
        return self._rows

    def account_id(self, account: str) -> str | None:
        rows = self._load()
        for candidate in (self.accounts.get(account), account, f"demo_{account}"):
            if candidate and candidate in rows:
                return candidate
        return None

    def email(self, account: str) -> str | None:
        """The venue email of an account in the file (how Binance addresses sub-accounts)."""
        found = self.account_id(account)
        if found is None:
            return None
        return str(self._rows[found].get("email") or "") or None

    def get(self, exchange: str, market: Market, account: str) -> Credentials:
        found = self.account_id(account)
        if found is None:
            known = ", ".join(sorted(self._load()))
            raise KeyNotFound(f"no demo key for {exchange}/{account} ({market}) in {self.path}; it has: {known}")
        row = self._rows[found]
        perms = tuple(sorted(_PERMISSIONS.get(str(p).upper(), str(p).lower()) for p in row.get("permissions", ())))
        try:
            return Credentials(exchange, market, account, str(row["apiKey"]), str(row["secret"]), permissions=perms)
        except KeyError as exc:
            raise KeyStoreError(f"demo key of {found} in {self.path} lacks {exc}") from None


class EnvKeys:
    """Credentials from environment variables (see the module docstring for the names)."""

    def __init__(self, environ: Mapping[str, str] | None = None, prefix: str = "OMS_KEY"):
        self._environ = environ
        self.prefix = prefix

    def names(self, exchange: str, market: str, account: str) -> list[str]:
        """The variable stems tried, most specific first."""
        return [f"{self.prefix}_{exchange}_{market}_{account}".upper(), f"{self.prefix}_{exchange}_{account}".upper()]

    def get(self, exchange: str, market: Market, account: str) -> Credentials:
        env = os.environ if self._environ is None else self._environ
        stems = self.names(exchange, market, account)
        for stem in stems:
            key, secret = env.get(stem + "_API_KEY"), env.get(stem + "_SECRET")
            if key and secret:
                return Credentials(exchange, market, account, key, secret)
            if key or secret:
                missing = stem + ("_SECRET" if key else "_API_KEY")
                raise KeyStoreError(f"key of {exchange}/{account} ({market}): {missing} is not set")
        raise KeyNotFound(
            f"no key for {exchange}/{account} ({market}) in the environment: set {stems[0]}_API_KEY and _SECRET"
        )
