import math

import pandas as pd
import pytest

from customer_intel.cltv.evaluation import CLTV_RULE
from customer_intel.modeling import ChampionRule, Constraint, NoChampionError, incumbent_not_worse

TABLE = pd.DataFrame({"auc": [0.5, 0.71, 0.72, 0.72, float("nan")], "brier": [0.25, 0.2, 0.19, 0.18, 0.1],
                      "bias": [0, 1, 30, 2, 0]}, index=["random", "simple", "boosted", "forest", "broken"])


def test_higher_is_better_with_baselines_and_tie_breakers():
    rule = ChampionRule("auc", higher_is_better=True, baselines=("random",), tie_breakers=(("brier", False),))
    assert rule.pick(TABLE) == "forest"  # ties with boosted on AUC, lower Brier; a NaN metric never wins
    assert rule.pick(TABLE, allowed=["simple", "boosted"]) == "boosted"
    assert rule.describe() == "highest auc on the validation window, among candidates that beat every naive baseline on it; ties broken by brier"


def test_constraints_exclude_a_better_but_biased_candidate():
    rule = ChampionRule("brier", baselines=("random",), constraints=(Constraint("bias", maximum=10, absolute=True),))
    assert rule.pick(TABLE.drop(index="broken")) == "forest"
    assert rule.pick(TABLE.drop(index=["broken", "forest"])) == "simple"  # boosted's |bias| 30 breaks the bound
    with pytest.raises(NoChampionError, match=r"no candidate beats the naive baselines \(0.2500 brier\) and meets \|bias\| <= 10"):
        rule.pick(TABLE.loc[["random", "boosted"]])
    assert "and |bias| <= 10" in rule.describe()


def test_the_cltv_rule_reads_as_one_sentence():
    assert CLTV_RULE.describe() == ("lowest mean Poisson deviance on the validation window (a proper scoring rule for counts), "
                                    "among candidates that beat every naive baseline on it and |total_pct_error| <= 10; ties broken by "
                                    "RMSE; the simplest candidate within one standard error of the best (paired per-customer differences) "
                                    "wins, in the order probabilistic < ml < ensemble")


def test_incumbent_gate_in_both_directions():
    lower = ChampionRule("deviance", tolerance=0.02)
    assert incumbent_not_worse(lower, {"deviance": 1.02}, {"deviance": 1.0}).passed
    refused = incumbent_not_worse(lower, {"deviance": 1.03}, {"deviance": 1.0}, new_name="ridge", incumbent_name="champion v3")
    assert not refused.passed and refused.limit == pytest.approx(1.02)
    assert refused.description == "ridge (deviance 1.0300) is worse than champion v3 (1.0000) beyond the tolerance (limit 1.0200)"
    higher = ChampionRule("qini", higher_is_better=True, tolerance=0.1)
    assert incumbent_not_worse(higher, {"qini": 0.09}, {"qini": 0.1}).passed
    assert not incumbent_not_worse(higher, {"qini": 0.08}, {"qini": 0.1}).passed
    assert incumbent_not_worse(higher, {"qini": -0.105}, {"qini": -0.1}).passed  # relative to |incumbent|
    assert incumbent_not_worse(higher, {"qini": 0.2}, {"qini": 0.1}, tolerance=0.0).passed
    assert not incumbent_not_worse(lower, {"deviance": math.nan}, {"deviance": 1.0}).passed
    biased = ChampionRule("deviance", constraints=(Constraint("bias", maximum=5, absolute=True),))
    decision = incumbent_not_worse(biased, {"deviance": 0.5, "bias": -8}, {"deviance": 1.0})
    assert not decision.passed and "breaks the rule's constraints: |bias| <= 5" in decision.description
