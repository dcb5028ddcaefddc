"""Checks that span fields or files: references between accounts, routing, risk, strategies, machine."""

from __future__ import annotations

from oms.config.errors import Problem
from oms.config.machine import core_problem
from oms.config.models import AccountsFile, ExchangesFile, RiskConfig, StrategiesFile, StreamFile

FUTURES_ONLY = ("max_leverage", "max_position_usdt", "margin_type", "position_mode")


def _names(d) -> str:
    return ", ".join(sorted(d)) or "none"


def _check_account(f: str, ex: str, name: str, acct, accounts: dict) -> list[Problem]:
    out: list[Problem] = []
    key = f"accounts.{ex}.{name}"
    if acct.parent is not None:
        parent = accounts.get(acct.parent)
        if parent is None:
            out.append(
                Problem(f, f"{key}.parent", f"'{acct.parent}' is not an account of {ex} (accounts: {_names(accounts)})")
            )
        elif parent.type != "main":
            out.append(
                Problem(
                    f,
                    f"{key}.parent",
                    f"'{acct.parent}' is a {parent.type} account; the parent must be the main account",
                )
            )
    if not acct.futures_enabled:
        out += [
            Problem(f, f"{key}.{field}", "futures setting on an account with futures_enabled: false")
            for field in FUTURES_ONLY
            if getattr(acct, field) is not None
        ]
    if acct.withdraw_enabled and acct.type != "main":
        out.append(Problem(f, f"{key}.withdraw_enabled", "withdrawal permission only on the main account"))
    if not acct.api_key_vault_path.startswith(ex + "_"):
        out.append(
            Problem(f, f"{key}.api_key_vault_path", f"must start with '{ex}_' (got '{acct.api_key_vault_path}')")
        )
    return out


def check_accounts(af: AccountsFile) -> list[Problem]:
    out: list[Problem] = []
    f = "accounts.yaml"
    seen_paths: dict[str, str] = {}
    for ex, accounts in af.accounts.items():
        mains = [n for n, a in accounts.items() if a.type == "main"]
        if len(mains) != 1:
            out.append(Problem(f, f"accounts.{ex}", f"needs exactly one main account, found {len(mains)}"))
        for name, acct in accounts.items():
            out += _check_account(f, ex, name, acct, accounts)
            stem = acct.api_key_vault_path
            if stem in seen_paths:
                out.append(
                    Problem(
                        f, f"accounts.{ex}.{name}.api_key_vault_path", f"'{stem}' is already used by {seen_paths[stem]}"
                    )
                )
            seen_paths[stem] = f"accounts.{ex}.{name}"
    all_names = {n for accts in af.accounts.values() for n in accts}
    routing = af.account_routing
    if routing.default not in all_names:
        out.append(
            Problem(
                f,
                "account_routing.default",
                f"'{routing.default}' is not a configured account (accounts: {_names(all_names)})",
            )
        )
    for strat, acct in routing.strategies.items():
        if acct not in all_names:
            out.append(
                Problem(
                    f,
                    f"account_routing.strategies.{strat}",
                    f"'{acct}' is not a configured account (accounts: {_names(all_names)})",
                )
            )
    out += _check_balance_levels(af)
    return out


def _check_balance_levels(af: AccountsFile) -> list[Problem]:
    """A sub-account's working level (rebalance tops up to it) must not be above its cap (it sweeps above)."""
    rules = af.account_routing.balance_rules
    out = []
    for ex, accounts in af.accounts.items():
        for name, acct in accounts.items():
            if acct.type == "main":
                continue
            cap = acct.max_balance_usdt if acct.max_balance_usdt is not None else rules.max_sub_balance
            working = acct.working_balance_usdt if acct.working_balance_usdt is not None else rules.sub_working_balance
            if working > cap:
                key = "working_balance_usdt" if acct.working_balance_usdt is not None else None
                where = f"accounts.{ex}.{name}.{key}" if key else "account_routing.balance_rules.sub_working_balance"
                out.append(
                    Problem(
                        "accounts.yaml",
                        where,
                        f"working level {working} of {ex}/{name} is above its cap {cap} (rebalance would sweep it)",
                    )
                )
    return out


def check_exchanges(af: AccountsFile, xf: ExchangesFile) -> list[Problem]:
    out = []
    for ex in af.accounts:
        if ex not in xf.exchanges:
            out.append(Problem("exchanges.yaml", f"exchanges.{ex}", f"missing: accounts.yaml has accounts on '{ex}'"))
    for ex, stanza in xf.exchanges.items():
        accounts = af.accounts.get(ex, {})
        for acct in stanza.rate_limits.accounts:
            if acct not in accounts:
                out.append(
                    Problem(
                        "exchanges.yaml",
                        f"exchanges.{ex}.rate_limits.accounts.{acct}",
                        f"'{acct}' is not an account of {ex} (accounts: {_names(accounts)})",
                    )
                )
        for acct_name, acct in accounts.items():
            for market in acct.markets():
                if market not in stanza.markets:
                    out.append(
                        Problem(
                            "accounts.yaml",
                            f"accounts.{ex}.{acct_name}",
                            f"trades {market} but exchanges.yaml has no {ex}.markets.{market}",
                        )
                    )
    return out


def check_risk(af: AccountsFile, rf: RiskConfig) -> list[Problem]:
    out = []
    for ex, accounts in rf.accounts.items():
        if ex not in af.accounts:
            out.append(Problem("risk.yaml", f"accounts.{ex}", f"'{ex}' has no accounts in accounts.yaml"))
            continue
        for acct in accounts:
            if acct not in af.accounts[ex]:
                out.append(
                    Problem(
                        "risk.yaml",
                        f"accounts.{ex}.{acct}",
                        f"'{acct}' is not an account of {ex} (accounts: {_names(af.accounts[ex])})",
                    )
                )
    breaker = rf.circuit_breaker
    for ex, accounts in (breaker.overrides if breaker else {}).items():
        for acct in accounts:
            if acct not in af.accounts.get(ex, {}):
                known = (
                    f"accounts: {_names(af.accounts[ex])}"
                    if ex in af.accounts
                    else f"no exchange {ex} in accounts.yaml"
                )
                out.append(
                    Problem(
                        "risk.yaml",
                        f"circuit_breaker.overrides.{ex}.{acct}",
                        f"'{acct}' is not an account of {ex} ({known})",
                    )
                )
    for ex, accounts in af.accounts.items():
        for name, acct in accounts.items():
            if acct.max_leverage is not None and rf.limits_for(ex, name).max_leverage > acct.max_leverage:
                out.append(
                    Problem(
                        "risk.yaml",
                        f"accounts.{ex}.{name}.max_leverage",
                        f"{rf.limits_for(ex, name).max_leverage} exceeds the account's "
                        f"max_leverage {acct.max_leverage} in accounts.yaml",
                    )
                )
    return out


def check_strategies(af: AccountsFile, xf: ExchangesFile, sf: StrategiesFile) -> list[Problem]:
    out = []
    routing = af.account_routing
    for strat in routing.strategies:
        if strat not in sf.strategies:
            out.append(
                Problem(
                    "accounts.yaml",
                    f"account_routing.strategies.{strat}",
                    f"'{strat}' is not defined in strategies.yaml (strategies: {_names(sf.strategies)})",
                )
            )
    for ex, accounts in af.accounts.items():
        for name, acct in accounts.items():
            if acct.strategy is not None and acct.strategy not in sf.strategies:
                out.append(
                    Problem(
                        "accounts.yaml",
                        f"accounts.{ex}.{name}.strategy",
                        f"'{acct.strategy}' is not defined in strategies.yaml",
                    )
                )
    for strat, cfg in sf.strategies.items():
        key = f"strategies.{strat}"
        if cfg.exchange not in xf.exchanges:
            out.append(
                Problem(
                    "strategies.yaml",
                    f"{key}.exchange",
                    f"'{cfg.exchange}' is not in exchanges.yaml (exchanges: {_names(xf.exchanges)})",
                )
            )
            continue
        acct_name = routing.strategies.get(strat, routing.default)
        legs = cfg.bound_legs(acct_name, routing.default)
        for n, (exchange, name, market, _symbol) in enumerate(legs):
            where = f"{key}.legs[{n}]" if cfg.legs else f"{key}.exchange"
            if exchange not in xf.exchanges:
                out.append(
                    Problem(
                        "strategies.yaml",
                        f"{key}.legs[{n}].exchange",
                        f"'{exchange}' is not in exchanges.yaml (exchanges: {_names(xf.exchanges)})",
                    )
                )
                continue
            acct = af.accounts.get(exchange, {}).get(name)
            if acct is None:
                routed = "bound" if cfg.legs else "routed"
                out.append(
                    Problem(
                        "strategies.yaml", where, f"{routed} to account '{name}', which is not an account of {exchange}"
                    )
                )
            elif market not in acct.markets():
                field = f"{key}.legs[{n}].market" if cfg.legs else f"{key}.market"
                out.append(Problem("strategies.yaml", field, f"{market} is not enabled on its account '{name}'"))
            if not cfg.legs:
                break  # one account and market for every symbol: checked once
    return out


def check_stream(sf: StreamFile, xf: ExchangesFile, cores: set[int] | None = None) -> list[Problem]:
    """Cores as `kernels.affinity` will pin them (`core_problem`), and ports that do not clash.

    ``cores``, when given, stands for both this machine's cores and the allowed set (for tests)."""
    out = []
    count = None if cores is None else max(cores, default=-1) + 1
    for name in ("cpu_cores", "kernel_cores"):
        problem = core_problem(getattr(sf.daemon, name), count=count, allowed=cores)
        if problem:
            out.append(Problem("stream.yaml", f"daemon.{name}", problem))
    ports = {
        "daemon.health_port": sf.daemon.health_port,
        "daemon.metrics_port": sf.daemon.metrics_port,
        "services.nats.port": sf.services.nats.port,
        "services.nats.monitor_port": sf.services.nats.monitor_port,
        "services.openbao.port": sf.services.openbao.port,
        "services.openbao.cluster_port": sf.services.openbao.cluster_port,
        "services.prefect.port": sf.services.prefect.port,
        "exchanges.yaml local_exchange.port": xf.local_exchange.port,
    }
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            out.append(Problem("stream.yaml", key, f"port {port} is also used by {seen[port]}"))
        seen.setdefault(port, key)
    return out


def cross_check(
    af: AccountsFile | None,
    xf: ExchangesFile | None,
    rf: RiskConfig | None,
    sf: StrategiesFile | None,
    stf: StreamFile | None,
) -> list[Problem]:
    """Every cross-field and cross-file problem among the files that parsed (None: file had errors)."""
    out: list[Problem] = []
    if af is not None:
        out += check_accounts(af)
        if xf is not None:
            out += check_exchanges(af, xf)
        if rf is not None:
            out += check_risk(af, rf)
        if xf is not None and sf is not None:
            out += check_strategies(af, xf, sf)
    if stf is not None and xf is not None:
        out += check_stream(stf, xf)
    return out
