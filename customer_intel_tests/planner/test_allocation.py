"""The allocator: within the budget, never a negative-profit contact, and equal to brute force on small cases."""

import itertools

import numpy as np
import pytest

from customer_intel.planner.allocation import allocate, greedy_single, parse_options


def brute_force(profit, costs, budget, capacities=None):
    """The best total over every assignment (each customer: no contact or one option)."""
    n, m = profit.shape
    best = 0.0
    for choice in itertools.product(range(-1, m), repeat=n):
        chosen = np.array(choice)
        rows = np.flatnonzero(chosen >= 0)
        if costs[chosen[rows]].sum() > budget + 1e-9:
            continue
        if capacities is not None and any(cap is not None and (chosen == j).sum() > cap for j, cap in enumerate(capacities)):
            continue
        best = max(best, profit[rows, chosen[rows]].sum())
    return best


@pytest.mark.parametrize("seed", range(12))
def test_greedy_by_profit_is_optimal_for_one_option_with_unit_costs(seed):
    """Every contact costs the same, so the budget buys k contacts and the k best positive profits are the optimum:
    exchanging a chosen customer for a better unchosen one never lowers the sum. Checked against every subset."""
    rng = np.random.default_rng(seed)
    profit = rng.normal(0.5, 2.0, size=(9, 1))
    cost = float(rng.uniform(0.5, 2.0))
    budget = float(rng.uniform(0, 9 * cost))
    plan = allocate(profit, [cost], budget)
    assert plan.proven_optimal and plan.spend <= budget + 1e-9
    assert plan.profit == pytest.approx(brute_force(profit, np.array([cost]), budget))
    assert (profit[plan.contacted, 0] > 0).all()


@pytest.mark.parametrize("seed", range(8))
def test_the_milp_equals_brute_force_with_several_offers_costs_and_capacities(seed):
    rng = np.random.default_rng(100 + seed)
    profit = rng.normal(0.3, 1.5, size=(6, 3))
    costs = rng.uniform(0.5, 3.0, size=3)
    capacities = [None, int(rng.integers(1, 3)), None]
    budget = float(rng.uniform(1.0, 8.0))
    plan = allocate(profit, costs, budget, capacities)
    assert plan.spend <= budget + 1e-9
    assert all(cap is None or (plan.chosen == j).sum() <= cap for j, cap in enumerate(capacities))
    rows = np.flatnonzero(plan.contacted)
    assert (profit[rows, plan.chosen[rows]] > 0).all()
    assert plan.profit == pytest.approx(brute_force(profit, costs, budget, capacities), abs=1e-6)


def test_negative_profit_customers_are_dropped_even_with_budget_left():
    profit = np.array([[3.0], [-0.1], [0.0], [1.0], [-5.0]])
    plan = allocate(profit, [1.0], budget=100.0)
    assert plan.contacted.tolist() == [True, False, False, True, False]
    assert plan.spend == 2.0 and plan.profit == 4.0
    assert not allocate(-np.abs(profit), [1.0], 100.0).contacted.any()


def test_the_budget_is_never_exceeded_at_scale():
    rng = np.random.default_rng(1)
    profit = rng.normal(0.2, 1.0, size=(5000, 2))
    plan = allocate(profit, [1.0, 2.5], budget=1234.5, capacities=[400, None])
    assert plan.spend <= 1234.5 + 1e-9 and (plan.chosen == 0).sum() <= 400
    single = greedy_single(profit[:, 0], 1.0, 300.0)
    assert (single >= 0).sum() == 300


def test_options_parse_and_refuse_unknown_offers():
    options = parse_options(["*:email:1.0", "gold:sms:0.2:500"], ["gold", "silver"])
    assert [(o.offer, o.channel, o.cost, o.capacity) for o in options] == [
        ("gold", "email", 1.0, None), ("silver", "email", 1.0, None), ("gold", "sms", 0.2, 500)]
    with pytest.raises(ValueError, match="offer 'bronze' has no uplift model"):
        parse_options(["bronze:email:1"], ["gold"])
    with pytest.raises(ValueError, match="expected offer:channel:cost"):
        parse_options(["gold-email"], ["gold"])
