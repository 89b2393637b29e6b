"""CLTV as a model family of the shared lifecycle: its split, candidates, metrics, rule and scorer columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.cltv.candidates import cltv_candidates
from customer_intel.cltv.evaluation import CLTV_RULE, evaluate
from customer_intel.cltv.frames import TARGET, TARGET_COLUMNS, build_cltv_split, cltv_split_from_inputs
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS
from customer_intel.cltv.scorer import SCORE_COLUMNS
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
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
    """Calibration by predicted decile: the champion, the best probabilistic model and the rate baseline."""
    table = comparison.table
    probabilistic = [m for m in TRANSACTION_MODELS if m in comparison.fitted]
    shown = [comparison.champion]
    if probabilistic:
        shown.append(table.loc[probabilistic].sort_values("poisson_deviance").index[0])
    shown.append("baseline_rate")
    actual = comparison.split.validation[TARGET].to_numpy(dtype=float)
    return {"calibration": calibration_plot_markdown(actual, {n: comparison.predictions[n].values for n in dict.fromkeys(shown)})}


CLTV = ModelFamily(
    name="cltv",
    description="Repeat purchases, spend and discounted value per customer over a horizon: BG/NBD, Pareto/NBD and "
    "MBG/NBD with Gamma-Gamma, time-shifted ML regressors stacked on BG/NBD, and naive baselines.",
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
)


def compare_cltv_models(transactions: pd.DataFrame | None, customers: pd.DataFrame | None, cutoff, horizon_days: int, *,
                        split: TimeSplit | None = None, time_unit_days: float = 7.0, include_ml: bool = True,
                        regressors: dict | list[str] | None = None, eligible: list[str] | None = None, seed: int = 0,
                        log=print) -> Comparison:
    """Every CLTV candidate fitted on data up to ``cutoff`` and scored on the window after it."""
    split = split or build_cltv_split(transactions, customers, cutoff, horizon_days)
    return CLTV.compare(split, allowed=eligible, log=log, time_unit_days=time_unit_days, include_ml=include_ml,
                        regressors=regressors, seed=seed)
