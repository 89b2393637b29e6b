"""A new model family needs only a spec plus domain code: a tiny one goes through the factory end to end.

The family below (P(active in the next horizon) from RFM, a logistic regression against a base
rate) is defined here and nowhere else: one ``materialize`` run builds its training frame,
compares and tracks its candidates, passes the gate, moves the alias, scores the day's customers
from the alias and joins them into ``scored_customers`` next to CLTV, which has no champion in
this registry and so contributes null columns.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from customer_intel.assets import FAMILIES, features, ingest
from customer_intel.assets.factory import CandidatesConfig, FamilySpec, TrainingFrameConfig, champion_assets
from customer_intel.assets.scoring import build_scored_customers
from customer_intel.features import calibration_holdout_frame
from customer_intel.features.rfm import as_of_day
from customer_intel.modeling import FIT, VALIDATION, ChampionRule, ModelFamily, Prediction, ScorerInfo, TimeSplit
from customer_intel_tests.conftest import SMALL_END_DATE, pipeline_resources, published, step_failures, write_raw

pytestmark = pytest.mark.e2e
INPUTS = ["recency", "frequency", "monetary"]


def tiny_split(inputs, cutoff=None, horizon_days=60) -> TimeSplit:
    transactions = inputs["raw_transactions"]
    day = as_of_day(cutoff) if cutoff else as_of_day(transactions["ts"].max()) - pd.Timedelta(days=horizon_days)
    fit_day = day - pd.Timedelta(days=horizon_days)
    parts = {FIT: calibration_holdout_frame(transactions, None, fit_day, horizon_days),
             VALIDATION: calibration_holdout_frame(transactions, None, day, horizon_days)}
    return TimeSplit(day, horizon_days, parts, {FIT: fit_day, VALIDATION: day}, {FIT: horizon_days, VALIDATION: horizon_days})


@dataclass
class TinyScorer:
    model: object
    cutoff: str
    horizon_days: int
    candidate: str

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("tiny", self.candidate, self.cutoff, self.horizon_days, "test")

    @property
    def output_columns(self):
        return ("p_active",)

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.model.predict_proba(frame[INPUTS].to_numpy(float))[:, 1] if self.model is not None else np.full(len(frame), 0.5)
        return pd.DataFrame({"p_active": p}, index=frame.index)


@dataclass
class Fitted:
    scorer: TinyScorer | None
    rate: float | None = None

    def predict(self, frame):
        if self.scorer is None:
            return Prediction(np.full(len(frame), self.rate))
        return Prediction(self.scorer.score(frame)["p_active"].to_numpy())

    def params(self):
        return {"rate": self.rate} if self.scorer is None else {"C": self.scorer.model.C}

    def to_scorer(self):
        return self.scorer


@dataclass
class BaseRate:
    name: str = "base_rate"
    kind: str = "baseline"

    def fit(self, split):
        return Fitted(None, float((split.fit["holdout_purchases"] > 0).mean()))


@dataclass
class Logistic:
    C: float
    name: str = "logistic"
    kind: str = "ml"

    def fit(self, split):
        model = LogisticRegression(C=self.C).fit(split.fit[INPUTS].to_numpy(float), split.fit["holdout_purchases"] > 0)
        return Fitted(TinyScorer(model, str(split.cutoff.date()), split.horizon_days, self.name))


def brier(split, prediction):
    active = (split.validation["holdout_purchases"] > 0).to_numpy(float)
    return {"brier": float(np.mean((prediction.values - active) ** 2)), "active_rate": float(active.mean())}


TINY = ModelFamily(
    name="tiny", description="P(active in the horizon) from RFM.", rule=ChampionRule("brier", baselines=("base_rate",)),
    build_split=tiny_split, candidates=lambda C=1.0: [BaseRate(), Logistic(C)], metrics=brier,
    evaluate_scorer=lambda scorer, split: Prediction(scorer.score(split.validation)["p_active"].to_numpy()),
    score_columns=("p_active",), target_columns=("holdout_purchases", "holdout_spend", "holdout_days"), needs_transactions=True,
)


class TinyModelsConfig(CandidatesConfig):
    C: float = 1.0


class TinyFrameConfig(TrainingFrameConfig):
    horizon_days: int = 60


tiny = champion_assets(FamilySpec(TINY, inputs=("raw_transactions",), frame_config=TinyFrameConfig, models_config=TinyModelsConfig))
cltv = FAMILIES[0]
scored = build_scored_customers([cltv.contribution, tiny.contribution])
# CLTV contributes its daily scores but is not trained here: it has no champion in this registry
ASSETS = [*dg.load_assets_from_modules([ingest, features]), *tiny.assets, cltv.scores, scored, *tiny.checks]


def run(root, raw_dir, frame_config=None, models_config=None, gate_config=None):
    ops = {"tiny_training_frame": {"config": frame_config or {}}, "tiny_models": {"config": models_config or {}},
           "tiny_models_tiny_champion_not_worse": {"config": gate_config or {}}}
    return dg.materialize(ASSETS, partition_key=SMALL_END_DATE,
                          resources=pipeline_resources(raw_dir, root / "warehouse"), raise_on_error=False,
                          run_config={"ops": ops}, instance=dg.DagsterInstance.ephemeral())


@pytest.fixture(scope="module")
def first_run(small_frames, tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    raw_dir = write_raw(small_frames, root / "raw", fmt="parquet")
    result = run(root, raw_dir)
    assert result.success, step_failures(result)
    return result, root, raw_dir


def test_a_spec_and_domain_code_are_all_a_family_needs(first_run):
    result, root, _ = first_run
    materialized = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert {"tiny_training_frame", "tiny_models", "tiny_champion", "tiny_scores", "cltv_scores", "scored_customers"} <= set(materialized)
    assert materialized["tiny_models"]["champion"].value == "logistic"
    assert "lowest brier on the validation window, among candidates that beat every naive baseline" in materialized["tiny_models"]["champion_rule"].value
    [gate] = [e for e in result.get_asset_check_evaluations() if e.check_name == "tiny_champion_not_worse"]
    assert gate.passed and gate.description == "no registered champion yet"
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    version = client.get_model_version_by_alias("customer_intel_tiny", "champion")
    assert int(version.version) == 1 and version.tags["candidate"] == "logistic"
    runs = {r.data.tags["candidate"]: r for r in client.search_runs([client.get_experiment_by_name("customer_intel").experiment_id])
            if "candidate" in r.data.tags}
    assert set(runs) == {"base_rate", "logistic"} and runs["logistic"].data.params["C"] == "1.0"
    # the model card: written with the gate pending by tiny_models, completed by the gate, attached to the version it registered
    pending = materialized["tiny_models"]["model_card"].value
    assert pending.startswith("# Model card: tiny") and "Not decided when this card was written" in pending
    card = gate.metadata["model_card"].value
    assert "The blocking check `tiny_champion_not_worse` **passed**" in card and "no registered champion yet" in card
    assert card.replace(card[card.index("## What the gate decided"):card.index("## Known limitations")], "") == \
        pending.replace(pending[pending.index("## What the gate decided"):pending.index("## Known limitations")], "")
    assert "This family does not declare which input columns" in card  # a family without card hooks still gets an honest card
    assert card_artifact(client, runs["logistic"].data.tags["mlflow.parentRunId"], root) == card
    assert version.tags["model_card"] == f"runs:/{version.run_id}/model_card.md"
    assert card_artifact(client, version.run_id, root) == card == materialized["tiny_champion"]["model_card"].value

    scored = pd.read_parquet(published(root / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    daily = pd.read_parquet(published(root / "warehouse" / "tiny_scores" / f"date={SMALL_END_DATE}"))
    assert len(scored) == len(daily) == scored["customer_id"].nunique() == 600
    assert scored["tiny_p_active"].between(0, 1).all() and scored["tiny_model"].eq("customer_intel_tiny v1 (logistic)").all()
    assert scored["tiny_horizon_days"].eq(60).all()
    # CLTV has no champion here: its columns are there, null, and the join did not fail
    assert scored["cltv"].isna().all() and scored["cltv_p_alive"].isna().all() and scored["cltv_model"].isna().all()
    assert "no cltv champion registered" in materialized["cltv_scores"]["model"].value
    assert materialized["scored_customers"]["cltv_model"].value == "none: see cltv_scores"
    columns = list(scored.columns)
    assert columns.index("rfm_segment") < columns.index("cltv_p_alive") < columns.index("tiny_p_active") < columns.index("T")


def card_artifact(client: MlflowClient, run_id: str, root) -> str:
    folder = root / "downloads" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return (Path(client.download_artifacts(run_id, "model_card.md", str(folder)))).read_text()


def test_the_gate_refuses_an_incumbent_fitted_past_this_runs_cutoff(first_run):
    _, root, raw_dir = first_run
    earlier = run(root, raw_dir, frame_config={"cutoff": "2026-02-01"})
    [gate] = [e for e in earlier.get_asset_check_evaluations() if e.check_name == "tiny_champion_not_worse"]
    assert not gate.passed
    assert gate.description.startswith("refusing to compare with champion v1: it was fitted on data up to 2026-05-01, 89 days after this run's cutoff 2026-02-01")
    assert gate.description.endswith("to compare anyway, set compare_with_later_incumbent on this check.")
    assert gate.metadata["current_cutoff"].value == "2026-05-01" and gate.metadata["cutoff"].value == "2026-02-01"
    materialized = {m.materialization.asset_key.to_user_string() for m in earlier.get_asset_materialization_events()}
    assert "tiny_models" in materialized and "tiny_champion" not in materialized
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    # the refusal is on the card: in the check's metadata and over the pending card in the comparison's MLflow run
    card = gate.metadata["model_card"].value
    assert "The blocking check `tiny_champion_not_worse` **refused**: nothing is registered" in card and gate.description in card
    assert re.search(r"\| current_cutoff\s+\| 2026-05-01\s+\|", card)
    parent = pd.read_parquet(published(root / "warehouse" / "tiny_models"))["mlflow_parent_run_id"].iloc[0]
    assert card_artifact(client, parent, root) == card
    assert int(client.get_model_version_by_alias("customer_intel_tiny", "champion").version) == 1
    # asked to, the gate compares anyway and says what it compared
    anyway = run(root, raw_dir, frame_config={"cutoff": "2026-02-01"}, gate_config={"compare_with_later_incumbent": True})
    [gate] = [e for e in anyway.get_asset_check_evaluations() if e.check_name == "tiny_champion_not_worse"]
    assert gate.description.endswith("compared although the incumbent saw data up to 2026-05-01 (compare_with_later_incumbent)")
    assert gate.metadata["current_brier"].value > 0


def test_a_candidate_name_the_family_does_not_have_is_a_clear_failure(first_run):
    _, root, raw_dir = first_run
    result = run(root, raw_dir, models_config={"candidates": ["logistc"]})
    assert not result.success
    assert step_failures(result)["tiny_models"] == "tiny_models: unknown candidates ['logistc']; choose from ['base_rate', 'logistic']"
