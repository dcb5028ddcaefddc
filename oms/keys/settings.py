"""Where the key store finds Vault and how it logs in, and which accounts it knows.

Everything comes from the environment (deployment) with defaults for the embedded OpenBao, so the same
code runs against a real Vault:

| variable | meaning | default |
|---|---|---|
| ``OMS_VAULT_ADDR`` (or ``VAULT_ADDR``, ``BAO_ADDR``) | server address | the embedded OpenBao |
| ``OMS_VAULT_AUTH`` | ``approle`` or ``token`` | ``approle`` when role credentials exist, else ``token`` |
| ``OMS_VAULT_TOKEN`` (or ``VAULT_TOKEN``, ``BAO_TOKEN``) | token for ``token`` auth | |
| ``OMS_VAULT_ROLE_ID`` / ``OMS_VAULT_SECRET_ID`` | AppRole credentials | from the role file |
| ``OMS_VAULT_APPROLE_FILE`` | JSON ``{"role_id", "secret_id"}`` (0600) | ``data/keys/approle/{component}.json`` |
| ``OMS_VAULT_APPROLE_MOUNT`` | AppRole auth mount | ``approle`` |
| ``OMS_VAULT_MOUNT`` | KV v2 mount | ``secret`` |
| ``OMS_VAULT_NAMESPACE`` (or ``VAULT_NAMESPACE``) | Vault Enterprise namespace | none |
| ``OMS_VAULT_CACERT`` (or ``VAULT_CACERT``) | CA bundle for TLS | system |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from oms.keys.provider import KeyNotFound, KeyStoreError, vault_path

COMPONENTS = ("daemon", "rotation", "balances", "admin")


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def approle_file(data_dir: Path, component: str) -> Path:
    return Path(data_dir) / "keys" / "approle" / f"{component}.json"


@dataclass(frozen=True)
class VaultSettings:
    """How to reach Vault/OpenBao and log in. Secrets (token, secret_id) stay out of ``repr``."""

    address: str
    auth: Literal["token", "approle"] = "token"
    token: str | None = field(default=None, repr=False)
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    approle_mount: str = "approle"
    mount: str = "secret"
    namespace: str | None = None
    verify: bool | str = True
    timeout: float = 5.0
    component: str = "admin"

    @classmethod
    def from_env(
        cls,
        component: str,
        data_dir: Path,
        default_address: str,
        env: Mapping[str, str] | None = None,
    ) -> VaultSettings:
        env = os.environ if env is None else env
        address = _first(env, "OMS_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR") or default_address
        token = _first(env, "OMS_VAULT_TOKEN", "VAULT_TOKEN", "BAO_TOKEN")
        role_id, secret_id = env.get("OMS_VAULT_ROLE_ID"), env.get("OMS_VAULT_SECRET_ID")
        role_path = Path(env.get("OMS_VAULT_APPROLE_FILE") or approle_file(data_dir, component))
        if not (role_id and secret_id) and role_path.is_file():
            try:
                doc = json.loads(role_path.read_text())
                role_id, secret_id = doc["role_id"], doc["secret_id"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyStoreError(f"AppRole file {role_path} is unreadable or lacks role_id/secret_id") from exc
        auth = env.get("OMS_VAULT_AUTH") or ("approle" if role_id and secret_id else "token")
        if auth not in ("token", "approle"):
            raise KeyStoreError(f"OMS_VAULT_AUTH must be token or approle, got {auth!r}")
        if auth == "approle" and not (role_id and secret_id):
            raise KeyStoreError(
                f"AppRole login for component {component!r} needs OMS_VAULT_ROLE_ID and OMS_VAULT_SECRET_ID or the "
                f"file {role_path} (written by `oms keys init`)"
            )
        if auth == "token" and not token:
            raise KeyStoreError(
                f"no Vault credentials for component {component!r}: run `oms keys init` (writes {role_path}) "
                "or set OMS_VAULT_TOKEN"
            )
        cacert = _first(env, "OMS_VAULT_CACERT", "VAULT_CACERT")
        return cls(
            address=address,
            auth=auth,  # type: ignore[arg-type]
            token=token if auth == "token" else None,
            role_id=role_id if auth == "approle" else None,
            secret_id=secret_id if auth == "approle" else None,
            approle_mount=env.get("OMS_VAULT_APPROLE_MOUNT", "approle"),
            mount=env.get("OMS_VAULT_MOUNT", "secret"),
            namespace=_first(env, "OMS_VAULT_NAMESPACE", "VAULT_NAMESPACE"),
            verify=cacert or True,
            component=component,
        )

    def describe(self) -> str:
        who = f"AppRole {self.role_id}" if self.auth == "approle" else "a token"
        ns = f" namespace {self.namespace}" if self.namespace else ""
        return f"{self.address}{ns} as {who} (component {self.component})"


@dataclass(frozen=True)
class KeyAccount:
    """An account the key store serves: its type (for the withdrawal guard) and its vault path stem."""

    exchange: str
    account: str
    type: Literal["main", "sub", "strategy"]
    stem: str
    markets: tuple[str, ...] = ("spot", "usdm")

    def path(self, market: str) -> str:
        return vault_path(self.exchange, market, self.stem)


class AccountCatalog:
    """The accounts of ``configs/accounts.yaml`` (or any given set), looked up in O(1)."""

    def __init__(self, accounts: list[KeyAccount]):
        self._by_key = {(a.exchange, a.account): a for a in accounts}

    @classmethod
    def from_config(cls, cfg) -> AccountCatalog:  # cfg: oms.config.Config
        return cls(
            [
                KeyAccount(ex, name, acct.type, acct.api_key_vault_path, acct.markets())
                for ex, accounts in cfg.accounts.items()
                for name, acct in accounts.items()
            ]
        )

    def __iter__(self):
        return iter(self._by_key.values())

    def get(self, exchange: str, account: str) -> KeyAccount:
        found = self._by_key.get((exchange, account))
        if found is None:
            known = ", ".join(sorted(a for e, a in self._by_key if e == exchange)) or "none"
            raise KeyNotFound(f"account {exchange}/{account} is not configured (accounts of {exchange}: {known})")
        return found

    def paths(self, accounts: list[tuple[str, str]] | None = None) -> list[str]:
        """Every vault path of the given (exchange, account) pairs (all accounts by default)."""
        chosen = [self.get(e, a) for e, a in accounts] if accounts is not None else list(self)
        return sorted({a.path(m) for a in chosen for m in a.markets})
