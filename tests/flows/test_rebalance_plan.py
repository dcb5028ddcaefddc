"""The rebalance planner: hypothesis property tests (rules hold whenever money suffices, money is conserved,
nobody under their level is drawn on, a plan applied leaves nothing to do, the count stays at its bound) and
hand-checked cases for the fewest transfers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.rebalance_plan import (
    PlannedTransfer,
    SubAccount,
    apply,
    check_after,
    from_units,
    plan_rebalance,
    to_units,
)

U = 10**8  # one whole USDT in units


@st.composite
def states(draw):
    n = draw(st.integers(0, 7))
    subs = []
    for i in range(n):
        cap = draw(st.integers(0, 100)) * U // 4
        working = draw(st.integers(0, cap)) if draw(st.booleans()) else 0
        balance = draw(st.integers(0, 150)) * U // 4 + draw(st.integers(0, 3))
        subs.append(SubAccount(f"sub{i}", balance, cap, working))
    main_balance = draw(st.integers(0, 400)) * U // 4
    min_main = draw(st.integers(0, 300)) * U // 4
    return main_balance, min_main, subs


def _feasible(main_balance: int, min_main: int, subs: list[SubAccount]) -> bool:
    """Enough money for every rule: above-working money covers the main minimum and every shortfall."""
    spare = main_balance - min_main + sum(max(0, s.balance - s.working) for s in subs)
    return spare >= sum(max(0, s.working - s.balance) for s in subs)


@settings(max_examples=400, deadline=None)
@given(states())
def test_rules_hold_money_is_conserved_and_nobody_under_their_level_pays(state):
    main_balance, min_main, subs = state
    plan = plan_rebalance("main", main_balance, min_main, subs)
    after = apply(plan.before, plan.transfers)  # raises if a transfer is not covered at its turn
    assert after == dict(plan.after)
    assert sum(after.values()) == sum(plan.before.values())
    assert all(t.amount > 0 and t.source != t.dest for t in plan.transfers)
    by_name = {s.name: s for s in subs}
    for s in subs:
        assert after[s.name] <= s.cap  # always possible: the main account takes any amount
        assert after[s.name] >= min(s.balance, s.working)  # never pushed (further) under its level
    for t in plan.transfers:
        if t.source != "main":
            assert after[t.source] >= by_name[t.source].working
    problems = check_after("main", min_main, subs, after)
    if _feasible(main_balance, min_main, subs):
        assert problems == [] and plan.unmet == ()
    else:
        assert plan.unmet, "an infeasible state must say what stays unmet"


@settings(max_examples=300, deadline=None)
@given(states())
def test_a_plan_applied_leaves_nothing_to_do(state):
    main_balance, min_main, subs = state
    plan = plan_rebalance("main", main_balance, min_main, subs)
    again = [SubAccount(s.name, plan.after[s.name], s.cap, s.working) for s in subs]
    second = plan_rebalance("main", plan.after["main"], min_main, again)
    assert second.transfers == ()


@settings(max_examples=300, deadline=None)
@given(states())
def test_the_count_stays_between_its_bounds(state):
    main_balance, min_main, subs = state
    plan = plan_rebalance("main", main_balance, min_main, subs)
    over = {s.name for s in subs if s.balance > s.cap}
    under = {s.name for s in subs if s.balance < s.working}
    funded = {t.dest for t in plan.transfers if t.dest in under}
    receivers = funded | ({"main"} if main_balance < min_main and plan.after["main"] > main_balance else set())
    # a transfer has one source and one destination: at least one per account that must send or receive
    assert len(plan.transfers) >= max(len(over), len(receivers))
    draws = [t for t in plan.transfers if t.source not in over and t.source != "main"]
    assert len(plan.transfers) <= len(over) + len(funded) + len(draws)


def test_inside_the_rules_nothing_moves():
    subs = [SubAccount("a", 50 * U, 100 * U, 20 * U), SubAccount("b", 0, 10 * U)]
    assert plan_rebalance("main", 1000 * U, 500 * U, subs).transfers == ()


def test_over_cap_and_under_working_settle_in_one_direct_transfer():
    subs = [SubAccount("arb", 130 * U, 100 * U, 50 * U), SubAccount("mm", 10 * U, 100 * U, 40 * U)]
    plan = plan_rebalance("main", 1000 * U, 500 * U, subs)
    assert plan.transfers == (PlannedTransfer("arb", "mm", 30 * U, plan.transfers[0].reason),)
    assert plan.after == {"main": 1000 * U, "arb": 100 * U, "mm": 40 * U}


def test_sweeps_and_top_ups_go_through_main_when_they_do_not_fit_each_other():
    # arb must shed 80, mm can take only 60 under its cap: two transfers through the main account
    subs = [SubAccount("arb", 180 * U, 100 * U, 0), SubAccount("mm", 40 * U, 100 * U, 50 * U)]
    plan = plan_rebalance("main", 1000 * U, 500 * U, subs)
    assert [(t.source, t.dest, t.amount) for t in plan.transfers] == [("arb", "main", 80 * U), ("main", "mm", 10 * U)]


def test_a_short_main_account_takes_more_from_its_sweepers_first_then_the_largest_spare():
    subs = [
        SubAccount("arb", 120 * U, 100 * U, 10 * U),  # sweeps 20, could give 90 more
        SubAccount("mm", 80 * U, 100 * U, 70 * U),  # spare 10
        SubAccount("trend", 90 * U, 100 * U, 20 * U),  # spare 70
    ]
    plan = plan_rebalance("main", 300 * U, 490 * U, subs)  # 190 short
    moves = [(t.source, t.dest, t.amount) for t in plan.transfers]
    assert moves == [("arb", "main", 110 * U), ("trend", "main", 70 * U), ("mm", "main", 10 * U)]
    assert plan.unmet == () and plan.after["main"] == 490 * U


def test_short_money_funds_the_main_minimum_first_then_the_smallest_needs():
    subs = [SubAccount("a", 0, 100 * U, 30 * U), SubAccount("b", 0, 100 * U, 10 * U)]
    plan = plan_rebalance("main", 520 * U, 500 * U, subs)
    assert [(t.source, t.dest, t.amount) for t in plan.transfers] == [("main", "b", 10 * U)]
    assert plan.unmet == ("a stays 30 under its working level (no money to spare)",)


def test_units_are_exact_and_bad_input_names_itself():
    assert to_units("150.5") == 15_050_000_000 and from_units(15_050_000_000) == "150.5"
    assert from_units(1) == "0.00000001" and from_units(0) == "0"
    with pytest.raises(ValueError, match="more than 8 decimals"):
        to_units("0.000000001", "balance of x")
    with pytest.raises(ValueError, match="working level 20 is above its cap 10"):
        SubAccount("x", 0, 10 * U, 20 * U)
    with pytest.raises(ValueError, match="unique"):
        plan_rebalance("main", 0, 0, [SubAccount("a", 0, 0), SubAccount("a", 0, 0)])
