"""The model card generator on real comparisons of every family (light candidates, 600 customers): its sections are there,
its numbers are the comparison table's and the split's, the gate's decision (pending, passed, refused) is what the check
said, and no section claims what was not measured."""

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from customer_intel.churn.family import CHURN, LABEL
from customer_intel.churn.metrics import expected_calibration_error
from customer_intel.cltv.family import CLTV
from customer_intel.cltv.frames import TARGET
from customer_intel.embeddings.family import EMBEDDINGS
from customer_intel.modeling import TEST, VALIDATION
from customer_intel.modeling.card import GATE_HEADING, CardHooks, CardLineage, GateRecord, card_table, gate_section, model_card, with_gate
from customer_intel.segmentation.family import SEGMENTATION
from customer_intel.uplift.family import UPLIFT

FAMILIES = {f.name: f for f in (CLTV, CHURN, SEGMENTATION, UPLIFT, EMBEDDINGS)}
LIGHT = {"cltv": {"regressors": ["ridge"], "transaction_models": ["bgnbd"]}, "churn": {"include": ["bgnbd", "logistic"]},
         "segmentation": {"methods": ["kmeans", "gmm"], "refits": 2},
         "uplift": {"include": ["response", "t_logistic"], "require_above_random": False},
         "embeddings": {"include": ["rfm_behaviour", "customer2vec"], "dim": 16, "epochs": 3}}
SECTIONS = ["# Model card: ", "## Data window and lineage", "## Features", "## Comparison against baselines", "## Calibration",
            "## Metrics by segment", GATE_HEADING, "## Known limitations", "## Intended use", "## Misuse (do not)"]
LINEAGE = CardLineage("x_training_frame", "ab" * 32, {"raw_transactions": {"rows": 1234, "sha256": "cd" * 32, "written_at": "2026-06-30T00:00:00",
                                                                          "run_id": "ingest-run"}}, "git:abc", "dagster-run", "mlflow-run")


@pytest.fixture(scope="module")
def comparisons(small_frames):
    inputs = {"raw_transactions": small_frames["transactions"], "raw_customers": small_frames["customers"],
              "raw_campaigns": small_frames["campaigns"]}
    cache = {}

    def compare(name):
        if name not in cache:
            family = FAMILIES[name]
            cache[name] = family.compare(family.split(inputs), log=lambda message: None, **LIGHT[name])
        return cache[name]

    return compare


def card_of(name, comparisons, gate=None):
    return model_card(FAMILIES[name], comparisons(name), LINEAGE, gate or GateRecord(f"{name}_champion_not_worse", 0.02))


def row(card: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first_cell`` (the first such row)."""
    line = next(line for line in card.splitlines() if re.match(rf"\|\s*{re.escape(first_cell)}\s*\|", line))
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def fmt(value) -> str:
    return card_table([{"v": value}]).splitlines()[-1].strip("| ").strip()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_section_is_there_and_its_numbers_are_the_tables_and_the_splits(name, comparisons):
    comparison, card = comparisons(name), card_of(name, comparisons)
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions), "sections out of order"
    table, metric, champion = comparison.table, comparison.rule.metric, comparison.champion
    # the comparison: one row per candidate, the champion's metric as the table has it, baselines marked
    for candidate in table.index:
        cells = row(card, f"`{candidate}`" + (" (champion)" if candidate == champion else ""))
        assert cells[2] == ("yes" if candidate in comparison.rule.baselines else "no")
        assert cells[3] == fmt(float(table.loc[candidate, metric]))
        assert f"[{fmt(float(table.loc[candidate, 'delta_ci_low']))}, {fmt(float(table.loc[candidate, 'delta_ci_high']))}]" in cells
    # the data window: rows and customers of every part, as the split has them
    for part, rows in comparison.split.parts.items():
        cells = row(card, part)
        assert cells[1] == str(comparison.split.cutoff_of(part).date()) and cells[3] == fmt(len(rows))
        assert cells[4] == fmt(rows["customer_id"].nunique())
    assert f"sha256 `{'ab' * 32}`" in card and "| raw_transactions |" in card and "ingest-run" in card
    # by segment: computed from the predictions, and over every row it is the comparison table's own number
    all_rows = row(card[card.index("By history length"):], "all rows")
    assert all_rows[2] == fmt(float(table.loc[champion, metric]))
    if comparison.test_predictions:
        assert all_rows[4] == fmt(float(table.loc[champion, f"test_{metric}"]))
    bands = card[card.index("By history length"):card.index("By RFM segment")]
    counted = sum(int(row(bands, label)[1].replace(",", "")) for label in ("under 90 days", "90 days to 1 year", "1 to 2 years",
                                                                             "2 years or more", "no purchase yet") if f"| {label}" in bands)
    assert counted == len(comparison.split.validation)
    assert "Not decided when this card was written" in card and card.endswith("\n")


def test_churn_calibration_is_the_test_rows_ece_and_reliability_table(comparisons):
    comparison, card = comparisons("churn"), card_of("churn", comparisons)
    test = comparison.split.origin(TEST).validation
    p = comparison.test_predictions[comparison.champion].values
    ece = expected_calibration_error(test[LABEL].to_numpy(), p)
    assert ece == pytest.approx(comparison.table.loc[comparison.champion, "test_ece"])
    assert f"expected calibration error is {ece:.4f}" in card and f"On the test rows ({len(test):,} customers" in card
    section = card[card.index("## Calibration"):card.index("## Metrics by segment")]
    bins = [line for line in section.splitlines() if line.startswith("| [")]
    assert sum(int(row(section, b.split("|")[1].strip())[1]) for b in bins) == len(test)


def test_cltv_calibration_compares_the_forecast_total_with_what_happened(comparisons):
    comparison, card = comparisons("cltv"), card_of("cltv", comparisons)
    test = comparison.split.origin(TEST).validation
    predicted = np.asarray(comparison.test_predictions[comparison.champion].values, dtype=float)
    assert f"forecast {predicted.sum():,.1f} repeat purchase days in total against {test[TARGET].sum():,.0f} observed" in card
    assert f"held {float(comparison.table.loc[comparison.champion, 'test_interval_coverage']):.1%} of the actual counts" in card


def test_where_calibration_does_not_apply_the_card_says_so_and_gives_what_applies(comparisons):
    segmentation, card = comparisons("segmentation"), card_of("segmentation", comparisons)
    champion = segmentation.table.loc[segmentation.champion]
    assert "## Calibration\n\nNot applicable to this family. Segments are labels" in card
    assert f"adjusted Rand index of {float(champion['stability']):.3f}" in card
    assert "(test)" not in card and "| test " not in card  # segmentation has no test window: nothing claims one
    assert "This family's rule has no naive baseline rows" in card
    embeddings = comparisons("embeddings")
    card = card_of("embeddings", comparisons)
    assert "## Calibration\n\nNot applicable to this family. Embeddings are vectors" in card
    assert f"{float(embeddings.table.loc[embeddings.champion, 'next_category_accuracy']):.1%}" in card
    uplift = card_of("uplift", comparisons)
    assert "## Calibration\n\nThe champion" in uplift and "quintile of predicted uplift" in uplift


def test_the_gate_section_says_what_the_check_decided(comparisons):
    pending = card_of("churn", comparisons)
    rule = comparisons("churn").rule
    refused = with_gate(pending, gate_section(GateRecord("churn_champion_not_worse", 0.02, False, "bgnbd (brier 0.0500) is worse than "
                                                         "champion v3 (0.0400) beyond the tolerance (limit 0.0408)",
                                                         {"new_brier": 0.05, "current_brier": 0.04, "limit": 0.0408, "current_version": 3}),
                                              "churn", rule))
    assert "The blocking check `churn_champion_not_worse` **refused**: nothing is registered and the alias stays where it was" in refused
    assert "is worse than champion v3 (0.0400) beyond the tolerance" in refused and "Not decided" not in refused
    assert row(refused, "current_version") == ["current_version", "3"] and row(refused, "limit") == ["limit", "0.0408"]
    assert "may be at most 0.02 (relative to the incumbent's value) above the registered champion's" in refused
    # everything but the gate section is the pending card's
    cut = slice(refused.index(GATE_HEADING), refused.index("## Known limitations"))
    assert refused.replace(refused[cut], "") == pending.replace(pending[pending.index(GATE_HEADING):pending.index("## Known limitations")], "")
    passed = with_gate(refused, gate_section(GateRecord("churn_champion_not_worse", 0.02, True, "no registered champion yet"), "churn", rule))
    assert "**passed**: the champion may be registered" in passed and "refused" not in passed


def test_no_section_claims_what_was_not_measured(comparisons):
    comparison = comparisons("churn")
    # a family without card hooks (but churn's per-segment Brier, so the test does not bootstrap AUCs per segment): the
    # sections say what it does not declare instead of inventing it
    bare = model_card(dataclasses.replace(CHURN, card=CardHooks(segment_metric=CHURN.card.segment_metric)), comparison, LINEAGE)
    assert "does not declare which input columns" in bare and "defines no calibration measure" in bare
    assert "Not written for this family" in bare and "ECE" not in bare and "expected calibration error" not in bare
    # rows without a history length or a profile basis (profile mode): no history statement, no profile claim
    split = comparison.split
    stripped = dataclasses.replace(split, parts={k: v.drop(columns=["T", "profile_basis"]) for k, v in split.parts.items()})
    card = model_card(CHURN, dataclasses.replace(comparison, split=stripped), CardLineage("churn_training_frame"))
    assert "the rows carry no history length (profile mode)" in card and "By history length" not in card
    assert "snapshot" not in card and "valid_from" not in card
    assert "sha256 `unknown (no published manifest)`" in card and "raw inputs: no published manifest" in card
    # the profile note is the rows' own basis
    basis = set(split.validation["profile_basis"])
    assert ("left out of these rows" in card_of("churn", comparisons)) == ("snapshot_excluded" in basis)
    # the short-history share is measured on the validation rows
    days = pd.to_numeric(split.validation["T"], errors="coerce")
    assert f"{(days < 90).mean():.1%} of the validation rows have a purchase history shorter than 90 days" in card_of("churn", comparisons)
    assert comparison.split.origin(VALIDATION).validation is split.validation


def test_the_features_are_what_each_fitted_candidate_reads(comparisons):
    cltv = comparisons("cltv")
    ridge = CLTV.card.features(cltv.evaluated["ridge"])  # a refit wrapped with its conformal band
    assert {"frequency", "t_x", "T", "monetary_value", "stack_p_alive", "stack_expected_purchases", "spend_90d"} <= set(ridge)
    assert CLTV.card.features(cltv.fitted["baseline_zero"]) == [] and CLTV.card.features(cltv.fitted["baseline_rate"]) == ["T", "frequency"]
    churn = comparisons("churn")
    assert CHURN.card.features(churn.fitted["bgnbd"]) == ["T", "frequency", "recency", "t_x"]
    assert "avg_ticket" in CHURN.card.features(churn.fitted["logistic"])
    champion = CHURN.card.features(churn.production)
    card = card_of("churn", comparisons)
    assert f"reads {len(champion)} input column" in card and all(f"- `{c}`" in card for c in champion)
