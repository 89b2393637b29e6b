"""Counterfactuals: verified against the model, only actionable features, within their bounds; reasons in words."""

import numpy as np
import pytest

from customer_intel.churn.candidates import churn_candidates
from customer_intel.churn.counterfactual import COUPLED, Actionable, CounterfactualConfigError, apply_change, search
from customer_intel.churn.explain import phrase
from customer_intel.modeling import CandidateConfigError

ACTIONS = [Actionable.parse("recency:decrease:30:360"), Actionable.parse("frequency:increase:1:2")]


@pytest.fixture(scope="module")
def scorer(cdnow_split):
    fitted = next(c for c in churn_candidates(actionable=["recency:decrease:30:360", "frequency:increase:1:2"])
                  if c.name == "logistic").fit(cdnow_split.origin("refit"))
    return fitted.to_scorer()


def test_every_counterfactual_is_verified_actionable_and_within_bounds(scorer, cdnow_split):
    rows = cdnow_split.parts["refit"]
    p = scorer.probability(rows)
    at_risk = rows.loc[p >= scorer.threshold]
    assert len(at_risk) > 100
    found = search(scorer.probability, at_risk, scorer.threshold, ACTIONS)
    ok = found["counterfactual_probability"].notna().to_numpy()
    assert ok.mean() > 0.5
    changes = {a.column: found[f"delta_{a.column}"].to_numpy()[ok] for a in ACTIONS}
    changed = apply_change(at_risk.loc[ok], changes)
    verified = scorer.probability(changed)
    np.testing.assert_allclose(verified, found["counterfactual_probability"].to_numpy()[ok])
    assert (verified < scorer.threshold).all()
    allowed = {a.column for a in ACTIONS} | {other for a in ACTIONS for other, _ in COUPLED.get(a.column, [])}
    numeric = [c for c in rows.columns if rows[c].dtype.kind in "if"]
    moved = [c for c in numeric if not np.allclose(changed[c].to_numpy(dtype=float), at_risk.loc[ok, c].to_numpy(dtype=float))]
    assert set(moved) <= allowed and "T" not in moved
    for a in ACTIONS:
        delta = changes[a.column]
        assert (np.sign(delta) * a.sign >= 0).all() and (np.abs(delta) <= a.max_change).all()
        assert np.allclose(np.abs(delta) / a.step, np.round(np.abs(delta) / a.step))
    for a in ACTIONS:  # the cheapest: one step less of any action it uses does not cross the threshold
        uses = np.abs(changes[a.column]) > 0
        fewer = {c: d[uses] - (a.sign * a.step if c == a.column else 0) for c, d in changes.items()}
        undone = scorer.probability(apply_change(at_risk.loc[ok].loc[uses], fewer))
        assert (undone >= scorer.threshold - 1e-12).all(), a.column
    text = found.loc[ok, "counterfactual"]
    assert text.str.contains(" → risk ").all()
    assert found.loc[~ok, "counterfactual"].str.startswith("no change within the actionable bounds").all()


def test_the_scorer_gives_reasons_and_counterfactuals_to_the_at_risk_only(scorer, cdnow_split):
    rows = cdnow_split.parts["refit"].head(400)
    out = scorer.score(rows)
    at_risk = out["probability"] >= scorer.threshold
    assert out.loc[at_risk, "reasons"].notna().all() and out.loc[~at_risk, "reasons"].isna().all()
    assert (out.loc[at_risk, "risk_band"] == "high").all() and set(out.loc[~at_risk, "risk_band"]) <= {"low", "medium"}
    first = out.loc[at_risk].iloc[0]
    assert first["reasons"].split("; ")[0].endswith(f"{first['reason_1_logodds']:+.2f}")
    assert out.loc[at_risk, "counterfactual"].notna().all() and out.loc[~at_risk, "counterfactual"].isna().all()


def test_tenure_and_age_are_never_actionable():
    with pytest.raises(CounterfactualConfigError, match="'T' is not actionable: tenure, age and identifiers never change"):
        Actionable.parse("T:decrease:30:90")
    with pytest.raises(CandidateConfigError, match="expected column:direction:step:max_change"):
        from customer_intel.churn.family import CHURN

        CHURN.build_candidates(actionable=["recency-30"])


def test_reasons_read_as_sentences():
    assert phrase("recency", 140) == "no purchase for 140 days"
    assert phrase("channel_share_online", 0.25) == "25% of transactions via online"
    assert phrase("frequency", 3) == "3 repeat purchase days"
