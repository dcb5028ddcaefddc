"""`oms config check [DIR]`: validate configs and summarise every account, or list every problem."""

from __future__ import annotations

import argparse

from oms.cli.common import write
from oms.config import Config, ConfigError, load_config
from strategies.registry import configured


def summary_lines(cfg: Config) -> list[str]:
    """One line per account: type, markets, key path, routing and main risk limits."""
    routed: dict[str, list[str]] = {}
    for strat, acct in cfg.routing.strategies.items():
        routed.setdefault(acct, []).append(strat)
    lines = []
    for ex, accounts in cfg.accounts.items():
        budget_of = cfg.exchanges.exchanges[ex].budget
        for name, acct in accounts.items():
            limits = cfg.risk.limits_for(ex, name)
            markets = "+".join(acct.markets())
            budget = budget_of(name)
            parts = [
                f"{ex}/{name}: {acct.type}",
                f"markets {markets}",
                f"keys secret/{cfg.vault_path(ex, name, acct.markets()[0])}",
                f"strategies {','.join(routed.get(name, [])) or '-'}",
                f"max order {limits.max_order_notional_usdt} USDT",
                f"max leverage {limits.max_leverage}",
                f"weight {budget.spot_weight_per_minute}/{budget.futures_weight_per_minute} per min",
                f"state {limits.trading_state}",
            ]
            lines.append(", ".join(parts))
    return lines


def run_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.dir or args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            write(str(problem))
        write(f"{len(exc.problems)} problem(s) found")
        return 1
    _, problems = configured(cfg)  # strategy parameters, checked against each built-in's model
    if problems:
        for problem in problems:
            write(str(problem))
        write(f"{len(problems)} problem(s) found")
        return 1
    write(f"ok: {cfg.dir}")
    for line in summary_lines(cfg):
        write(f"  {line}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "config",
        help="check the configuration files",
        description="Validate configs/*.yaml: types, unknown keys, references between files.",
    )
    csub = parser.add_subparsers(dest="config_cmd", required=True, metavar="COMMAND")
    check = csub.add_parser(
        "check",
        help="validate and summarise each account, or list every problem",
        description="Print 'ok' and one line per account, or every problem as 'file: key.path: reason' and exit 1.",
    )
    check.add_argument("dir", nargs="?", default=None, help="configuration folder (default: configs/)")
    check.add_argument("--config", default=None, help=argparse.SUPPRESS)
    check.set_defaults(func=run_check)
