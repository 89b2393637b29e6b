"""CLTV as a model family of the shared lifecycle: its split, candidates, metrics, rule and scorer columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.cltv.candidates import calibrate, cltv_candidates, ensemble_scorer
from customer_intel.cltv.conformal import COVERAGE
from customer_intel.cltv.evaluation import CLTV_RULE, configure_cltv_rule, evaluate, rate_baseline
from customer_intel.cltv.frames import TARGET, TARGET_COLUMNS, build_cltv_split, cltv_split_from_inputs
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS
from customer_intel.cltv.scorer import SCORE_COLUMNS
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.card import CardHooks, card_table, reported_part
from customer_intel.modeling.ensemble import EnsembleSpec, FittedEnsemble, poisson_row_deviance
from customer_intel.reporting import calibration_plot_markdown

BGNBD_INPUTS = ("frequency", "t_x", "T")  # what BG/NBD (and the ML candidates' stacked BG/NBD) read
SPEND_INPUTS = ("frequency", "monetary_value")  # Gamma-Gamma's

PIP_REQUIREMENTS = ("customer_intel", "lifetimes==0.11.3", "pandas<3", "setuptools<81", "scikit-learn", "xgboost", "lightgbm", "ngboost")


def cltv_metrics(split: TimeSplit, prediction: Prediction) -> dict[str, float]:
    """Every CLTV metric of a forecast of the validation rows' repeat purchase days."""
    actual = split.validation[TARGET].to_numpy(dtype=float)
    values = np.asarray(prediction.values, dtype=float)
    # e.g. lifetimes' Pareto/NBD P(alive) overflows for heavy buyers: such a candidate cannot be champion
    return {**evaluate(actual, values, prediction.interval), "customers_without_prediction": int(np.isnan(values).sum())}


def evaluate_cltv_scorer(scorer, split: TimeSplit) -> Prediction:
    """A registered scorer's (a ``CLTVScorer``, old versions included) forecast of the validation rows over *this* split's horizon."""
    return Prediction(scorer.at_horizon(split.horizon_days).score(split.validation)["expected_purchases"].to_numpy(dtype=float))


def cltv_plots(comparison: Comparison) -> dict[str, str]:
    """Calibration by predicted decile on the test window (the validation window without one): the
    champion, the best probabilistic model and the rate baseline."""
    table = comparison.table
    on_test = bool(comparison.test_predictions)
    predictions = comparison.test_predictions if on_test else comparison.predictions
    rows = comparison.split.test if on_test else comparison.split.validation
    probabilistic = [m for m in TRANSACTION_MODELS if m in predictions]
    shown = [comparison.champion]
    if probabilistic:
        shown.append(table.loc[probabilistic].sort_values("poisson_deviance").index[0])
    shown.append("baseline_rate")
    actual = rows[TARGET].to_numpy(dtype=float)
    return {"calibration": calibration_plot_markdown(actual, {n: predictions[n].values for n in dict.fromkeys(shown) if n in predictions})}


def cltv_features(fitted) -> list[str]:
    """The columns a fitted CLTV candidate reads: BG/NBD's and Gamma-Gamma's inputs, plus an ML regressor's matrix
    (with BG/NBD's outputs stacked in); an ensemble: its members'; a naive baseline: what its formula reads."""
    fitted = getattr(fitted, "inner", fitted)  # a refit that keeps its validation conformal band (candidates.Calibrated)
    baseline = getattr(fitted, "baseline", None)
    if baseline is not None:
        return ["T", "frequency"] if baseline.forecast is rate_baseline else []
    if isinstance(fitted, FittedEnsemble):
        return sorted({c for member in fitted.members.values() for c in cltv_features(member)})
    matrix = getattr(fitted, "matrix", None)
    return sorted({*BGNBD_INPUTS, *SPEND_INPUTS, *(matrix.columns if matrix is not None else ())})


def cltv_card_calibration(comparison: Comparison, bins: int = 10) -> str:
    """Predicted vs actual repeat purchase days by decile of the champion's forecast, the total, and the interval's coverage."""
    part, origin, predictions = reported_part(comparison)
    actual = origin.validation[TARGET].to_numpy(dtype=float)
    predicted = np.asarray(predictions[comparison.champion].values, dtype=float)
    order = np.argsort(predicted, kind="stable")
    rows = [{"decile of the forecast": i + 1, "rows": len(g), "mean predicted": predicted[g].mean(), "mean actual": actual[g].mean(),
             "actual / predicted": actual[g].mean() / predicted[g].mean() if predicted[g].mean() > 0 else np.nan}
            for i, g in enumerate(np.array_split(order, bins)) if len(g)]
    prefix = "test_" if part == "test" else ""
    row = comparison.table.loc[comparison.champion]
    coverage = (f" The {COVERAGE:.0%} predictive interval held {float(row[prefix + 'interval_coverage']):.1%} of the actual counts "
                f"({float(row[prefix + 'randomised_coverage']):.1%} with its randomised ends, whose nominal value is {COVERAGE:.0%})."
                if np.isfinite(float(row.get(prefix + "interval_coverage", np.nan))) else " The champion has no predictive interval.")
    return (f"On the {part} rows ({len(actual):,} customers, a {origin.horizon_days}-day window), the champion `{comparison.champion}` "
            f"forecast {predicted.sum():,.1f} repeat purchase days in total against {actual.sum():,.0f} observed "
            f"({100 * (predicted.sum() - actual.sum()) / actual.sum():+.1f}%)." + coverage
            + " By decile of the forecast:\n\n" + card_table(rows))


CLTV_CARD = CardHooks(
    features=cltv_features,
    calibration=cltv_card_calibration,
    loss_label="Poisson deviance per customer",
    segment_metric=lambda origin, prediction, mask, metric: float(
        poisson_row_deviance(origin.validation[TARGET].to_numpy(dtype=float), prediction.values)[mask].mean()),
    intended_use="Forecast each customer's repeat purchase days, spend and discounted value over the scores' horizon, to rank customers "
    "by expected value, size budgets for groups from their summed forecasts (the calibration section shows how close the totals were "
    "on this run's test window), and weigh an offer's "
    "expected uplift by value in `campaign_targets`.",
    misuse=("pricing, credit limits or any decision about a person's eligibility from a value forecast: it forecasts card purchases, "
            "not income or ability to pay, and no fairness audit was run",
            "reading a forecast beyond its horizon, or a discounted value as a promise of revenue: outside the validated window nothing was measured",
            "forecasting customers of another bank, product or currency without retraining: the spend model is in the training data's amounts",
            "treating customers with no purchase yet as worthless: their forecast is the population's prior, not a measurement of them"),
    limitations=(f"the intervals are {COVERAGE:.0%} predictive intervals of purchase counts; spend and value have point forecasts only",),
)


CLTV = ModelFamily(
    name="cltv",
    description="Repeat purchases, spend and discounted value per customer over a horizon: BG/NBD, Pareto/NBD and "
    "MBG/NBD with Gamma-Gamma, time-shifted ML regressors stacked on BG/NBD, a non-negative ensemble of them, and naive baselines.",
    rule=CLTV_RULE,
    build_split=cltv_split_from_inputs,
    candidates=cltv_candidates,
    metrics=cltv_metrics,
    evaluate_scorer=evaluate_cltv_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=TARGET_COLUMNS,
    pip_requirements=PIP_REQUIREMENTS,
    plots=cltv_plots,
    needs_transactions=True,
    legacy_split_columns=("as_of", "holdout_days"),
    ensemble=EnsembleSpec(to_scorer=ensemble_scorer),
    target=TARGET,
    row_loss=lambda split, prediction: poisson_row_deviance(split.validation[TARGET].to_numpy(dtype=float), prediction.values),
    calibrate=calibrate,
    rule_params=("max_abs_total_error_pct",),
    configure_rule=configure_cltv_rule,
    card=CLTV_CARD,
)


def compare_cltv_models(transactions: pd.DataFrame | None, customers: pd.DataFrame | None, cutoff, horizon_days: int, *,
                        split: TimeSplit | None = None, time_unit_days: float = 7.0, include_ml: bool = True,
                        regressors: dict | list[str] | None = None, eligible: list[str] | None = None, seed: int = 0,
                        horizon_scaling: str = "bgnbd_ratio", max_abs_total_error_pct: float | None = None, refit: bool = True,
                        transaction_models: list[str] | None = None, log=print) -> Comparison:
    """Every CLTV candidate chosen on the validation window inside the calibration period, reported on
    the test window after ``cutoff``, the champion refitted on all the data (``refit``)."""
    split = split or build_cltv_split(transactions, customers, cutoff, horizon_days, refit=refit)
    return CLTV.compare(split, allowed=eligible, log=log, time_unit_days=time_unit_days, include_ml=include_ml,
                        regressors=regressors, seed=seed, horizon_scaling=horizon_scaling,
                        max_abs_total_error_pct=max_abs_total_error_pct, transaction_models=transaction_models)
