"""The rebalance plan: the transfers that bring every account of one exchange inside its ``balance_rules``.

A pure function over integer amounts (units of 1e-8 of the asset, exact), no I/O: ``plan_rebalance`` takes
the main account's balance and minimum and, per sub-account, its balance, cap and working level, and returns
the transfers and what could not be met. The rules, in order of priority:

1. every sub-account ends at or under its cap (``max_balance_usdt``, else ``balance_rules.max_sub_balance``):
   always possible, the main account takes any amount;
2. the main account ends at or above ``balance_rules.min_main_balance``;
3. every sub-account below its working level (``working_balance_usdt``, else
   ``balance_rules.sub_working_balance``) is topped up to it.

Nothing is ever taken from a sub-account below its working level, and a sub is never pushed under it.

Fewest transfers: a sub over its cap and a sub under its working level whose amounts fit each other (what the
one must shed fits under the other's cap, what the other needs the first can spare) settle with one direct
transfer (sub -> sub, which Binance's universal transfer allows without fees) instead of two through the
main account; the rest goes to or from the main account, one transfer per account. When the main account
is short, the senders already sweeping to it send more (no extra transfer), and only then are further
sub-accounts drawn on, the largest spare first (the fewest that cover the shortfall). Each account that
breaks a rule needs at least one transfer, and no transfer serves two of them except a direct pair, so the
count is at most one per such account (pairs: one for two) plus the draws the shortfall needs. When money is
short, top-ups wait before the main minimum (the smallest needs are funded first, so the most sub-accounts
reach their level) and what stays unmet is listed in ``Plan.unmet``.

A plan applied leaves nothing to do: planning again over the balances it produces gives no transfers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

UNIT = Decimal("0.00000001")  # amounts are integer units of 1e-8 of the asset
SCALE = 10**8


def to_units(value: str | Decimal, what: str = "amount") -> int:
    """A decimal amount as integer units of 1e-8; ``ValueError`` naming ``what`` if it has finer digits."""
    d = Decimal(value)
    units = d * SCALE
    if units != units.to_integral_value():
        raise ValueError(f"{what} {value} has more than 8 decimals")
    return int(units)


def from_units(units: int) -> str:
    """Integer units of 1e-8 as a plain decimal string (``150.5``, ``0.00000001``, ``0``)."""
    d = (Decimal(units) / SCALE).quantize(UNIT)
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class SubAccount:
    """One sub-account's balance, cap and working level (``working <= cap``), in units."""

    name: str
    balance: int
    cap: int
    working: int = 0

    def __post_init__(self) -> None:
        if self.balance < 0 or self.cap < 0 or self.working < 0:
            raise ValueError(f"sub-account {self.name}: balance, cap and working level must be >= 0")
        if self.working > self.cap:
            raise ValueError(
                f"sub-account {self.name}: working level {from_units(self.working)} is above its cap "
                f"{from_units(self.cap)}"
            )


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    source: str
    dest: str
    amount: int  # units, > 0
    reason: str


@dataclass(frozen=True)
class Plan:
    """The transfers, the balances before and after them, and what could not be met."""

    transfers: tuple[PlannedTransfer, ...]
    before: Mapping[str, int]
    after: Mapping[str, int]
    unmet: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.transfers


@dataclass
class _Flow:
    """A transfer being built (amounts may still grow while the main account's shortfall is covered)."""

    source: str
    dest: str
    amount: int
    reason: str
    reasons: list[str] = field(default_factory=list)


def apply(balances: Mapping[str, int], transfers: Sequence[PlannedTransfer]) -> dict[str, int]:
    """The balances after ``transfers`` (each must be covered by its source's balance at that point)."""
    out = dict(balances)
    for t in transfers:
        if t.amount <= 0 or out[t.source] < t.amount:
            raise ValueError(f"transfer {t} is not covered by {t.source}'s {out[t.source]}")
        out[t.source] -= t.amount
        out[t.dest] += t.amount
    return out


def _pairs(senders: dict[str, int], receivers: dict[str, int], subs: dict[str, SubAccount]) -> list[_Flow]:
    """Direct sub -> sub transfers: the largest need first, each with the largest sender that fits it."""
    flows: list[_Flow] = []
    free = sorted(senders, key=lambda n: (-senders[n], n))
    for r in sorted(receivers, key=lambda n: (-receivers[n], n)):
        need, room = receivers[r], subs[r].cap - subs[r].balance
        for s in free:
            spare = subs[s].balance - subs[s].working
            if senders[s] <= room and need <= spare:
                amount = max(senders[s], need)
                flows.append(_Flow(s, r, amount, f"{s} over its cap, {r} under its working level"))
                free.remove(s)
                break
    return flows


def plan_rebalance(main: str, main_balance: int, min_main: int, subs: Sequence[SubAccount]) -> Plan:
    """The fewest transfers that bring ``main`` and ``subs`` inside the rules (see the module docstring)."""
    if main_balance < 0 or min_main < 0:
        raise ValueError(f"main account {main}: balance and minimum must be >= 0")
    by_name = {s.name: s for s in subs}
    if len(by_name) != len(subs) or main in by_name:
        raise ValueError("account names must be unique (and the main account is not a sub-account)")
    before = {main: main_balance, **{s.name: s.balance for s in subs}}
    excess = {s.name: s.balance - s.cap for s in subs if s.balance > s.cap}
    need = {s.name: s.working - s.balance for s in subs if s.balance < s.working}

    flows = _pairs(excess, need, by_name)
    paired = {f.source for f in flows} | {f.dest for f in flows}
    sweeps = [
        _Flow(n, main, excess[n], f"{n} over its cap") for n in sorted(excess, key=lambda n: (-excess[n], n))
        if n not in paired
    ]  # fmt: skip
    # money the main account could have without touching anyone below their level: its own surplus, the
    # sweeps, the sweepers' extra spare, and every other sub-account's balance above its working level
    avail = main_balance - min_main + sum(f.amount for f in sweeps)
    extra = {f.source: by_name[f.source].balance - by_name[f.source].working - f.amount for f in sweeps}
    after_pairs = apply(before, [PlannedTransfer(f.source, f.dest, f.amount, f.reason) for f in flows])
    sweepers = {f.source for f in sweeps}
    spare = {
        n: after_pairs[n] - by_name[n].working
        for n in by_name
        if n not in sweepers and after_pairs[n] > by_name[n].working
    }
    pool = avail + sum(extra.values()) + sum(spare.values())

    unmet: list[str] = []
    topups: list[_Flow] = []
    for n in sorted((n for n in need if n not in paired), key=lambda n: (need[n], n)):
        if pool - need[n] >= 0:
            pool -= need[n]
            avail -= need[n]
            topups.append(_Flow(main, n, need[n], f"{n} under its working level"))
        else:
            unmet.append(f"{n} stays {from_units(need[n])} under its working level (no money to spare)")

    draws: list[_Flow] = []
    if avail < 0:  # the main account is short: the sweepers send more, then others are drawn on
        for f in sweeps:
            take = min(extra[f.source], -avail)
            if take > 0:
                f.amount += take
                avail += take
                f.reason += " (and the main account is short)"
        for n in sorted(spare, key=lambda n: (-spare[n], n)):
            if avail >= 0:
                break
            take = min(spare[n], -avail)
            draws.append(_Flow(n, main, take, "the main account is under its minimum"))
            avail += take
    if avail < 0:
        unmet.insert(0, f"{main} stays {from_units(-avail)} under its minimum (no sub-account has money to spare)")

    # sweeps and draws first, so the main account holds what its top-ups send
    ordered = [*flows, *sweeps, *draws, *topups]
    transfers = tuple(PlannedTransfer(f.source, f.dest, f.amount, f.reason) for f in ordered if f.amount > 0)
    return Plan(transfers, before, apply(before, transfers), tuple(unmet))


def check_after(main: str, min_main: int, subs: Sequence[SubAccount], after: Mapping[str, int]) -> list[str]:
    """Every rule the balances ``after`` break (empty when all hold)."""
    out = []
    if after[main] < min_main:
        out.append(f"{main} has {from_units(after[main])}, under its minimum {from_units(min_main)}")
    for s in subs:
        if after[s.name] > s.cap:
            out.append(f"{s.name} has {from_units(after[s.name])}, over its cap {from_units(s.cap)}")
        if after[s.name] < s.working:
            out.append(f"{s.name} has {from_units(after[s.name])}, under its working level {from_units(s.working)}")
    return out
