"""Counterfactuals: verified against the model, only actionable changes within bounds, rows the feature builder could produce."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.churn.candidates import churn_candidates
from customer_intel.churn.counterfactual import Actionable, CounterfactualConfigError, apply_change, search
from customer_intel.churn.explain import phrase
from customer_intel.features import build_customer_features
from customer_intel.modeling import CandidateConfigError

ACTIONS = [Actionable.parse("purchases:increase:1:3")]


@pytest.fixture(scope="module")
def scorer(cdnow_split):
    fitted = next(c for c in churn_candidates(actionable=["purchases:increase:1:3"]) if c.name == "logistic").fit(cdnow_split.origin("refit"))
    return fitted.to_scorer()


def assert_consistent(rows: pd.DataFrame) -> None:
    """What every row of the feature builder satisfies."""
    assert np.allclose(rows["t_x"], rows["T"] - rows["recency"])
    assert (rows.loc[rows["frequency"] == 0, "t_x"] == 0).all()
    assert (rows["purchase_days_90d"] <= rows["frequency"] + 1).all()
    assert (rows.loc[rows["purchase_days_90d"] > 0, "recency"] < 90).all()
    assert (rows.loc[rows["recency"] >= 90, "purchase_days_90d"] == 0).all()


def test_every_counterfactual_is_verified_actionable_within_bounds_and_a_possible_customer(scorer, cdnow_split, cdnow_sample):
    rows = cdnow_split.parts["refit"]
    assert_consistent(rows)  # the invariants hold for the builder's own rows
    p = scorer.probability(rows)
    at_risk = rows.loc[p >= scorer.threshold]
    assert len(at_risk) > 100
    found = search(scorer.probability, at_risk, scorer.threshold, ACTIONS)
    ok = found["counterfactual_probability"].notna().to_numpy()
    assert ok.mean() > 0.5
    k = found["delta_purchases"].to_numpy()[ok]
    assert set(np.unique(k)) <= {1.0, 2.0, 3.0}
    changed = apply_change(at_risk.loc[ok], {"purchases": k})
    assert_consistent(changed)
    verified = scorer.probability(changed)
    np.testing.assert_allclose(verified, found["counterfactual_probability"].to_numpy()[ok])
    assert (verified < scorer.threshold).all()
    assert (changed["T"].to_numpy() == at_risk.loc[ok, "T"].to_numpy()).all()  # tenure never moves
    fewer = scorer.probability(apply_change(at_risk.loc[ok], {"purchases": k - 1}))  # the cheapest: one purchase fewer is not enough
    assert (fewer >= scorer.threshold - 1e-12).all()
    assert found.loc[ok, "counterfactual"].str.contains(" → risk ").all()
    assert found.loc[~ok, "counterfactual"].str.startswith("no change within the actionable bounds").all()


def test_the_purchases_event_is_what_the_feature_builder_sees_after_those_purchases(cdnow_sample):
    """One purchase today at the customer's usual spend per day: the builder on the log with that purchase added agrees."""
    day = pd.Timestamp("1998-06-30", tz="UTC")
    before = build_customer_features(cdnow_sample, None, day).frame.set_index("customer_id")
    some = before.sample(50, random_state=0)
    extra = pd.DataFrame({"transaction_id": [f"cf-{i}" for i in range(len(some))], "customer_id": some.index.astype("string"),
                          "ts": day + pd.Timedelta(hours=12), "amount": some["monetary"].to_numpy(), "category": "cd", "quantity": 1})
    after = build_customer_features(pd.concat([cdnow_sample, extra.astype(cdnow_sample.dtypes.to_dict())], ignore_index=True),
                                    None, day).frame.set_index("customer_id").loc[some.index]
    moved = apply_change(some, {"purchases": 1.0})
    for column in ("recency", "t_x", "frequency", "purchase_days_90d", "total_spend", "spend_90d", "spend_trend", "T"):
        np.testing.assert_allclose(moved[column].to_numpy(dtype=float), after[column].to_numpy(dtype=float), atol=1e-6, err_msg=column)


def test_the_scorer_gives_reasons_and_counterfactuals_to_the_at_risk_only(scorer, cdnow_split):
    rows = cdnow_split.parts["refit"].head(400)
    out = scorer.score(rows)
    at_risk = out["probability"] >= scorer.threshold
    assert out.loc[at_risk, "reasons"].notna().all() and out.loc[~at_risk, "reasons"].isna().all()
    assert (out.loc[at_risk, "risk_band"] == "high").all() and set(out.loc[~at_risk, "risk_band"]) <= {"low", "medium"}
    first = out.loc[at_risk].iloc[0]
    assert first["reasons"].split("; ")[0].endswith(f"{first['reason_1_logodds']:+.2f}")
    assert (out.loc[at_risk, "reason_1_logodds"] > 0).all()  # reasons raise the risk
    assert out.loc[at_risk, "counterfactual"].notna().all() and out.loc[~at_risk, "counterfactual"].isna().all()
    empty = scorer.score(rows.iloc[:0])
    assert list(empty.columns) == list(out.columns) and empty.empty


def test_the_history_tenure_and_age_are_never_changed_directly():
    with pytest.raises(CounterfactualConfigError, match="'T' is not actionable: tenure, age and identifiers never change"):
        Actionable.parse("T:decrease:30:90")
    with pytest.raises(CounterfactualConfigError, match="'recency' is part of the purchase history: change it through the event 'purchases'"):
        Actionable.parse("recency:decrease:30:360")
    with pytest.raises(CandidateConfigError, match="expected column:direction:step:max_change"):
        from customer_intel.churn.family import CHURN

        CHURN.build_candidates(actionable=["recency-30"])


def test_reasons_read_as_sentences():
    assert phrase("recency", 140) == "no purchase for 140 days"
    assert phrase("channel_share_online", 0.25) == "25% of transactions via online"
    assert phrase("frequency", 3) == "3 repeat purchase days"
