"""Accounts on a local exchange through its admin API, for the in-thread server of the tests
(``tests.localex.conftest.LocalServer``) and for the exchange as its own process (``RemoteExchange``, over
``tests.localex.conftest.localex_process``). Both look the same to ``tests.stream.conftest.Bench`` and
``tests.venues.binance.conftest.Harness``: ``url`` and ``new_account``. Benches use the process where the venue
must not share the measured interpreter (and its lock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localex.admin_client import AdminClient

AdminCall = Callable[[str, str, dict], object]


def new_account(
    admin: AdminCall,
    spot: dict[str, str] | None = None,
    futures: dict[str, str] | None = None,
    permissions: list[str] | None = None,
    parent: str | None = None,
) -> tuple[str, str, str]:
    """Create and fund an account with one key: ``(account_id, api_key, secret)``."""
    account_id = admin("POST", "/admin/v1/accounts", {"parentId": parent} if parent else {})["accountId"]  # type: ignore[index]
    for asset, amount in (spot or {}).items():
        admin("POST", f"/admin/v1/accounts/{account_id}/fund", {"asset": asset, "amount": amount})
    for asset, amount in (futures or {}).items():
        admin("POST", f"/admin/v1/accounts/{account_id}/fund", {"asset": asset, "amount": amount, "wallet": "FUTURES"})
    grants = {"permissions": permissions} if permissions is not None else {}
    key = admin("POST", f"/admin/v1/accounts/{account_id}/keys", grants)
    return account_id, key["apiKey"], key["secret"]  # type: ignore[index]


@dataclass
class RemoteExchange:
    """The local exchange process at ``url``."""

    url: str
    admin: AdminClient

    @classmethod
    def of(cls, url: str, data_dir: Path) -> RemoteExchange:
        """The process at ``url`` whose data folder ``data_dir`` holds its admin token."""
        return cls(url, AdminClient(url, (data_dir / "localex-admin-token").read_text().strip()))

    def new_account(self, spot=None, futures=None, permissions=None, parent=None) -> tuple[str, str, str]:
        return new_account(self.admin.call, spot, futures, permissions, parent)
