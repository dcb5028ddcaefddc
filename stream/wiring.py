"""What one daemon trades, from ``configs/`` (or ``--accounts``): its accounts, markets, symbols and strategies.

``plan_from_config(cfg, accounts)`` decides, before any I/O:

* the accounts it owns: every account of ``accounts.yaml``, or those named by ``--accounts``
  (``binance/sub_mm``, or ``binance`` for all of an exchange's); an unknown name is an error naming the
  known ones;
* for each owned account, the markets it has enabled;
* the strategies it hosts: each of ``strategies.yaml`` whose account (``account_routing.strategies``, else
  ``account_routing.default``) is owned, on that strategy's exchange and market;
* the symbols of each (exchange, market): those of its hosted strategies plus ``daemon.markets``;
* the kernel state's size and the risk limits (``kernels.risk_limits``), in account order.

``KernelWiring`` then holds the kernel state, the account index and the instrument table shared by the
gateway, the positions and the strategies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernels.risk_limits import risk_limits
from kernels.state import AccountIndex, KernelState
from oms.config import Config
from oms.model import AccountId, Market
from stream.instruments import InstrumentTable


class WiringError(ValueError):
    """The configuration (or ``--accounts``) does not describe something this daemon can trade."""


@dataclass(frozen=True)
class AccountPlan:
    exchange: str
    name: str
    markets: tuple[Market, ...]

    @property
    def id(self) -> AccountId:
        return AccountId(self.exchange, self.name)

    def __str__(self) -> str:
        return f"{self.exchange}/{self.name}"


@dataclass(frozen=True)
class StrategyPlan:
    name: str
    kind: str
    account: AccountId
    market: Market
    symbols: tuple[str, ...]
    params: dict
    # (account, market, symbol) per instrument in binding order; for a one-account strategy each of its
    # symbols on its account (strategies.yaml `legs` bind several accounts, markets or venues)
    legs: tuple[tuple[AccountId, Market, str], ...] = ()
    bar_seconds: int = 0  # > 0: fed bars of this many seconds (stream.bars) instead of each trade


@dataclass(frozen=True)
class DaemonPlan:
    accounts: tuple[AccountPlan, ...]
    strategies: tuple[StrategyPlan, ...]
    symbols: dict[tuple[str, Market], tuple[str, ...]] = field(default_factory=dict)
    unhosted: tuple[str, ...] = ()  # why a strategy touching these accounts is not hosted here

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(a.exchange, a.name) for a in self.accounts]

    def account(self, account: AccountId | str) -> AccountPlan | None:
        key = str(account)
        return next((a for a in self.accounts if str(a) == key), None)


def _select(cfg: Config, wanted: list[str] | None) -> list[tuple[str, str]]:
    every = [(ex, name) for ex, names in cfg.accounts.items() for name in names]
    if not wanted:
        return every
    out: list[tuple[str, str]] = []
    for item in wanted:
        exchange, _, name = item.partition("/")
        if exchange not in cfg.accounts:
            raise WiringError(
                f"--accounts {item}: exchange {exchange!r} is not in accounts.yaml "
                f"(it has {', '.join(sorted(cfg.accounts))})"
            )
        names = [name] if name else list(cfg.accounts[exchange])
        for n in names:
            if n not in cfg.accounts[exchange]:
                known = ", ".join(sorted(cfg.accounts[exchange]))
                raise WiringError(
                    f"--accounts {item}: {exchange} has no account {n!r} in accounts.yaml (it has {known})"
                )
            if (exchange, n) not in out:
                out.append((exchange, n))
    return out


def plan_from_config(cfg: Config, accounts: list[str] | None = None) -> DaemonPlan:
    pairs = _select(cfg, accounts)
    plans = tuple(AccountPlan(ex, n, tuple(Market(m) for m in cfg.account(ex, n).markets())) for ex, n in pairs)
    owned = {(p.exchange, p.name): p for p in plans}
    symbols: dict[tuple[str, Market], list[str]] = {}
    strategies: list[StrategyPlan] = []
    unhosted: list[str] = []
    for name, sc in cfg.strategies.items():
        account = cfg.account_for_strategy(name)
        legs = cfg.strategy_legs(name)
        mine = [(ex, acct) in owned for ex, acct, _, _ in legs]
        if not any(mine):
            continue  # another daemon's (or no daemon's) strategy
        if not all(mine):
            missing = sorted({f"{ex}/{acct}" for (ex, acct, _, _), m in zip(legs, mine, strict=True) if not m})
            unhosted.append(
                f"strategies.yaml strategies.{name} is not hosted: its legs also trade {', '.join(missing)}, which "
                "this daemon does not own (a strategy runs in the daemon that owns every account it trades)"
            )
            continue
        for n, (ex, acct, mkt, _) in enumerate(legs):
            if Market(mkt) not in owned[ex, acct].markets:
                where = f"strategies.{name}.legs[{n}]" if sc.legs else f"strategies.{name}"
                raise WiringError(
                    f"strategies.yaml {where}: trades {mkt} on {ex}/{acct}, which has {mkt} disabled in accounts.yaml"
                )
        strategies.append(
            StrategyPlan(
                name,
                sc.kind or name,
                AccountId(legs[0][0], legs[0][1]) if sc.legs else AccountId(sc.exchange, account),
                Market(sc.market),
                tuple(s for *_, s in legs),
                dict(sc.params),
                tuple((AccountId(ex, acct), Market(mkt), sym) for ex, acct, mkt, sym in legs),
                sc.bar_seconds or 0,
            )
        )
        for ex, _, mkt, sym in legs:
            symbols.setdefault((ex, Market(mkt)), []).append(sym)
    for exchange, markets in cfg.stream.daemon.markets.items():
        for market, syms in markets.items():
            if any(p.exchange == exchange and Market(market) in p.markets for p in plans):
                symbols.setdefault((exchange, Market(market)), []).extend(syms)
    return DaemonPlan(
        plans, tuple(strategies), {k: tuple(dict.fromkeys(v)) for k, v in symbols.items()}, tuple(unhosted)
    )


class KernelWiring:
    """The kernel state of one daemon: accounts numbered in plan order, risk limits applied."""

    def __init__(self, cfg: Config, plan: DaemonPlan, *, spare_instruments: int = 8):
        n_symbols = sum(len(v) for v in plan.symbols.values())
        self.state = KernelState(max(1, len(plan.accounts)), max(1, n_symbols + spare_instruments))
        self.accounts = AccountIndex(plan.pairs)
        for a, (exchange, _) in enumerate(plan.pairs):
            self.state.set_exchange(a, self.accounts.exchange_number[exchange])
        risk_limits(cfg.risk, plan.pairs).apply(self.state)
        self.instruments = InstrumentTable(self.state)
