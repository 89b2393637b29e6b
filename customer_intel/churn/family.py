"""Churn as a model family of the shared lifecycle: its split, candidates, metrics, rule and plots.

The rule: the lowest **Brier score** on the validation window (a proper score: a well-ranked but
miscalibrated model does not win), among candidates that beat recency alone and 1 - P(alive) on
it and rank well enough (ROC AUC at least ``min_roc_auc``: discrimination as a constraint); the
simplest within one standard error of the best (paired per-customer squared errors) wins, in the
order probabilistic < linear < stacked < gbm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from customer_intel.churn.candidates import churn_candidates
from customer_intel.churn.frames import LABEL, TARGET_COLUMNS, build_churn_split, churn_split_from_inputs
from customer_intel.churn.metrics import brier_rows, calibration_bins, churn_scores, expected_calibration_error
from customer_intel.churn.scorer import SCORE_COLUMNS
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.card import CardHooks, card_table, reported_part
from customer_intel.modeling.rule import ChampionRule, Constraint

PIP_REQUIREMENTS = ("customer_intel", "pandas<3", "scikit-learn", "lightgbm", "shap", "scipy")
MIN_ROC_AUC = 0.6
BASELINES = ("recency", "one_minus_p_alive")

CHURN_RULE = ChampionRule(
    metric="brier", higher_is_better=False, baselines=BASELINES, tie_breakers=(("log_loss", False), ("roc_auc", True)),
    tolerance=0.02, constraints=(Constraint("roc_auc", minimum=MIN_ROC_AUC),),
    metric_label="Brier score of P(no purchase in the window)",
    rationale="a proper score: calibration and ranking both count, so a well-ranked but miscalibrated model does not win",
    simplicity=("probabilistic", "linear", "stacked", "gbm"),
)


def configure_churn_rule(rule: ChampionRule, min_roc_auc: float | None = None) -> ChampionRule:
    return dataclasses.replace(rule, constraints=(Constraint("roc_auc", minimum=float(min_roc_auc if min_roc_auc is not None else MIN_ROC_AUC)),))


def labels(split: TimeSplit) -> np.ndarray:
    return split.validation[LABEL].to_numpy(dtype=int)


def churn_metrics(split: TimeSplit, prediction: Prediction) -> dict[str, float]:
    return churn_scores(labels(split), prediction.values)


def evaluate_churn_scorer(scorer, split: TimeSplit) -> Prediction:
    """A registered scorer's probability for the validation rows over *this* split's window (the gate compares like with like)."""
    return Prediction(scorer.at_horizon(split.horizon_days).probability(split.validation))


def calibrate(fitted, at_validation: TimeSplit, prediction: Prediction):
    """``calibration="sigmoid"``: Platt scaling of the candidate's validation log-odds against the validation labels, handed
    to its refit at a later origin (the lifecycle's calibrate hook). Other calibrations keep the fit as it is."""
    model = getattr(fitted, "model", None)
    if model is None or model.calibration != "sigmoid" or not model.mismatched:
        return fitted
    from scipy.special import logit
    from sklearn.linear_model import LogisticRegression

    z = logit(np.clip(np.asarray(prediction.values, dtype=float), 1e-6, 1 - 1e-6)).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(z, labels(at_validation))
    model.platt = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    return fitted


def _bar_chart(importance, title: str) -> str:
    import matplotlib.pyplot as plt

    from customer_intel.reporting import png_markdown

    shown = importance.head(12)[::-1]
    fig, ax = plt.subplots(figsize=(4.6, 0.25 * len(shown) + 1.0))
    ax.barh(shown.index, shown.to_numpy(), color="#3b6ea8")
    ax.set_xlabel("mean |SHAP| (log-odds of churn)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    return png_markdown(fig, title)


def calibration_curve_markdown(y, predictions: dict[str, np.ndarray], title: str) -> str:
    """Observed churn rate against mean probability per equal-width bin, one line per model; the diagonal is calibrated."""
    import matplotlib.pyplot as plt

    from customer_intel.reporting import png_markdown

    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for name, p in predictions.items():
        mean_p, rate, _ = calibration_bins(y, p)
        ax.plot(mean_p, rate, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mean predicted churn probability", fontsize=8)
    ax.set_ylabel("observed churn rate", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return png_markdown(fig, title)


def churn_plots(comparison: Comparison) -> dict[str, str]:
    """The calibration curve on the test window (validation without one) for the champion, its uncalibrated self,
    BG/NBD and recency; the champion's global SHAP importance on the validation rows."""
    from customer_intel.churn.explain import global_importance
    from customer_intel.reporting import markdown_table

    on_test = bool(comparison.test_predictions)
    predictions = comparison.test_predictions if on_test else comparison.predictions
    rows = comparison.split.test if on_test else comparison.split.validation
    y = rows[LABEL].to_numpy(dtype=int)
    shown = {n: predictions[n].values for n in dict.fromkeys([comparison.champion, "bgnbd", "recency"]) if n in predictions}
    champion = (comparison.evaluated if on_test else comparison.fitted).get(comparison.champion)
    plots = {}
    if champion is not None and champion.model.calibration != "none" and champion.model.mismatched:
        raw = champion.model.uncalibrated().proba(rows)
        shown[f"{comparison.champion} uncalibrated"] = raw
        plots["calibration_effect"] = markdown_table(
            pd.DataFrame({"brier": [float(brier_rows(y, raw).mean()), float(brier_rows(y, predictions[comparison.champion].values).mean())]},
                                           index=["uncalibrated", f"{champion.model.calibration}-calibrated"]))
    plots["calibration"] = calibration_curve_markdown(y, shown, f"calibration on the {'test' if on_test else 'validation'} window")
    fitted = comparison.fitted.get(comparison.champion)
    if fitted is not None:
        sample = comparison.split.validation.sample(min(2000, len(comparison.split.validation)), random_state=0)
        importance = global_importance(fitted.model.explain(sample))
        plots["shap_importance"] = _bar_chart(importance, f"{comparison.champion}: global importance (validation)")
        plots["shap_importance_table"] = markdown_table(importance.head(12).to_frame())
    return plots


def churn_card_calibration(comparison: Comparison, bins: int = 10) -> str:
    """ECE and the reliability table of the champion on the test rows (validation without them)."""
    part, origin, predictions = reported_part(comparison)
    y = origin.validation[LABEL].to_numpy(dtype=int)
    p = np.asarray(predictions[comparison.champion].values, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = [{"probability bin": f"[{b / bins:.1f}, {(b + 1) / bins:.1f}{']' if b == bins - 1 else ')'}", "rows": int((which == b).sum()),
             "mean predicted": float(p[which == b].mean()), "observed churn rate": float(y[which == b].mean()),
             "observed - predicted": float(y[which == b].mean() - p[which == b].mean())} for b in np.unique(which)]
    return (f"On the {part} rows ({len(y):,} customers, observed churn rate {y.mean():.3f}), the champion `{comparison.champion}`'s "
            f"expected calibration error is {expected_calibration_error(y, p, bins):.4f} ({bins} equal-width probability bins, the "
            f"row-weighted mean of |observed rate - mean probability|) and its Brier score {float(brier_rows(y, p).mean()):.4f}; mean "
            f"probability {p.mean():.3f}. Reliability table:\n\n" + card_table(rows))


CHURN_CARD = CardHooks(
    features=lambda fitted: list(fitted.model.required_columns),
    calibration=churn_card_calibration,
    loss_label="Brier score per customer",
    segment_metric=lambda origin, prediction, mask, metric: float(brier_rows(labels(origin), prediction.values)[mask].mean()),
    intended_use="Rank and size the customers likely to make no purchase in the scoring window (the window the scores' "
    "`churn_horizon_days` names), for retention outreach and for monitoring the book; the probability is meant to be calibrated, so that "
    "a group's sum estimates how many of them will lapse (the calibration section shows how close it was on this run's test window). Reasons and counterfactuals explain a customer's score to the "
    "person who acts on it.",
    misuse=("deciding credit, pricing, account closure or any eligibility on a customer's churn probability: it predicts a "
            "purchase gap, not risk or intent, and no fairness audit was run",
            "reading a counterfactual as a causal promise (\"two more purchases would keep them\"): it is what the model's "
            "inputs would need, not what an action will cause; the uplift family measures effects",
            "using scores for a window other than the one they were computed for, or for customers of another bank or product "
            "whose purchase rhythm differs from the training data's",
            "treating a low probability as loyalty for customers with short histories (see the limitations)"),
    limitations=("churn here means no purchase in the window: a customer who keeps the account but buys elsewhere is a churner, "
                 "and one who buys once before leaving is not",),
)


CHURN = ModelFamily(
    name="churn",
    description="P(no purchase in the churn window) per customer: recency alone, 1 - P(alive) and BG/NBD's probability of no "
    "purchase, a standardised logistic regression, LightGBM and a logistic regression stacked on BG/NBD, trained time-shifted "
    "and corrected for the scoring window; SHAP reasons and counterfactuals for every customer at risk.",
    rule=CHURN_RULE,
    build_split=churn_split_from_inputs,
    candidates=churn_candidates,
    metrics=churn_metrics,
    evaluate_scorer=evaluate_churn_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=TARGET_COLUMNS,
    pip_requirements=PIP_REQUIREMENTS,
    plots=churn_plots,
    needs_transactions=True,
    row_loss=lambda split, prediction: brier_rows(labels(split), prediction.values),
    calibrate=calibrate,
    rule_params=("min_roc_auc",),
    configure_rule=configure_churn_rule,
    card=CHURN_CARD,
)


def compare_churn_models(transactions, customers, cutoff, window_days: int, *, split: TimeSplit | None = None, include=None,
                         calibration: str = "window", seed: int = 0, log=print, **options) -> Comparison:
    """Every churn candidate chosen on the validation window, reported on the test window after ``cutoff``, the champion refitted."""
    split = split or build_churn_split(transactions, customers, cutoff, window_days)
    return CHURN.compare(split, log=log, include=include, calibration=calibration, seed=seed, **options)
