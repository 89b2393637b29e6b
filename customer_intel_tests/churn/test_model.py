"""The churn models: BG/NBD's no-purchase probability, the 1 - P(alive) trap, SHAP additivity, the window correction."""

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from scipy.special import logit

from customer_intel.churn.candidates import churn_candidates
from customer_intel.churn.frames import LABEL
from customer_intel.churn.metrics import brier_rows, churn_scores, expected_calibration_error
from customer_intel.churn.model import BACKGROUND_SHAPLEY, BGNBD_INPUTS, WEEK, bgnbd_no_purchase, bgnbd_p_alive, fit_bgnbd_params
from customer_intel.modeling.split import TEST


def _fitted(split, name, origin=None, **kwargs):
    candidate = next(c for c in churn_candidates(**kwargs) if c.name == name)
    return candidate.fit(split.origin(origin) if origin else split.origin("validation"))


def test_bgnbd_no_purchase_probability_is_dead_or_alive_and_quiet(cdnow_split):
    """1 - PA + PA * E[exp(-lambda t)] with lambda's gamma posterior: PA is lifetimes' P(alive), the quiet factor is
    checked by simulation."""
    rows = cdnow_split.test.head(300)
    params = fit_bgnbd_params(cdnow_split.test)
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(params)[["r", "alpha", "a", "b"]]
    x, t_x, T = rows["frequency"].to_numpy(float), rows["t_x"].to_numpy(float) / WEEK, rows["T"].to_numpy(float) / WEEK
    p_alive = fitter.conditional_probability_alive(x, t_x, T)
    np.testing.assert_allclose(bgnbd_p_alive(params, x, t_x, T), p_alive, rtol=1e-9)
    lam = np.random.default_rng(0).gamma(params["r"] + x[:, None], 1.0 / (params["alpha"] + T[:, None]), size=(len(x), 20_000))
    simulated = 1 - p_alive + p_alive * np.exp(-lam * 39.0).mean(axis=1)
    np.testing.assert_allclose(bgnbd_no_purchase(params, x, t_x, T, 39.0), simulated, atol=0.01)


def test_one_timers_are_not_scored_safest(cdnow_split):
    """1 - P(alive) puts P(alive) = 1 on every customer without a repeat purchase, so it ranks the likeliest
    churners safest; BG/NBD's probability of no purchase in the window does not."""
    rows = cdnow_split.test
    y = rows[LABEL].to_numpy()
    one_timer = rows["frequency"].to_numpy() == 0
    assert y[one_timer].mean() > y[~one_timer].mean() + 0.2  # they do churn more
    trap = _fitted(cdnow_split, "one_minus_p_alive", TEST).predict(rows).values
    assert trap[one_timer].max() <= trap.min() + 1e-9  # every one-timer at the very bottom
    assert churn_scores(y, trap)["roc_auc"] < 0.4
    right = _fitted(cdnow_split, "bgnbd", TEST).predict(rows).values
    assert right[one_timer].mean() > right[~one_timer].mean()
    assert np.median(right[one_timer]) > np.quantile(right, 0.25)
    assert churn_scores(y, right)["roc_auc"] > 0.7


@pytest.mark.parametrize("name", ["logistic", "stacked", "lightgbm", "bgnbd", "recency"])
def test_shap_values_of_a_row_sum_to_its_log_odds(cdnow_split, name):
    fitted = _fitted(cdnow_split, name, TEST)
    rows = cdnow_split.test.sample(60, random_state=1)
    explanation = fitted.model.explain(rows)
    total = explanation.base + explanation.contributions.sum(axis=1) + explanation.shift
    np.testing.assert_allclose(total, logit(fitted.model.proba(rows)), atol=1e-4)
    assert explanation.contributions.shape == (60, len(explanation.names))


def test_exact_shapley_is_shap_exact_explainer(cdnow_split):
    import shap

    fitted = _fitted(cdnow_split, "bgnbd", TEST)
    rows = cdnow_split.test.sample(8, random_state=3)
    ours = fitted.model.explain(rows)
    background = fitted.model.background[:BACKGROUND_SHAPLEY]

    def f(X):
        frame = pd.DataFrame(X, columns=list(BGNBD_INPUTS))
        return fitted.model.raw_log_odds(frame.assign(t_x=np.maximum(frame["T"] - frame["recency"], 0.0)))

    theirs = shap.explainers.Exact(f, shap.maskers.Independent(background, max_samples=len(background)))(ours.values.to_numpy())
    np.testing.assert_allclose(ours.contributions, theirs.values, atol=1e-8)
    assert ours.base == pytest.approx(float(np.mean(theirs.base_values)))


def test_the_window_correction_improves_each_classifier_on_the_longer_test_window(cdnow_master_split):
    """At CDNOW's test origin the classifiers learn a 136-day label and answer for 273 days: uncorrected they over-predict
    churn (a longer window leaves more time to buy); BG/NBD's per-customer correction improves Brier and ECE on the full log."""
    split = cdnow_master_split
    y = split.test[LABEL].to_numpy()
    for name in ("logistic", "stacked", "lightgbm"):
        model = _fitted(split, name, TEST).model
        assert model.train_window == 136 and model.horizon_days == 273
        calibrated, raw = model.proba(split.test), model.uncalibrated().proba(split.test)
        assert brier_rows(y, calibrated).mean() < brier_rows(y, raw).mean(), name
        assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, raw), name
        assert raw.mean() > y.mean() + 0.04 and abs(calibrated.mean() - y.mean()) < abs(raw.mean() - y.mean()), name


def test_sigmoid_is_learnt_on_validation_and_no_correction_touches_a_model_whose_windows_agree(cdnow_split):
    """Platt scaling comes from the validation origin through the lifecycle's calibrate hook and moves the test-origin
    model (136 -> 273 days); the production refit learns the label of the full window, and neither calibration touches it."""
    from customer_intel.churn.family import CHURN

    at_validation = cdnow_split.origin("validation")
    reference = _fitted(cdnow_split, "logistic", calibration="sigmoid")
    prediction = reference.predict(at_validation.validation)
    at_test = CHURN.calibrate(_fitted(cdnow_split, "logistic", TEST, calibration="sigmoid"), at_validation, prediction)
    assert at_test.model.platt is not None and at_test.model.mismatched
    assert not np.allclose(at_test.model.proba(cdnow_split.test), at_test.model.uncalibrated().proba(cdnow_split.test))
    refit = cdnow_split.origin("refit")
    for calibration in ("window", "sigmoid"):
        model = CHURN.calibrate(_fitted(cdnow_split, "logistic", "refit", calibration=calibration), at_validation, prediction).model
        assert model.train_window == model.horizon_days == 273 and not model.mismatched
        np.testing.assert_array_equal(model.proba(refit.validation), model.uncalibrated().proba(refit.validation))


def test_no_label_or_target_is_a_model_input(cdnow_split):
    for name in ("logistic", "stacked", "lightgbm", "recency"):
        inputs = set(_fitted(cdnow_split, name, TEST).model.input_names)
        assert not inputs & {LABEL, "holdout_purchases", "holdout_spend", "holdout_days"}, name
    assert _fitted(cdnow_split, "recency", TEST).model.input_names == ["recency"]


def test_metrics_are_the_textbook_ones():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.6, 0.4, 0.9, 0.3, 0.2, 0.95])
    scores = churn_scores(y, p, n_boot=50)
    assert scores["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert scores["roc_auc"] == pytest.approx(21.5 / 24)  # 6 churners x 4 stayers: the churner at 0.2 loses to 0.4 and 0.3, ties 0.2
    assert scores["roc_auc_ci_low"] <= scores["roc_auc"] <= scores["roc_auc_ci_high"]
    assert scores["churn_rate"] == 0.6 and scores["top_decile_capture"] == pytest.approx(1 / 6)


def test_rewriting_every_test_label_changes_neither_the_champion_nor_a_validation_number(cdnow_split):
    """The test window only reports: flip every test label and the choice, and everything it was made on, stay."""
    from customer_intel.churn.family import CHURN

    flipped = cdnow_split.test.assign(**{LABEL: 1 - cdnow_split.test[LABEL]})
    other = type(cdnow_split)(cdnow_split.cutoff, cdnow_split.horizon_days, {**cdnow_split.parts, TEST: flipped},
                              cdnow_split.part_cutoffs, cdnow_split.part_horizons)
    quiet = {"log": lambda _: None, "counterfactuals": False}
    first, second = CHURN.compare(cdnow_split, **quiet), CHURN.compare(other, **quiet)
    assert first.champion == second.champion
    validation = ["brier", "log_loss", "ece", "roc_auc", "delta_vs_champion"]
    pd.testing.assert_frame_equal(first.table[validation], second.table[validation])
    assert not np.allclose(first.table["test_brier"], second.table["test_brier"])
