"""CLTV as a model family of the shared lifecycle: its split, candidates, metrics, rule and scorer columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.cltv.candidates import calibrate, cltv_candidates, ensemble_scorer
from customer_intel.cltv.evaluation import CLTV_RULE, configure_cltv_rule, evaluate
from customer_intel.cltv.frames import TARGET, TARGET_COLUMNS, build_cltv_split, cltv_split_from_inputs
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS
from customer_intel.cltv.scorer import SCORE_COLUMNS
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.ensemble import EnsembleSpec, poisson_row_deviance
from customer_intel.reporting import calibration_plot_markdown

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
