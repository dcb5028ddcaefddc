"""Accounts and keys on the local exchange for every configured account: what `oms up` does on its defaults.

For each account of an exchange whose ``venue`` is ``local`` (configs/exchanges.yaml), ``provision_local``

1. creates its account on the local exchange if missing (id ``{exchange}_{account}``, email that
   ``@localex.invalid``, sub-accounts under their main account) and funds it with ``FUNDING`` (the local
   exchange keeps accounts in memory, so a restarted exchange gets them again);
2. keeps the account's key in Vault when the local exchange still knows it; otherwise creates a key
   (SPOT or FUTURES per market, TRANSFER, and WITHDRAW only on a main account with ``withdraw_enabled``)
   and writes it to Vault as a new version (a running daemon's rotation listener switches to it).

It needs the key store of the ``admin`` component (``oms keys init`` wrote its AppRole) and the local
exchange's admin token. Nothing is printed or logged with a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oms.keys.provider import KeyNotFound, KeyStoreError
from oms.keys.venue import admin_call, create_key

# What a freshly created local account holds: main accounts fund the subs through rebalancing.
FUNDING = {
    "main": {"SPOT": {"USDT": "1000000", "BTC": "10", "ETH": "100"}, "FUTURES": {"USDT": "1000000"}},
    "sub": {"SPOT": {"USDT": "100000", "BTC": "1", "ETH": "10"}, "FUTURES": {"USDT": "100000"}},
}
MARKET_PERMISSION = {"spot": "SPOT", "usdm": "FUTURES"}


@dataclass
class ProvisionResult:
    accounts_created: list[str] = field(default_factory=list)
    keys_created: list[str] = field(default_factory=list)  # exchange/account/market
    keys_kept: list[str] = field(default_factory=list)


def venue_account_id(exchange: str, account: str) -> str:
    """The account's id on the local exchange."""
    return f"{exchange}_{account}"


def venue_email(exchange: str, account: str) -> str:
    """The account's email on the local exchange, kept as its keys' ``venue_account``: Binance names
    sub-accounts by email (transfers, the rebalance flow); key rotation finds the id from it."""
    return f"{venue_account_id(exchange, account)}@localex.invalid"


def _permissions(acct, market: str) -> list[str]:
    perms = {MARKET_PERMISSION[market], "TRANSFER"}
    if acct.type == "main" and acct.withdraw_enabled:
        perms.add("WITHDRAW")
    return sorted(perms)


def provision_local(cfg, base_url: str, admin_token: str | None, store) -> ProvisionResult:
    """Make every local-venue account exist, funded, with a working key in Vault (idempotent)."""
    result = ProvisionResult()
    listed = admin_call(base_url, "GET", "/admin/v1/accounts", None, admin_token)
    existing = {a["accountId"] for a in listed} if isinstance(listed, list) else set()
    for exchange, accounts in cfg.accounts.items():
        ex_cfg = cfg.exchanges.exchanges.get(exchange)
        if ex_cfg is None or ex_cfg.venue != "local":
            continue
        for name, acct in sorted(accounts.items(), key=lambda kv: kv[1].type != "main"):  # parents first
            vid = venue_account_id(exchange, name)
            if vid not in existing:
                body = {"accountId": vid, "email": venue_email(exchange, name)}
                if acct.parent:
                    body["parentId"] = venue_account_id(exchange, acct.parent)
                admin_call(base_url, "POST", "/admin/v1/accounts", body, admin_token)
                funding = FUNDING["main" if acct.type == "main" else "sub"]
                wallets = ["SPOT"] + (["FUTURES"] if acct.futures_enabled else [])
                for wallet in wallets:
                    for asset, amount in funding[wallet].items():
                        admin_call(
                            base_url,
                            "POST",
                            f"/admin/v1/accounts/{vid}/fund",
                            {"asset": asset, "amount": amount, "wallet": wallet},
                            admin_token,
                        )
                existing.add(vid)
                result.accounts_created.append(f"{exchange}/{name}")
            keys = admin_call(base_url, "GET", f"/admin/v1/accounts/{vid}/keys", None, admin_token)
            live = {k["apiKey"] for k in keys if not k.get("revoked")} if isinstance(keys, list) else set()
            for market in acct.markets():
                where = f"{exchange}/{name}/{market}"
                try:
                    held = store.refresh(exchange, market, name)
                except KeyNotFound:
                    held = None
                except KeyStoreError:
                    held = None  # unreadable or refused (e.g. withdrawal permission): replaced below
                if held is not None and held.api_key in live:
                    result.keys_kept.append(where)
                    continue
                perms = _permissions(acct, market)
                key = create_key(base_url, vid, perms, f"oms {where}", admin_token)
                store.put(
                    exchange,
                    market,
                    name,
                    key["apiKey"],
                    key["secret"],
                    [p.lower() for p in perms],
                    venue_account=venue_email(exchange, name),
                )
                result.keys_created.append(where)
    return result
