from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from customer_intel.modeling import (
    VALIDATION,
    CandidateFitError,
    CandidateSkipped,
    ChampionRule,
    NoChampionError,
    Prediction,
    TimeSplit,
    compare_candidates,
)

SPLIT = TimeSplit("2026-04-01", 30, {VALIDATION: pd.DataFrame({"y": [0.0, 1.0, 2.0, 3.0]})})


@dataclass
class Constant:
    name: str
    value: float
    kind: str = "ml"
    error: type | None = None

    def fit(self, split):
        if self.error:
            raise self.error(f"{self.name} cannot")
        return self

    def predict(self, frame):
        return Prediction(np.full(len(frame), self.value))

    def params(self):
        return {"value": self.value}

    def to_scorer(self):
        return None


def mse(split, prediction):
    return {"mse": float(np.mean((prediction.values - split.validation["y"].to_numpy()) ** 2))}


RULE = ChampionRule("mse", baselines=("zero",))


def test_every_candidate_on_the_same_rows_failures_and_skips_recorded():
    messages = []
    comparison = compare_candidates([Constant("zero", 0.0, kind="baseline"), Constant("one", 1.0), Constant("mean", 1.5),
                                     Constant("bad", 0, error=CandidateFitError), Constant("na", 0, error=CandidateSkipped),
                                     Constant("nan", float("nan"))], SPLIT, RULE, mse, log=messages.append)
    assert comparison.champion == "mean"
    assert list(comparison.table.index) == ["zero", "one", "mean", "nan"]
    assert comparison.table.loc["mean", "mse"] == pytest.approx(1.25) and comparison.table.loc["zero", "kind"] == "baseline"
    assert comparison.failures == {"bad": "bad cannot"} and comparison.skipped == {"na": "na cannot"}
    assert "nan: no prediction for 4 rows; its metrics are undefined" in messages
    assert "✔" in comparison.markdown() and comparison.scorer("mean") is None
    assert compare_candidates([Constant("zero", 0.0, kind="baseline"), Constant("one", 1.0), Constant("mean", 1.5)], SPLIT, RULE, mse,
                              allowed=["one"], log=lambda m: None).champion == "one"


def test_no_champion_when_nothing_beats_the_baseline():
    with pytest.raises(NoChampionError, match="no candidate beats the naive baselines"):
        compare_candidates([Constant("zero", 1.5, kind="baseline"), Constant("far", 10.0)], SPLIT, RULE, mse, log=lambda m: None)


def test_parameters_are_flat_scalars_for_the_tracker():
    from ngboost import NGBRegressor
    from ngboost.distns import Poisson

    from customer_intel.modeling.candidate import flat_params

    params = flat_params({"model": NGBRegressor(Dist=Poisson, n_estimators=7).get_params(), "rate": np.float64(0.5), "note": "x" * 300})
    assert params["model.Dist"] == "Poisson" and params["model.n_estimators"] == 7
    assert params["rate"] == 0.5 and len(params["note"]) == 250


@dataclass
class FailsLater(Constant):
    """Fits at the validation origin only: its refit at the test origin fails."""

    def fit(self, split):
        if split.cutoff > SPLIT.cutoff:
            raise CandidateFitError(f"{self.name} cannot at {split.cutoff.date()}")
        return self


def test_a_champion_that_cannot_be_refitted_at_the_test_origin_is_not_champion():
    from customer_intel.modeling import TEST

    rows = pd.DataFrame({"y": [0.0, 1.0, 2.0, 3.0]})
    split = TimeSplit("2026-04-01", 30, {VALIDATION: rows, TEST: rows}, {TEST: pd.Timestamp("2026-05-01")}, {TEST: 30})
    messages = []
    comparison = compare_candidates([Constant("zero", 0.0, kind="baseline"), FailsLater("mean", 1.5), Constant("one", 1.0)],
                                    split, RULE, mse, log=messages.append)
    assert comparison.table.loc["mean", "mse"] < comparison.table.loc["one", "mse"]  # best on validation...
    assert comparison.champion == "one"  # ...but it is reported and registered only as refitted at the test origin
    assert "mean failed at the test origin and cannot be champion" in messages
    assert comparison.failures["mean"].startswith("at the test origin: mean cannot at 2026-05-01")


def test_a_failed_production_refit_registers_the_champion_as_evaluated():
    from customer_intel.modeling import REFIT, TEST

    rows = pd.DataFrame({"y": [0.0, 1.0, 2.0, 3.0]})
    split = TimeSplit("2026-04-01", 30, {VALIDATION: rows, TEST: rows, REFIT: rows},
                      {TEST: pd.Timestamp("2026-05-01"), REFIT: pd.Timestamp("2026-05-31")}, {TEST: 30, REFIT: 30})

    @dataclass
    class FailsAtRefit(Constant):
        def fit(self, split):
            if split.cutoff >= pd.Timestamp("2026-05-31", tz="UTC"):
                raise CandidateFitError(f"{self.name} cannot at {split.cutoff.date()}")
            return self

    messages = []
    comparison = compare_candidates([Constant("zero", 0.0, kind="baseline"), FailsAtRefit("mean", 1.5)], split, RULE, mse,
                                    log=messages.append)
    assert comparison.champion == "mean" and comparison.production is None
    assert "mean" in comparison.evaluated  # registered: the fit the test columns describe
    assert comparison.failures["mean (production refit)"] == "the production refit of mean failed: mean: mean cannot at 2026-05-31"
    assert messages[-1].endswith("; the champion as evaluated at the test origin is registered instead")
