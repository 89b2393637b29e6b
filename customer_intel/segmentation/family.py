"""Segmentation as a model family of the shared lifecycle: its split, candidates, metrics and rule.

The split is by customer, at one as-of day (default: the last day of data): ``fit`` holds 75% of
the customers, ``validation`` the other 25%, held out. Every candidate is fitted on the fit
customers and scored on the held-out ones in the same input space (``space.py``); the champion
is chosen there, and the registered model assigns everyone, new customers included, daily.
Segments have no target to wait for, so there is no test window and no refit: the model that was
judged is the one registered.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from customer_intel.features import build_customer_features, net_spend_to_date
from customer_intel.features.rfm import as_of_day
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.card import CardHooks, card_table
from customer_intel.modeling.family import FamilyInputError
from customer_intel.modeling.rule import ChampionRule, Constraint
from customer_intel.modeling.split import FIT, VALIDATION
from customer_intel.segmentation.candidates import segmentation_candidates, shared_space
from customer_intel.segmentation.metrics import input_space_metrics, per_row_silhouette
from customer_intel.segmentation.scorer import SCORE_COLUMNS
from customer_intel.segmentation.space import FEATURE_SET_COLUMN, FEATURE_SETS, SegmentationInputError, default_feature_set, feature_columns
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

PIP_REQUIREMENTS = ("customer_intel", "pandas<3", "scikit-learn", "minisom", "torch==2.13.0")
DIAGNOSTICS = ("stability", "silhouette_sd", "calinski_harabasz_sd", "davies_bouldin_sd", "noise_share", "latent_silhouette")
# simplest first: within one standard error of the best silhouette, the simpler kind wins
SIMPLICITY = ("centroid", "mixture", "som", "graph", "density", "deep")
MIN_STABILITY, MIN_SEGMENT_SHARE, K_MIN, K_MAX = 0.8, 0.03, 3, 8

SEGMENTATION_RULE = ChampionRule(
    metric="silhouette", higher_is_better=True, tie_breakers=(("calinski_harabasz", True), ("davies_bouldin", False)),
    tolerance=0.05,
    constraints=(Constraint("stability", minimum=MIN_STABILITY), Constraint("smallest_share", minimum=MIN_SEGMENT_SHARE),
                 Constraint("n_segments", minimum=K_MIN, maximum=K_MAX)),
    metric_label="silhouette of the held-out customers in the standardised input space",
    rationale="how much closer customers are to their own segment than to the next; never a model's own latent space",
    simplicity=SIMPLICITY,
)


class SegmentationSplitError(FamilyInputError):
    """The inputs cannot make a segmentation split."""


def configure_segmentation_rule(rule: ChampionRule, min_stability: float | None = None, min_segment_share: float | None = None,
                                k_min: int | None = None, k_max: int | None = None) -> ChampionRule:
    """The rule with this run's bounds (stability, smallest segment share, k range)."""
    old = {c.metric: c for c in rule.constraints}
    stability = Constraint("stability", minimum=float(min_stability if min_stability is not None else old["stability"].minimum))
    share = Constraint("smallest_share", minimum=float(min_segment_share if min_segment_share is not None else old["smallest_share"].minimum))
    k = Constraint("n_segments", minimum=int(k_min if k_min is not None else old["n_segments"].minimum),
                   maximum=int(k_max if k_max is not None else old["n_segments"].maximum))
    return dataclasses.replace(rule, constraints=(stability, share, k))


def build_segmentation_split(features: pd.DataFrame, feature_set: str = "auto", validation_share: float = 0.25, seed: int = 0) -> TimeSplit:
    """Held-out customers by a seeded permutation of ``features`` (the one feature builder's rows at one as-of day)."""
    if not 0 < validation_share < 1:
        raise SegmentationSplitError(f"validation_share must lie in (0, 1); got {validation_share}")
    chosen = default_feature_set(features) if feature_set == "auto" else feature_set
    if chosen not in FEATURE_SETS:
        raise SegmentationSplitError(f"unknown feature set {feature_set!r}; choose from auto, {', '.join(FEATURE_SETS)}")
    try:
        feature_columns(features, chosen)
    except SegmentationInputError as exc:
        raise SegmentationSplitError(str(exc)) from exc
    if len(features) < 40:
        raise SegmentationSplitError(f"{len(features)} customers: too few to segment with a held-out part")
    order = np.random.default_rng(seed).permutation(len(features))
    held = int(round(validation_share * len(features)))
    rows = features.assign(**{FEATURE_SET_COLUMN: chosen})
    day = as_of_day(features["as_of"].iloc[0])
    parts = {FIT: rows.iloc[np.sort(order[held:])].reset_index(drop=True), VALIDATION: rows.iloc[np.sort(order[:held])].reset_index(drop=True)}
    return TimeSplit(day, 0, parts, {FIT: day, VALIDATION: day}, {FIT: 0, VALIDATION: 0})


def segmentation_split_from_inputs(inputs: Mapping[str, pd.DataFrame], cutoff: str | None = None, feature_set: str = "auto",
                                   validation_share: float = 0.25, seed: int = 0) -> TimeSplit:
    """Features as of ``cutoff`` (default: the last transaction day; profile mode: the last ``valid_from``, else today)."""
    transactions, customers = inputs.get(RAW_TRANSACTIONS), inputs.get(RAW_CUSTOMERS)
    transactions = transactions if transactions is not None and len(transactions) else None
    customers = customers if customers is not None and len(customers) else None
    if transactions is None and customers is None:
        raise SegmentationSplitError("neither raw_transactions nor raw_customers has rows: nothing to segment")
    if cutoff:
        day = as_of_day(cutoff)
    elif transactions is not None:
        day = as_of_day(transactions["ts"].max())
    elif "valid_from" in customers.columns:
        day = as_of_day(customers["valid_from"].max())
    else:
        day = as_of_day(pd.Timestamp.now(tz="UTC"))
    features = build_customer_features(transactions, customers, day).frame
    return build_segmentation_split(features, feature_set, validation_share, seed)


def segmentation_metrics(split: TimeSplit, prediction: Prediction) -> dict[str, float]:
    """Input-space metrics of the held-out customers' segments, plus the fit's diagnostics (stability, spreads, latent silhouette)."""
    _, _, Xv, rows = shared_space(split)
    metrics = input_space_metrics(Xv, np.asarray(prediction.values, dtype=np.int64), rows)
    diagnostics = prediction.diagnostics or {}
    return {**metrics, **{k: float(diagnostics.get(k, math.nan)) for k in DIAGNOSTICS}}


def silhouette_row_loss(split: TimeSplit, prediction: Prediction) -> np.ndarray:
    """Minus each sampled held-out customer's silhouette: its mean is minus the rule's metric, paired across candidates."""
    _, _, Xv, rows = shared_space(split)
    return -per_row_silhouette(Xv, np.asarray(prediction.values, dtype=np.int64), rows)


def evaluate_segment_scorer(scorer, split: TimeSplit) -> Prediction:
    return Prediction(scorer.score(split.validation)["id"].to_numpy(dtype=np.int64))


def segmentation_plots(comparison: Comparison) -> dict[str, str]:
    """The champion's segments (a profile table and a radar chart each), and the k-selection curves of the methods that sweep k."""
    from customer_intel.reporting import markdown_table
    from customer_intel.segmentation.naming import profile_table
    from customer_intel.segmentation.report import curves_markdown, radar_markdown

    fitted = comparison.fitted.get(comparison.champion)
    plots = {}
    if fitted is not None:
        profiles, labels = fitted.segments()
        spend = net_spend_to_date(fitted.split.fit)
        revenue = spend.to_numpy(dtype=float) if spend is not None else None
        plots["segment_profiles"] = markdown_table(profile_table(profiles, revenue=revenue, labels=labels))
        plots["segment_radars"] = "\n".join(radar_markdown(p) for p in profiles)
    curves = {}
    for name, key in (("kmeans", "silhouette_by_k"), ("kmeans", "inertia_by_k"), ("gmm", "bic_by_k")):
        model = comparison.fitted.get(name)
        curve = model.model.info().get(key) if model is not None else None
        if isinstance(curve, dict):
            curves[f"{name} {key.replace('_by_k', '')}"] = {int(k): float(v) for k, v in curve.items()}
        elif isinstance(curve, list | tuple):
            k0 = int(model.model.info().get("k_min", 3))
            curves[f"{name} {key.replace('_by_k', '')}"] = {k0 + i: float(v) for i, v in enumerate(curve)}
    if curves:
        plots["k_selection"] = curves_markdown(curves, "choosing k on the training customers")
    return plots


def segmentation_card_stability(comparison: Comparison) -> str:
    """What applies instead of calibration: the champion's stability over refits and its segments' sizes on the held-out customers."""
    row = comparison.table.loc[comparison.champion]
    labels = np.asarray(comparison.predictions[comparison.champion].values, dtype=np.int64)
    ids, counts = np.unique(labels, return_counts=True)
    shares = pd.DataFrame({"segment": ids, "held-out customers": counts, "share": counts / max(len(labels), 1)})
    refits = (comparison.predictions[comparison.champion].diagnostics or {}).get("refits")
    return ("Segments are labels, not probabilities or forecasts: there is nothing to calibrate. What applies is whether the "
            f"assignment is stable and the segments usable: over {int(refits) if refits else 'its'} refits on subsamples of the training "
            f"customers, the champion `{comparison.champion}` assigned the held-out customers with a mean pairwise adjusted Rand index of "
            f"{float(row['stability']):.3f} (the rule asks at least {_bound(comparison, 'stability')}); the silhouette's standard deviation "
            f"over those refits is {float(row['silhouette_sd']):.3f}; {int(row['n_segments'])} segments, the smallest holding "
            f"{float(row['smallest_share']):.1%} of the held-out customers (the rule asks at least {_bound(comparison, 'smallest_share')}). "
            "Segment sizes on the held-out customers:\n\n" + card_table(shares.to_dict("records")))


def _bound(comparison: Comparison, metric: str) -> str:
    bounds = [c.minimum for c in comparison.rule.constraints if c.metric == metric and c.minimum is not None]
    return f"{bounds[0]:g}" if bounds else "nothing"


_SILHOUETTES: list = []  # [(Xv, labels, rows, per-row silhouettes)]: the last one, held so the ids stay theirs


def _silhouettes(Xv: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``per_row_silhouette`` once per assignment: a card asks for it once per group of rows (O(n^2) on up to 5,000 rows)."""
    if _SILHOUETTES and all(a is b for a, b in zip(_SILHOUETTES[0][:3], (Xv, labels, rows))):
        return _SILHOUETTES[0][3]
    values = per_row_silhouette(Xv, np.asarray(labels, dtype=np.int64), rows)
    _SILHOUETTES[:] = [(Xv, labels, rows, values)]
    return values


def segmentation_segment_metric(origin: TimeSplit, prediction: Prediction, mask: np.ndarray, metric: str = "silhouette") -> float:
    """The mean silhouette of the masked held-out customers (each against every held-out customer, as the rule's metric)."""
    _, _, Xv, rows = shared_space(origin)
    values = _silhouettes(Xv, prediction.values, rows)
    chosen = np.asarray(mask)[rows]
    return float(values[chosen].mean()) if chosen.any() else float("nan")


SEGMENTATION_CARD = CardHooks(
    features=lambda fitted: list(fitted.space.columns),
    calibration=segmentation_card_stability,
    calibration_applies=False,
    loss_label="silhouette per sampled held-out customer (as a loss: minus it)",
    segment_metric=segmentation_segment_metric,
    intended_use="Describe the customer base in a few named, stable groups for planning, reporting and choosing which messages to "
    "test; assign every customer, new ones included, daily to the segment whose profile is nearest.",
    misuse=("treating a segment as a causal or predictive fact about a customer (\"segment 2 will respond\"): segments are "
            "descriptive; the uplift and churn families measure responses and risk",
            "using segments to decide credit, pricing or eligibility: no fairness audit was run and profile attributes may enter the input space",
            "comparing segment ids across training runs: a retrained champion may number or cut segments differently; compare profiles, not ids"),
    limitations=("there is no ground truth for segments: the champion is the best-separated stable partition in one standardised "
                 "input space, not the true structure of the bank",),
)


SEGMENTATION = ModelFamily(
    name="segmentation",
    description="Customer segments from seven clustering methods (K-Means, Gaussian mixture, SOM, spectral, HDBSCAN, DEC, "
    "ClusterGAN) compared in one standardised input space on held-out customers, with bootstrap stability, auto-named.",
    rule=SEGMENTATION_RULE,
    build_split=segmentation_split_from_inputs,
    candidates=segmentation_candidates,
    metrics=segmentation_metrics,
    evaluate_scorer=evaluate_segment_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=(FEATURE_SET_COLUMN,),
    pip_requirements=PIP_REQUIREMENTS,
    plots=segmentation_plots,
    needs_transactions=False,
    row_loss=silhouette_row_loss,
    rule_params=("min_stability", "min_segment_share", "k_min", "k_max"),
    configure_rule=configure_segmentation_rule,
    column_prefix="segment",
    has_horizon=False,
    card=SEGMENTATION_CARD,
)
