"""Uplift as a model family of the shared lifecycle: its split, candidates, metrics, rule and plots.

The rule: the highest **normalised Qini coefficient** of the train part's out-of-fold
predictions (cross-validated on the train part only), among candidates above the 95% band of
random orderings of those rows (``require_above_random``; off: above 0, random's expectation); the
simplest within one standard error of the best
in the per-customer transformed-outcome loss (``y (t - e) / (e (1 - e))`` has the effect as its
expectation, so its squared error to a prediction is an unbiased, paired per-customer CATE loss
up to a constant; each prediction after its best affine map to it, so scales do not matter) wins, in
the order linear < doubly_robust < gbm < forest < response. The response model (the marketer's
baseline, P(response | contacted)) comes last: it targets those likeliest to respond, not those the
contact moves, so any uplift learner within the noise of it is preferred; it wins only when it is
best and none is within one standard error (Hillstrom's men's e-mail). The held-out customers only report.

With several offers, every metric is the row-weighted mean over offers of the metric on the
offer's treated rows and its campaigns' control rows (each offer's own columns are in the table
as ``<metric>_<offer>``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.card import CardHooks, card_table, reported_part
from customer_intel.modeling.rule import ChampionRule, Constraint
from customer_intel.uplift.candidates import uplift_candidates
from customer_intel.uplift.frames import TARGET_COLUMNS, offer_mask, offer_slug, offers, uplift_split_from_inputs
from customer_intel.uplift.metrics import qini_coefficient, qini_curve, transformed_outcome, uplift_scores
from customer_intel.uplift.model import increasing_map
from customer_intel.uplift.scorer import SCORE_COLUMNS

PIP_REQUIREMENTS = ("customer_intel", "pandas<3", "scikit-learn", "lightgbm", "econml")
ABOVE_RANDOM = Constraint("qini_above_random", minimum=0.0)
BETTER_THAN_RANDOM_ON_AVERAGE = Constraint("qini", minimum=0.0)

UPLIFT_RULE = ChampionRule(
    metric="qini", higher_is_better=True, baselines=(), tie_breakers=(("auuc", True),), tolerance=0.1,
    constraints=(ABOVE_RANDOM,),
    metric_label="normalised Qini coefficient (cross-validated, out of fold, on the train part)",
    rationale="how much better than random the ranking finds the customers the offer moves; sklift's qini_auc_score",
    simplicity=("linear", "doubly_robust", "gbm", "forest", "response"),  # by prefix: no kind may start with another
)


def configure_uplift_rule(rule: ChampionRule, require_above_random: bool | None = None) -> ChampionRule:
    return dataclasses.replace(rule, constraints=(ABOVE_RANDOM,) if require_above_random in (None, True) else (BETTER_THAN_RANDOM_ON_AVERAGE,))


def _by_offer(rows: pd.DataFrame, values: np.ndarray):
    """(offer, mask, y, t, score of that offer) for each offer of ``rows``; the score column is the offer's position in ``offers(rows)``."""
    names = offers(rows)
    values = np.asarray(values, dtype=float).reshape(len(rows), -1)
    if values.shape[1] != len(names):
        raise ValueError(f"a prediction has {values.shape[1]} offer columns for the {len(names)} offers of these rows ({', '.join(names)})")
    for j, offer_name in enumerate(names):
        mask = offer_mask(rows, offer_name)
        yield offer_name, mask, rows["converted"].to_numpy()[mask], rows["treated"].to_numpy()[mask], values[mask, j]


def uplift_metrics(split: TimeSplit, prediction: Prediction, *, seed: int = 0) -> dict[str, float]:
    rows = split.validation
    per_offer, weights = {}, {}
    for offer_name, mask, y, t, score in _by_offer(rows, prediction.values):
        if not np.isfinite(score).all():
            per_offer[offer_name] = {"qini": float("nan")}
        else:
            per_offer[offer_name] = uplift_scores(y, score, t, seed=seed)
        weights[offer_name] = int(mask.sum())
    keys = sorted({k for m in per_offer.values() for k in m})
    total = sum(weights.values())
    out = {k: float(sum(weights[o] * per_offer[o].get(k, np.nan) for o in per_offer) / total) for k in keys}
    out["qini_above_random"] = out["qini"] - out.get("random_band_high", np.nan)
    if len(per_offer) > 1:
        for offer_name, m in per_offer.items():
            out[f"qini_{offer_slug(offer_name)}"] = m["qini"]
    return out


def to_loss(split: TimeSplit, prediction: Prediction) -> np.ndarray:
    """Per row: the transformed-outcome squared error of the prediction after its best affine map to the transformed
    outcome on these rows (so a score on another scale, the response model's P(response), is judged by the effect
    information it carries, like every other candidate), averaged over the offers the row judges."""
    rows = split.validation
    loss, count = np.zeros(len(rows)), np.zeros(len(rows))
    for _, mask, y, t, score in _by_offer(rows, prediction.values):
        z = transformed_outcome(y, t, float(t.mean()))
        if np.isfinite(score).all() and np.std(score) > 0:
            slope, intercept = np.polyfit(score, z, 1)
            fitted = intercept + slope * score if slope > 0 else np.full(len(z), z.mean())  # a backwards ranking earns no credit
        else:
            fitted = np.full(len(z), np.nan)
        loss[mask] += (z - fitted) ** 2
        count[mask] += 1
    return loss / np.maximum(count, 1)


def evaluate_uplift_scorer(scorer, split: TimeSplit) -> Prediction:
    """A registered scorer's raw scores of this split's validation rows, in this split's offer order."""
    names = offers(split.validation)
    raw = scorer.model.scores(split.validation)
    order = [scorer.model.offers.index(o) if o in scorer.model.offers else None for o in names]
    return Prediction(np.column_stack([raw[:, j] if j is not None else np.full(len(raw), np.nan) for j in order]))


def calibrate(fitted, at_validation: TimeSplit, prediction: Prediction):
    """The response model's score is not an effect: map it to the uplift measured in its score bins on the validation
    rows (out of fold, per offer), made increasing. Other learners estimate the effect themselves and keep it."""
    if getattr(fitted, "name", None) != "response":
        return fitted
    maps = {o: increasing_map(score, y, t) for o, _, y, t, score in _by_offer(at_validation.validation, prediction.values)}
    targets = [fitted.full] if fitted.full is not None else []
    targets += list(fitted.folds.values())
    for model in targets:
        model.effect_map = maps
    return fitted


def _qini_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> str:
    import matplotlib.pyplot as plt

    from customer_intel.reporting import png_markdown

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for name, (x, v) in curves.items():
        ax.plot(x / max(x[-1], 1), v, lw=1.2, label=name)
    last = next(iter(curves.values()))
    ax.plot([0, 1], [0, last[1][-1]], color="grey", lw=0.8, ls="--", label="random (expected)")
    ax.set_xlabel("share of customers targeted (highest predicted uplift first)", fontsize=8)
    ax.set_ylabel("incremental responses (Qini)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    return png_markdown(fig, title)


def uplift_plots(comparison: Comparison) -> dict[str, str]:
    """The Qini curves of the first offer on the held-out customers (validation without them): every candidate."""
    on_test = bool(comparison.test_predictions)
    predictions = comparison.test_predictions if on_test else comparison.predictions
    rows = comparison.split.test if on_test else comparison.split.validation
    curves, offer_name = {}, None
    for name, prediction in predictions.items():
        offer_name, _, y, t, score = next(_by_offer(rows, prediction.values))
        if np.isfinite(score).all():
            curves[name] = qini_curve(y, score, t)
    if not curves:
        return {}
    return {"qini_curve": _qini_plot(curves, f"Qini, {offer_name}, {'held-out' if on_test else 'train (out of fold)'} customers")}


def uplift_features(fitted) -> list[str]:
    model = fitted.full or next(iter(fitted.folds.values()), None)
    return list(model.columns) if model is not None else []


def uplift_card_calibration(comparison: Comparison, bins: int = 5) -> str:
    """Predicted against observed uplift (treated minus control response rate) by quintile of the champion's predicted effect,
    per offer, on the held-out customers (the train part's out-of-fold predictions without them)."""
    part, origin, predictions = reported_part(comparison)
    rows = origin.validation
    tables = []
    for offer_name, _, y, t, score in _by_offer(rows, predictions[comparison.champion].values):
        order = np.argsort(score, kind="stable")
        out = []
        for i, g in enumerate(g for g in np.array_split(order, bins) if len(g)):
            treated, control = g[t[g] == 1], g[t[g] == 0]
            observed = y[treated].mean() - y[control].mean() if len(treated) and len(control) else np.nan
            out.append({"quintile of predicted uplift": i + 1, "rows": len(g), "treated": len(treated), "control": len(control),
                        "mean predicted uplift": float(score[g].mean()), "observed uplift": float(observed)})
        tables.append(f"Offer `{offer_name}` ({len(y):,} rows):\n\n" + card_table(out))
    return (f"The champion `{comparison.champion}` predicts an effect (a difference of response probabilities). On the {part} rows, the "
            "observed uplift of each quintile of its prediction (treated minus control response rate, a randomised campaign) against the "
            "mean predicted uplift; with few rows per quintile the observed values are noisy.\n\n" + "\n\n".join(tables))


def uplift_segment_metric(origin: TimeSplit, prediction: Prediction, mask: np.ndarray, metric: str = "qini") -> float:
    """The normalised Qini of the masked rows (per offer, weighted by the offer's masked rows, as ``uplift_metrics`` weighs offers)."""
    if metric != "qini":
        raise ValueError(f"uplift's card breaks down the Qini, not {metric}")
    mask = np.asarray(mask, dtype=bool)
    values, weights = [], []
    for _, in_offer, y, t, score in _by_offer(origin.validation, prediction.values):
        chosen = mask[in_offer]
        if not chosen.any():
            continue
        if not np.isfinite(score[chosen]).all() or t[chosen].min() == t[chosen].max():  # no effect to rank without both arms
            return float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append(qini_coefficient(y[chosen], score[chosen], t[chosen]))
        weights.append(int(chosen.sum()))
    return float(np.average(values, weights=weights)) if weights else float("nan")


UPLIFT_CARD = CardHooks(
    features=uplift_features,
    calibration=uplift_card_calibration,
    segment_metric=uplift_segment_metric,
    loss_label="transformed-outcome squared error per customer (after the prediction's best affine map; its paired differences rank "
    "candidates by effect information, they are not differences in the Qini)",
    intended_use="Rank customers by how much an offer is expected to change their response, for offers like those of the randomised "
    "campaigns it was trained on, so that `campaign_targets` spends a contact budget where it moves the most value.",
    misuse=("targeting with an offer, channel or population unlike the training campaigns': effects were measured for those only",
            "reading a customer's predicted uplift as that person's certain effect: individual effects are not observed; only group "
            "averages (the quintiles above) can be checked",
            "deciding credit, pricing or eligibility: no fairness audit was run",
            "using it without a randomised control group in future campaigns: without one the model can no longer be checked or retrained"),
    limitations=("the effects come from the campaigns in the data: seasons, offers and customers they did not cover are extrapolation",),
)


UPLIFT = ModelFamily(
    name="uplift",
    description="the effect of each offer on the response per customer, from a randomised campaign: the response model, T-learners "
    "(logistic, LightGBM), an S-learner and an X-learner (LightGBM), class transformation, econml's linear DR-learner and "
    "CausalForestDML (tuned), chosen by cross-validated Qini on the train part and reported on held-out customers.",
    rule=UPLIFT_RULE,
    build_split=uplift_split_from_inputs,
    candidates=uplift_candidates,
    metrics=uplift_metrics,
    evaluate_scorer=evaluate_uplift_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=TARGET_COLUMNS,
    pip_requirements=PIP_REQUIREMENTS,
    plots=uplift_plots,
    needs_transactions=False,
    row_loss=to_loss,
    calibrate=calibrate,
    rule_params=("require_above_random",),
    configure_rule=configure_uplift_rule,
    card=UPLIFT_CARD,
)
