"""Model cards: one Markdown page per family and training run, written from what that run measured.

``model_card(family, comparison, lineage, gate)`` is the one generator every family shares. Every
number on the card comes from its arguments (the split, the comparison table and predictions, the
lineage the lifecycle records, the gate's decision) or is computed here from them; what a family
adds is its ``CardHooks`` (the features its champion reads, what calibration means for it, its
metric on a subset of rows, its intended use and misuse), written once in the family's spec.

The gate's decision is made after the comparison (the blocking check before promotion), so a card
is first written with the gate ``pending`` and completed with ``with_gate`` by the check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import Prediction
from customer_intel.modeling.rule import ChampionRule
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION, TimeSplit

if TYPE_CHECKING:
    from customer_intel.modeling.comparison import Comparison
    from customer_intel.modeling.family import ModelFamily

GATE_HEADING = "## What the gate decided"
MODEL_CARD_ARTIFACT = "model_card.md"  # its name in MLflow (the comparison's run, and the registered version's run)
HISTORY_COLUMN = "T"  # days from the first purchase day to the as-of day (the feature builder's tenure)
SEGMENT_COLUMN = "rfm_segment"
SHORT_HISTORY_DAYS = 90
HISTORY_BANDS = ((0, 90, "under 90 days"), (90, 365, "90 days to 1 year"), (365, 730, "1 to 2 years"), (730, math.inf, "2 years or more"))
NO_HISTORY = "no purchase yet"
PART_ROLES = {FIT: "candidates are fitted on it", VALIDATION: "every choice is made here (champion, weights)",
              TEST: "only reports: every candidate refitted at its origin, nothing chosen on it",
              REFIT: "features as of the last day: the production refit of the chosen recipe (no targets)"}
PROFILE_NOTES = {
    "snapshot": "profile attributes come from a snapshot table (no `valid_from`): their values are the snapshot's, not each as-of day's, so "
                "for an as-of day before the snapshot they may carry information from after it and make the comparison optimistic",
    "snapshot_excluded": "a snapshot profile table exists but its attributes were left out of these rows (they may postdate the as-of day)",
    "valid_from": "profile attributes are the versions valid on each as-of day (`valid_from`): no look-ahead from the profile table",
    "none": "no profile table: the rows carry no profile attributes",
}


@dataclass(frozen=True)
class CardHooks:
    """What a family adds to the shared card.

    - ``features(fitted)``: the input columns a fitted candidate of this family reads (the champion's);
    - ``calibration(comparison)``: Markdown of what the family measures about calibration (computed from the
      comparison's predictions); ``calibration_applies=False``: it says why calibration does not apply and gives
      what applies instead (e.g. stability);
    - ``segment_metric(origin, prediction, mask, metric)``: the rule's ``metric`` on the rows of ``mask`` of the
      origin's predicted part; default: the family's metrics on those rows alone (right when the metric is a mean or a
      ranking over the rows; a family whose metric needs the other rows, e.g. neighbours, overrides it);
    - ``loss_label``: what the per-row loss behind the comparison's paired intervals is;
    - ``intended_use`` / ``misuse``: written once, shown on every card of the family.

    A family without hooks still gets a card: its sections say what the family does not declare.
    """

    features: Callable[[object], Sequence[str]] | None = None
    calibration: Callable[[Comparison], str] | None = None
    intended_use: str = ""
    misuse: tuple[str, ...] = ()
    loss_label: str = "per-row loss of the family's rule"
    calibration_applies: bool = True
    segment_metric: Callable[[TimeSplit, Prediction, np.ndarray, str], float] | None = None
    limitations: tuple[str, ...] = ()  # properties of the family's design a reader must know (not measurements)


@dataclass(frozen=True)
class CardLineage:
    """What the lifecycle records about where the training rows came from."""

    training_frame: str
    training_frame_sha256: str | None = None
    inputs: Mapping[str, Mapping] = field(default_factory=dict)  # raw table -> its published manifest (rows, sha256, written_at, run_id)
    code_version: str | None = None
    dagster_run_id: str | None = None
    mlflow_run_id: str | None = None


@dataclass(frozen=True)
class GateRecord:
    """The gate's decision as the blocking check made it (``passed`` None: not decided yet)."""

    check: str
    tolerance: float
    passed: bool | None = None
    description: str = ""
    facts: Mapping[str, object] = field(default_factory=dict)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return "—" if not math.isfinite(float(value)) else f"{float(value):.{digits}g}"
    return str(value)


def card_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of a card as a Markdown table: integers with separators, floats to 4 significant digits, \"—\" for missing."""
    frame = pd.DataFrame(rows, columns=columns)
    return frame.map(_fmt).to_markdown(index=False) if len(frame) else "(no rows)"


def _customers(rows: pd.DataFrame) -> int | None:
    return int(rows["customer_id"].nunique()) if "customer_id" in rows.columns else None


def _champion_fit(comparison: Comparison):
    """The champion as registered: the production refit, else as evaluated at its last origin."""
    return comparison.production or comparison.evaluated.get(comparison.champion) or comparison.fitted.get(comparison.champion)


def reported_part(comparison: Comparison) -> tuple[str, TimeSplit, dict[str, Prediction]]:
    """(part name, the origin that predicts it, every candidate's prediction of it): the test part when there is one
    (it only reports), else validation. Calibration is read there."""
    if comparison.test_predictions:
        return TEST, comparison.split.origin(TEST), comparison.test_predictions
    return VALIDATION, comparison.split.origin(VALIDATION), comparison.predictions


# -- sections ----------------------------------------------------------------------------------------

def _header(family: ModelFamily, comparison: Comparison, lineage: CardLineage) -> str:
    table = comparison.table
    champion = comparison.champion
    rows = [
        {"": "family", "value": f"{family.name} (registered model `{family.registered_model}`)"},
        {"": "champion", "value": f"`{champion}` ({table.loc[champion, 'kind']})"},
        {"": "chosen by", "value": comparison.rule.describe()},
        {"": "what is registered", "value": "the champion's recipe refitted on all the data (the refit part)" if comparison.production is not None
         else "the champion as evaluated (fitted at the last origin it was judged at)"},
        {"": "code", "value": lineage.code_version or "unknown"},
        {"": "Dagster run", "value": lineage.dagster_run_id or "—"},
        {"": "MLflow run (comparison)", "value": lineage.mlflow_run_id or "—"},
    ]
    return (f"# Model card: {family.name}\n\n{family.description}\n\nEvery number below was measured by this training run "
            "(the comparison table, the split, the predictions of the validation and test rows) or computed from them when the card was written.\n\n"
            + card_table(rows))


def _data_section(comparison: Comparison, lineage: CardLineage) -> str:
    split = comparison.split
    rows = []
    for name in (FIT, VALIDATION, TEST, REFIT):
        if name not in split.parts:
            continue
        part = split.parts[name]
        rows.append({"part": name, "as of (features up to)": str(split.cutoff_of(name).date()),
                     "target window (days)": split.horizon_of(name) if split.horizon_of(name) else "none",
                     "rows": len(part), "customers": _customers(part), "role": PART_ROLES[name]})
    design = ("Holdout design: the labelled parts are disjoint sets of customers over one window (a randomised campaign), "
              "not successive windows.\n\n" if split.holdout else "")
    text = ["## Data window and lineage", "", design + card_table(rows), "",
            f"- training frame `{lineage.training_frame}`: sha256 `{lineage.training_frame_sha256 or 'unknown (no published manifest)'}`"]
    if lineage.inputs:
        text += ["- raw inputs as published when the models were compared:", "",
                 card_table([{"table": name, "rows": m.get("rows"), "sha256": m.get("sha256") or "unknown", "written at": m.get("written_at") or "—",
                          "by Dagster run": m.get("run_id") or "—"} for name, m in lineage.inputs.items()])]
    else:
        text.append("- raw inputs: no published manifest was found for them")
    return "\n".join(text)


def _hooks(family: ModelFamily) -> CardHooks:
    return family.card or CardHooks()


def _features_section(family: ModelFamily, comparison: Comparison) -> str:
    if _hooks(family).features is None:
        return "## Features\n\nThis family does not declare which input columns its models read (no `features` card hook)."
    fitted = _champion_fit(comparison)
    columns = list(_hooks(family).features(fitted)) if fitted is not None else []
    if not columns:
        return "## Features\n\nThe champion's input columns could not be read from the fitted model."
    return (f"## Features\n\nThe champion `{comparison.champion}` as registered reads {len(columns)} input column"
            f"{'s' if len(columns) != 1 else ''}:\n\n" + "\n".join(f"- `{c}`" for c in columns))


def _intervals(table: pd.DataFrame, name: str) -> list[str]:
    """Every ``<metric>_ci_low``/``_ci_high`` pair of a row, as ``metric [low, high]``."""
    out = []
    for column in table.columns:
        if str(column).endswith("_ci_low") and not str(column).startswith("delta"):
            metric = str(column).removesuffix("_ci_low")
            high = f"{metric}_ci_high"
            if high in table.columns and metric in table.columns:
                out.append(f"{metric} {_fmt(table.loc[name, metric])} [{_fmt(table.loc[name, column])}, {_fmt(table.loc[name, high])}]")
    return out


def _comparison_section(family: ModelFamily, comparison: Comparison) -> str:
    table, rule, champion = comparison.table, comparison.rule, comparison.champion
    metric, test_metric = rule.metric, f"test_{rule.metric}"
    rows = []
    for name in table.index:
        row = {"candidate": f"`{name}`" + (" (champion)" if name == champion else ""), "kind": table.loc[name, "kind"],
               "baseline": name in rule.baselines, f"{metric} (validation)": table.loc[name, metric]}
        if test_metric in table.columns:
            row[f"{metric} (test)"] = table.loc[name, test_metric]
        if "delta_vs_champion" in table.columns:
            row["Δ loss vs champion"] = table.loc[name, "delta_vs_champion"]
            row["interval"] = f"[{_fmt(table.loc[name, 'delta_ci_low'])}, {_fmt(table.loc[name, 'delta_ci_high'])}]"
        intervals = _intervals(table, name)
        if intervals:
            row["the metrics' own intervals"] = "; ".join(intervals)
        rows.append(row)
    text = ["## Comparison against baselines", "", f"The rule's metric is {rule.metric_label or metric} "
            f"({'higher' if rule.higher_is_better else 'lower'} is better).", "", card_table(rows), ""]
    noise = comparison.noise
    if noise is not None:
        text.append(f"Δ loss vs champion: the mean paired difference of the {_hooks(family).loss_label} on the validation rows, candidate minus "
                    f"champion (positive: worse than the champion); interval: {noise.level:.0%} percentile bootstrap over "
                    f"{noise.resamples:,} resamples of the same rows for every candidate.")
    present = [b for b in rule.baselines if b in table.index]
    if present:
        values = table.loc[present, metric].astype(float)
        best = str(values.idxmax() if rule.higher_is_better else values.idxmin())
        line = (f"Baselines: {', '.join(f'`{b}`' for b in present)} (the champion must beat every one on validation). The best, `{best}`, "
                f"scored {_fmt(table.loc[best, metric])} against the champion's {_fmt(table.loc[champion, metric])}")
        if "delta_ci_low" in table.columns and math.isfinite(float(table.loc[best, "delta_ci_low"])):
            low, high = float(table.loc[best, "delta_ci_low"]), float(table.loc[best, "delta_ci_high"])
            line += (f"; its paired loss difference to the champion has the interval [{_fmt(low)}, {_fmt(high)}], which "
                     + ("excludes zero: the champion is better beyond resampling noise." if low > 0 or high < 0
                        else "includes zero: on these rows the advantage is within resampling noise."))
        text.append("\n" + line + ("" if line.endswith(".") else "."))
    elif rule.baselines:
        text.append(f"\nNo baseline of the rule ({', '.join(rule.baselines)}) was compared in this run.")
    else:
        text.append("\nThis family's rule has no naive baseline rows; what every champion must beat instead is in the rule: "
                    + "; ".join(c.describe() for c in rule.constraints) + ".")
    notes = [f"- `{k}` failed: {v}" for k, v in comparison.failures.items()] + [f"- `{k}` skipped: {v}" for k, v in comparison.skipped.items()]
    if notes:
        text += ["", "Not compared:", *notes]
    return "\n".join(text)


def _calibration_section(family: ModelFamily, comparison: Comparison) -> str:
    if _hooks(family).calibration is None:
        return "## Calibration\n\nThis family defines no calibration measure (no `calibration` card hook): nothing was measured here."
    body = _hooks(family).calibration(comparison)
    if not _hooks(family).calibration_applies:
        return "## Calibration\n\nNot applicable to this family. " + body
    return "## Calibration\n\n" + body


def _history_bands(rows: pd.DataFrame) -> pd.Series | None:
    if HISTORY_COLUMN not in rows.columns:
        return None
    days = pd.to_numeric(rows[HISTORY_COLUMN], errors="coerce").to_numpy(dtype=float)
    labels = np.full(len(days), NO_HISTORY, dtype=object)
    for low, high, label in HISTORY_BANDS:
        labels[(days >= low) & (days < high)] = label
    return pd.Series(labels, index=rows.index)


def default_segment_metric(family: ModelFamily):
    """The family's metrics on the masked rows alone (their own origin split): ``metric_name`` of them."""

    def metric(origin: TimeSplit, prediction: Prediction, mask: np.ndarray, metric_name: str) -> float:
        rows = origin.validation.loc[mask].reset_index(drop=True)
        values = np.asarray(prediction.values)[mask]
        interval = prediction.interval
        if interval is not None:
            interval = type(interval)(*(np.asarray(a)[mask] for a in interval))
        subset = TimeSplit(origin.cutoff, origin.horizon_days, {VALIDATION: rows})
        return float(family.metrics(subset, Prediction(values, interval, prediction.diagnostics))[metric_name])

    return metric


def _by_segment(family: ModelFamily, comparison: Comparison, grouping: str) -> str | None:
    """The champion's metric per group of rows (history band or RFM segment), on validation and (with one) test."""
    metric = comparison.rule.metric
    compute = _hooks(family).segment_metric or default_segment_metric(family)
    origins = [(VALIDATION, comparison.split.origin(VALIDATION), comparison.predictions.get(comparison.champion))]
    if comparison.champion in comparison.test_predictions:
        origins.append((TEST, comparison.split.origin(TEST), comparison.test_predictions[comparison.champion]))
    columns: dict[str, dict[str, object]] = {}
    order: list[str] = []
    for part, origin, prediction in origins:
        if prediction is None:
            continue
        rows = origin.validation
        groups = _history_bands(rows) if grouping == "history" else (rows[SEGMENT_COLUMN].astype(str) if SEGMENT_COLUMN in rows.columns else None)
        if groups is None:
            return None
        labels = [b[2] for b in HISTORY_BANDS] + [NO_HISTORY] if grouping == "history" else sorted(groups.unique())
        for label in labels:
            mask = (groups == label).to_numpy()
            if label not in order and mask.any():
                order.append(label)
            entry = columns.setdefault(label, {})
            entry[f"{part} rows"] = int(mask.sum())
            if not mask.any():
                continue
            try:
                entry[f"{metric} ({part})"] = compute(origin, prediction, mask, metric)
            except ValueError:  # e.g. a ROC AUC of one class, an offer absent from the rows: not computable there
                entry[f"{metric} ({part})"] = float("nan")
        columns.setdefault("all rows", {}).update({f"{part} rows": len(rows), f"{metric} ({part})": compute(origin, prediction, np.ones(len(rows), dtype=bool), metric)})
    title = "history length (days from the first purchase to the as-of day)" if grouping == "history" else "RFM segment (as of each part's day)"
    rows_out = [{grouping if grouping == "history" else "rfm segment": label, **columns[label]} for label in [*order, "all rows"] if label in columns]
    return f"By {title}:\n\n" + card_table(rows_out)


def _segments_section(family: ModelFamily, comparison: Comparison) -> str:
    tables = [t for t in (_by_segment(family, comparison, "history"), _by_segment(family, comparison, SEGMENT_COLUMN)) if t]
    intro = (f"The champion `{comparison.champion}`'s {comparison.rule.metric} on the rows of each group, computed for this card from "
             "its predictions; the last row is every row (it equals the comparison table's value). \"—\": not computable on those rows "
             "(e.g. one class only). Small groups are noisy: read the row counts.")
    if not tables:
        return "## Metrics by segment\n\nThe rows carry neither a history length nor an RFM segment: no breakdown is possible."
    return "## Metrics by segment\n\n" + intro + "\n\n" + "\n\n".join(tables)


def gate_section(gate: GateRecord | None, family_name: str, rule: ChampionRule) -> str:
    """The card's gate section: ``gate``'s decision, or pending (``gate`` None or undecided)."""
    how = (f"The rule: the new champion's {rule.metric} may be at most {gate.tolerance:g} (relative to the incumbent's value) "
           f"{'below' if rule.higher_is_better else 'above'} the registered champion's, both on this run's validation rows "
           "(with a production refit: the incumbent's recipe refitted on this run's data), and must keep the rule's constraints."
           if gate is not None else "")
    if gate is None or gate.passed is None:
        check = gate.check if gate is not None else "the gate"
        return (f"{GATE_HEADING}\n\nNot decided when this card was written: the blocking check `{check}` decides before "
                f"`{family_name}_champion` registers anything, and completes this card with its decision (logged to the same MLflow run "
                f"as `model_card.md`, shown in the check's metadata, and attached to the registered version on promotion). {how}")
    verdict = "**passed**: the champion may be registered" if gate.passed else "**refused**: nothing is registered and the alias stays where it was"
    facts = [{"fact": k, "value": v} for k, v in gate.facts.items()]
    return (f"{GATE_HEADING}\n\nThe blocking check `{gate.check}` {verdict}.\n\n{gate.description}\n\n{how}"
            + ("\n\n" + card_table(facts) if facts else ""))


def _limitations_section(family: ModelFamily, comparison: Comparison) -> str:
    split = comparison.split
    rows = split.validation
    items = []
    if HISTORY_COLUMN in rows.columns:
        days = pd.to_numeric(rows[HISTORY_COLUMN], errors="coerce")
        short = float((days < SHORT_HISTORY_DAYS).mean())
        none = float(days.isna().mean())
        items.append(f"{short:.1%} of the validation rows have a purchase history shorter than {SHORT_HISTORY_DAYS} days and "
                     f"{none:.1%} none at all: their scores rest more on the population than on their own behaviour")
        if days.notna().any():
            items.append(f"the longest history in the validation rows is {int(days.max()):,} days; "
                         + (f"the target window is {split.horizon_days} days: nothing beyond it was measured" if split.horizon_days
                            else f"the family has no target window: its rows describe one as-of day ({split.cutoff.date()})"))
    else:
        items.append("the rows carry no history length (profile mode): nothing about history was measured")
    if "profile_basis" in rows.columns:
        for basis in sorted(rows["profile_basis"].dropna().astype(str).unique()):
            items.append(f"{(rows['profile_basis'] == basis).mean():.0%} of the validation rows: " + PROFILE_NOTES.get(basis, f"profile basis {basis}"))
    items.append(f"the champion was chosen on {len(rows):,} validation rows ({_customers(rows) or len(rows):,} customers); "
                 "with fewer rows the intervals above are wider")
    missing = comparison.table.get("customers_without_prediction")
    if missing is not None and float(missing.get(comparison.champion, 0) or 0) > 0:
        items.append(f"the champion had no prediction for {int(missing[comparison.champion]):,} validation rows")
    items += list(_hooks(family).limitations)
    return "## Known limitations\n\n" + "\n".join(f"- {i}" for i in items)


def _use_section(family: ModelFamily) -> str:
    hooks = _hooks(family)
    return ("## Intended use\n\n" + (hooks.intended_use or "Not written for this family (no `intended_use` card hook).")
            + "\n\n## Misuse (do not)\n\n" + ("\n".join(f"- {m}" for m in hooks.misuse) or "Not written for this family (no `misuse` card hook)."))


def model_card(family: ModelFamily, comparison: Comparison, lineage: CardLineage, gate: GateRecord | None = None) -> str:
    """The family's model card for this comparison, as Markdown (the gate ``pending`` when ``gate`` has no decision)."""
    sections = [_header(family, comparison, lineage), _data_section(comparison, lineage), _features_section(family, comparison),
                _comparison_section(family, comparison), _calibration_section(family, comparison), _segments_section(family, comparison),
                gate_section(gate, family.name, comparison.rule), _limitations_section(family, comparison), _use_section(family)]
    return "\n\n".join(sections) + "\n"


def with_gate(card: str, section: str) -> str:
    """``card`` with its gate section replaced by ``section`` (a ``gate_section``)."""
    start = card.index(GATE_HEADING)
    end = card.find("\n## ", start + len(GATE_HEADING))
    return card[:start] + section.rstrip("\n") + ("\n\n" + card[end + 1:] if end >= 0 else "\n")
