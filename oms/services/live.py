"""`oms up --live`: what must hold before the platform trades real money, checked before anything starts.

Live mode points every exchange at its real endpoints (``venue: live``, as ``OMS_<EXCHANGE>_VENUE=live``
would) and reads keys from a real Vault (``VAULT_ADDR`` / ``OMS_VAULT_ADDR``, with a token or AppRole),
never the embedded OpenBao or the local exchange. It refuses to start, listing every reason, when:

* a Vault address is not set (live keys never come from the embedded OpenBao);
* an account lacks an explicit limit in ``risk.yaml``: each account needs its own
  ``accounts.{exchange}.{account}`` entry with every limit in ``REQUIRED_LIMITS`` (the defaults are a
  template for the local exchange, not a decision about real money);
* an account's key cannot be read from Vault, or a sub/strategy account's key carries withdrawal
  permission, as Vault records it (the key store's guard) or, on Binance, as the exchange itself reports it
  (``GET /sapi/v1/account/apiRestrictions`` ``enableWithdrawals``);
* the exchange refuses a key: a Binance sub-account's restrictions read is itself a signed read; every other
  key is proven with one signed read through its library (``oms.keys.verify``: Binance's REST account read,
  ccxt's ``fetch_balance``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from oms.config import Config, load_config

REQUIRED_LIMITS = ("max_order_notional_usdt", "max_position_notional_usdt", "max_daily_loss_usdt")
VAULT_ADDRESS_VARS = ("OMS_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR")


@dataclass
class Preflight:
    """The outcome: ``problems`` refuse the start; ``notes`` are said but do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_keys: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def live_env(config_dir: str | os.PathLike | None, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every configured exchange switched to its live endpoints."""
    exchanges = load_config(config_dir, env=dict(env)).exchanges.exchanges
    return {**env, **{f"OMS_{name.upper()}_VENUE": "live" for name in exchanges}}


def risk_problems(cfg: Config) -> list[str]:
    where = cfg.dir / "risk.yaml"
    out = []
    for exchange, accounts in cfg.accounts.items():
        for name in accounts:
            entry = cfg.risk.accounts.get(exchange, {}).get(name)
            missing = [f for f in REQUIRED_LIMITS if entry is None or getattr(entry, f) is None]
            if missing:
                out.append(
                    f"{where}: accounts.{exchange}.{name}: no explicit {', '.join(missing)}; live trading needs "
                    "each account's own limits (the defaults are not enough): add them under "
                    f"accounts.{exchange}.{name}"
                )
    return out


def _default_restrictions(rest_url: str, creds) -> dict:
    from oms.keys.venue import api_restrictions

    return api_restrictions(rest_url, creds)


def _default_verify(cfg: Config, creds) -> str:
    from oms.keys.verify import verify_key

    return verify_key(cfg, creds)


def key_problems(
    cfg: Config,
    env: Mapping[str, str],
    restrictions: Callable[[str, object], dict] = _default_restrictions,
    verify: Callable[[Config, object], str] = _default_verify,
) -> Preflight:
    """Every account's key readable from the real Vault, and no withdrawal permission below a main account."""
    from oms.keys.factory import open_store
    from oms.keys.provider import KeyStoreError

    result = Preflight()
    if not any(env.get(v) for v in VAULT_ADDRESS_VARS):
        result.problems.append(
            "live keys come from a real Vault, not the embedded OpenBao: set VAULT_ADDR (or OMS_VAULT_ADDR) and "
            "VAULT_TOKEN or the AppRole (OMS_VAULT_ROLE_ID/OMS_VAULT_SECRET_ID); see README 'API keys'"
        )
        return result
    try:
        store = open_store(cfg, "daemon", env=env, cache=False)
    except KeyStoreError as exc:
        result.problems.append(f"Vault: {exc}")
        return result
    for exchange, accounts in cfg.accounts.items():
        ex_cfg = cfg.exchanges.exchanges.get(exchange)
        for name, acct in accounts.items():
            for market in acct.markets():
                try:
                    creds = store.get(exchange, market, name)  # the guard refuses recorded withdraw permission
                except KeyStoreError as exc:
                    result.problems.append(f"{exchange}/{name}/{market}: {exc}")
                    continue
                result.checked_keys += 1
                if ex_cfg is None:
                    continue
                if ex_cfg.library != "python-binance" or acct.type == "main":
                    try:  # a Binance sub's key is proven by its apiRestrictions read below; others by a signed read
                        verify(cfg, creds)
                    except KeyStoreError as exc:
                        result.problems.append(f"{exchange}/{name}/{market}: the exchange refuses the key: {exc}")
                        continue
                if acct.type == "main":
                    continue
                if ex_cfg.library != "python-binance":
                    result.notes.append(
                        f"{exchange}/{name}/{market}: {exchange} reports no key permissions through ccxt; "
                        "the key works (signed read), its permissions were checked in Vault's record only"
                    )
                    continue
                spot = ex_cfg.markets.get("spot")
                if spot is None:
                    continue
                try:
                    doc = restrictions(spot.live.rest_url, creds)
                except KeyStoreError as exc:
                    result.problems.append(f"{exchange}/{name}/{market}: cannot verify the key's permissions: {exc}")
                    continue
                if doc.get("enableWithdrawals"):
                    result.problems.append(
                        f"{exchange}/{name}/{market}: key {creds.fingerprint} has withdrawal permission on a "
                        f"{acct.type} account (the exchange reports enableWithdrawals); create a key without it "
                        "and `oms keys rotate`"
                    )
    return result


def preflight(config_dir: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Preflight:
    """Every check of live mode, on the configuration as live mode loads it."""
    env = dict(os.environ if env is None else env)
    live = live_env(config_dir, env)
    cfg = load_config(config_dir, env=live)
    result = key_problems(cfg, live)
    result.problems[:0] = risk_problems(cfg)
    return result
