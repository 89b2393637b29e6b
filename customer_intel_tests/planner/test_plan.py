"""The plan from scored customers: the documented columns, ranks, buckets, messages, and the naive policies."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.planner.plan import TARGET_COLUMNS, PlanConfig, PlanInputError, choose_template, load_templates, plan_campaign


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "as_of": pd.Timestamp("2026-06-30", tz="UTC"),
        "cltv": rng.gamma(2.0, 100.0, n),
        "churn_probability": rng.random(n),
        "segment_name": rng.choice(["High-limit digital", "Low-spend callers", "Mid-limit branch users"], n),
        "top_category": rng.choice(["grocery", "travel"], n),
        "uplift": 0.0,
        "uplift_best_offer": "CAMP-A",
        "uplift_for_camp_a": rng.normal(0.03, 0.04, n),
        "uplift_response_treated": rng.random(n) * 0.3,
        "uplift_quadrant": rng.choice(["persuadable", "sure_thing", "lost_cause", "sleeping_dog"], n),
    })


def test_the_plan_targets_only_positive_profit_within_the_budget(scored):
    plan = plan_campaign(scored, PlanConfig(budget=50.0, margin=0.3))
    targets = plan.targets
    assert list(targets.columns) == list(TARGET_COLUMNS)
    assert len(targets) == 50 and targets["contact_cost"].sum() <= 50.0
    assert (targets["expected_incremental_profit"] > 0).all()
    expected = targets["uplift"] * targets["cltv"] * 0.3 - 1.0
    np.testing.assert_allclose(targets["expected_incremental_profit"], expected)
    assert targets["rank"].tolist() == list(range(1, 51)) and targets["expected_incremental_profit"].is_monotonic_decreasing
    assert targets["budget_bucket"].tolist() == [1] * 12 + [2] * 13 + [3] * 12 + [4] * 13  # ceil(4 x spent / budget)
    assert set(targets["campaign"]) == {"CAMP-A"} and set(targets["channel"]) == {"email"}
    digital = targets.loc[targets["segment_name"] == "High-limit digital"].iloc[0]
    assert digital["message_template_id"] == "high_digital" and "High-limit digital" in digital["message"] and "CAMP-A" in digital["message"]
    policies = plan.policies
    assert set(policies.index) == {"planner", "random", "by churn_risk", "by cltv", "by response probability"}
    assert (policies["spend"] <= 50.0 + 1e-9).all()
    assert (policies.loc["planner", "expected_incremental_profit"] >= policies["expected_incremental_profit"]).all()
    assert set(plan.segments["segment_name"]) == set(scored["segment_name"])
    assert plan.segments["expected_incremental_profit"].is_monotonic_decreasing


def test_the_default_budget_is_a_share_of_the_customers_and_nothing_unprofitable_is_sent(scored):
    plan = plan_campaign(scored.assign(uplift_for_camp_a=-0.01), PlanConfig())
    assert plan.budget == pytest.approx(0.3 * 400) and plan.targets.empty
    assert (plan.segments["recommended_offer"] == "none (no positive expected profit)").all()


def test_templates_and_errors_are_plain():
    templates = load_templates()
    assert choose_template("Low-spend callers", templates)["id"] == "callers"
    assert choose_template("Something else", templates)["id"] == "default"
    with pytest.raises(PlanInputError, match="no uplift_for_<offer> column"):
        plan_campaign(pd.DataFrame({"customer_id": ["a"]}), PlanConfig())
    with pytest.raises(PlanInputError, match="fixed_value"):
        plan_campaign(pd.DataFrame({"customer_id": ["a"], "uplift_for_x": [0.1]}), PlanConfig(value_source="fixed"))


def test_customers_without_a_uplift_or_value_are_not_contacted_and_cost_the_naive_policies(scored):
    holes = scored.copy()
    holes.loc[:99, "cltv"] = np.nan  # a quarter of the customers have no CLTV (no purchase yet)
    plan = plan_campaign(holes, PlanConfig(budget=400.0))
    assert not plan.targets["customer_id"].isin(holes.loc[:99, "customer_id"]).any()
    random = plan.policies.loc["random"]
    chosen_holes = random["targeted"]  # every customer is contacted at this budget: the 100 without a value cost 1 each
    assert chosen_holes == 400
    finite = holes["cltv"].notna()
    expected = (holes.loc[finite, "uplift_for_camp_a"] * holes.loc[finite, "cltv"] * 0.3 - 1.0).sum() - 100.0
    assert random["expected_incremental_profit"] == pytest.approx(expected)
    assert (plan.segments["recommended_offer"] == "CAMP-A").all()  # a missing value does not hide a segment's best offer


def test_offer_names_come_from_the_scorer_even_for_an_offer_that_is_nobodys_best(scored):
    two = scored.assign(uplift_for_miles_x2=scored["uplift_for_camp_a"] - 0.5, uplift_offers='["CAMP-A", "Miles x2"]')
    plan = plan_campaign(two, PlanConfig(options=["*:email:1.0", "miles_x2:sms:0.01"], budget=50.0))
    assert [o.offer for o in plan.options] == ["CAMP-A", "Miles x2", "Miles x2"]
    assert set(plan.targets["campaign"]) <= {"CAMP-A", "Miles x2"}
