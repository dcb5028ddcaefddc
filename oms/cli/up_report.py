"""The short status `oms up` / `oms run` print once everything is up: services, accounts with their strategies,
and the addresses a person opens next. Tables fit the terminal: where one would not, it becomes one line per
row with every value whole (``fit``)."""

from __future__ import annotations

import json

from oms.cli.tables import fit
from oms.config import Config
from oms.services import Services
from oms.services.base import http_get
from oms.services.manager import UpResult


def strategies_by_account(cfg: Config) -> dict[str, list[str]]:
    """account -> the strategies of strategies.yaml that trade it (a strategy with legs on several)."""
    out: dict[str, list[str]] = {}
    for name in cfg.strategies:
        for exchange, account, _, _ in cfg.strategy_legs(name):
            names = out.setdefault(f"{exchange}/{account}", [])
            if name not in names:
                names.append(name)
    return out


def daemon_accounts(services: Services) -> dict[str, dict]:
    """The daemon's /health accounts ({} when it is not running or does not answer)."""
    code, body = http_get(services["stream"].address)
    if code not in (200, 503):
        return {}
    try:
        return dict(json.loads(body).get("accounts", {}))
    except (ValueError, AttributeError):
        return {}


def report(cfg: Config, services: Services, results: list[UpResult]) -> None:
    statuses = {st.name: st for st in services.status()}
    rows = []
    for r in results:
        st = statuses.get(r.name)
        rows.append((r.name, r.outcome, r.address, st.detail if st else "-"))
    fit(
        "services",
        ("service", "state", "address", "health"),
        rows,
        line=lambda row: f"{row[0]:8} {row[1]:16} {row[2]}  health: {row[3]}",
    )

    started = {r.name for r in results}
    by_account = strategies_by_account(cfg)
    live = daemon_accounts(services) if "stream" in started else {}
    rows = []
    for exchange, names in cfg.accounts.items():
        for name in names:
            key = f"{exchange}/{name}"
            acct = cfg.account(exchange, name)
            doc = live.get(key)
            if doc is None:
                state = "not traded (no daemon)" if "stream" not in started else "not started"
            elif doc.get("trading"):
                state = str(doc.get("trading_state", "active"))
            else:
                state = f"not trading: {doc.get('reason') or 'starting'}"
            rows.append((key, acct.type, "+".join(acct.markets()), ", ".join(by_account.get(key, [])) or "-", state))
    fit("accounts", ("account", "type", "markets", "strategies", "state"), rows)

    links = []
    if "prefect" in started:
        links.append(("Prefect UI", services["prefect"].address))
    if "stream" in started:
        health = services["stream"].address
        links.append(("daemon health", health))
        links.append(("daemon metrics", f"http://{services.settings.host}:{cfg.stream.daemon.metrics_port}/metrics"))
    if "localex" in started:
        links.append(("local exchange", services["localex"].address))
    fit("open next", ("what", "where"), links)
