"""Uplift end to end: learners tracked in MLflow, a gated champion, uplift in scored_customers, and campaign_targets on disk."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_intel.planner.plan import TARGET_COLUMNS
from customer_intel_tests.conftest import (
    SMALL_END_DATE,
    materialize_graph,
    published,
    step_failures,
    trained_family,
    write_raw,
)

pytestmark = pytest.mark.e2e
# 600 customers are too few for a Qini above the random band: the wiring, not the model, is under test here
TRAIN_CONFIG = {"ops": {"uplift_models": {"config": {"include": ["response", "t_logistic", "class_transformation"],
                                                     "require_above_random": False}}}}
PLAN_CONFIG = {"ops": {"campaign_targets": {"config": {"value_source": "fixed", "fixed_value": 400.0, "budget": 60.0}}}}


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    with trained_family(small_frames, tmp_path_factory.mktemp("uplift"), "uplift", TRAIN_CONFIG) as trained_run:
        yield trained_run


def test_every_learner_is_chosen_on_cross_validated_qini_reported_on_held_out_customers_and_tracked(trained):
    result, _, root = trained
    table = pd.read_parquet(published(root / "warehouse" / "uplift_models")).set_index("candidate")
    assert set(table.index) == {"response", "t_logistic", "class_transformation"} and table["champion"].sum() == 1
    for column in ("qini", "qini_ci_low", "random_band_high", "auuc", "uplift_at_30", "test_qini", "test_qini_ci_high",
                   "test_random_band_low", "test_uplift_at_10", "fit_seconds"):
        assert table[column].notna().all(), column
    frame = pd.read_parquet(published(root / "warehouse" / "uplift_training_frame"))
    assert set(frame["split"]) == {"validation", "test", "refit"} and (frame["split_design"] == "holdout").all()
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert "data:image/png;base64," in meta["uplift_models"]["qini_curve"].value
    assert "Qini" in meta["uplift_models"]["champion_rule"].value
    runs = mlflow.search_runs(experiment_names=["customer_intel"], filter_string="tags.family = 'uplift'")
    assert set(runs["tags.candidate"].dropna()) >= {"response", "t_logistic", "class_transformation"}
    version = MlflowClient().get_model_version_by_alias("customer_intel_uplift", "champion")
    assert version.tags["candidate"] == table.loc[table["champion"]].index[0]


def test_the_nightly_scores_and_the_target_list(trained):
    _, raw_dir, root = trained
    result = materialize_graph(raw_dir, root / "warehouse", groups=("ingest", "features", "scoring"), run_config=PLAN_CONFIG)
    assert result.success, step_failures(result)
    scored = pd.read_parquet(published(root / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    offer = "uplift_for_camp_2026_05_reactivate"
    assert {"uplift", "uplift_best_offer", "uplift_quadrant", "uplift_response_control", offer, "uplift_model"} <= set(scored.columns)
    assert scored[offer].notna().all() and (scored["uplift"] == scored[offer]).all()
    assert set(scored["uplift_quadrant"]) <= {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}
    # marketing reads the list with plain pandas from the partition path
    targets = pd.read_parquet(root / "warehouse" / "campaign_targets" / f"date={SMALL_END_DATE}")
    assert list(targets.columns) == list(TARGET_COLUMNS)
    assert 0 < len(targets) <= 60 and targets["contact_cost"].sum() <= 60.0
    assert (targets["expected_incremental_profit"] > 0).all() and targets["rank"].tolist() == list(range(1, len(targets) + 1))
    assert targets["customer_id"].isin(scored["customer_id"]).all() and targets["message"].str.len().gt(0).all()
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    plan = meta["campaign_targets"]
    assert plan["targeted"].value == len(targets) and plan["spend"].value <= 60.0
    assert "by churn_risk" not in plan["policies"].value or "random" in plan["policies"].value
    assert "random" in plan["policies"].value and "planner" in plan["policies"].value


def test_without_a_campaign_table_uplift_is_skipped_and_the_target_list_is_empty(small_frames, tmp_path):
    raw_dir = write_raw(small_frames, tmp_path / "raw", fmt="parquet", tables=("transactions", "customers"))
    result = materialize_graph(raw_dir, tmp_path / "warehouse", partition=None, groups=("ingest", "uplift"))
    assert result.success, step_failures(result)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not materialized & {"uplift_training_frame", "uplift_models", "uplift_champion"}
    skipped = [e for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]
    assert skipped, "the rest of the family's training is skipped, not failed"
    result = materialize_graph(raw_dir, tmp_path / "warehouse", groups=("ingest", "features", "scoring"))
    assert result.success, step_failures(result)
    targets = pd.read_parquet(tmp_path / "warehouse" / "campaign_targets" / f"date={SMALL_END_DATE}")
    assert targets.empty and list(targets.columns) == list(TARGET_COLUMNS)
    assert str(targets["rank"].dtype) == "int64" and str(targets["expected_incremental_profit"].dtype) == "float64"
    scored = pd.read_parquet(published(tmp_path / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert scored["uplift"].isna().all() and scored["uplift_quadrant"].isna().all()


LIGHT = {"include": ["t_logistic"], "require_above_random": False}


@pytest.fixture(scope="module")
def campaign_frames():
    """5,000 customers: enough responders in each of two arms for a Qini above zero (600 are not)."""
    from customer_intel.synthetic import generate_bank

    return generate_bank(n_customers=5000, seed=7, end_date=SMALL_END_DATE).frames()


def _train_and_plan(raw_dir, warehouse, frame_config=None):
    train = {"ops": {"uplift_models": {"config": LIGHT}, **({"uplift_training_frame": {"config": frame_config}} if frame_config else {})}}
    result = materialize_graph(raw_dir, warehouse, partition=None, groups=("ingest", "uplift"), run_config=train)
    assert result.success, step_failures(result)
    result = materialize_graph(raw_dir, warehouse, groups=("ingest", "features", "scoring"), run_config=PLAN_CONFIG)
    assert result.success, step_failures(result)
    return (pd.read_parquet(published(warehouse / "scored_customers" / f"date={SMALL_END_DATE}")),
            pd.read_parquet(warehouse / "campaign_targets" / f"date={SMALL_END_DATE}"))


def test_a_multi_arm_campaign_file_runs_end_to_end(campaign_frames, tmp_path):
    """A campaign export with an arm column (two offers and a holdout label) and no treated column, through the pipeline."""
    campaigns = campaign_frames["campaigns"].copy()
    rng = np.random.default_rng(1)
    campaigns["arm"] = np.where(campaigns.pop("treated") == 1, np.where(rng.random(len(campaigns)) < 0.5, "Cashback 5%", "Miles x2"), "holdout")
    raw_dir = write_raw({**campaign_frames, "campaigns": campaigns}, tmp_path / "raw", fmt="parquet")
    scored, targets = _train_and_plan(raw_dir, tmp_path / "warehouse", {"control_arm": "holdout"})
    assert {"uplift_for_cashback_5", "uplift_for_miles_x2"} <= set(scored.columns)
    assert set(scored["uplift_best_offer"]) <= {"Cashback 5%", "Miles x2"}
    assert len(targets) and set(targets["campaign"]) <= {"Cashback 5%", "Miles x2"}


def test_a_profile_only_campaign_file_runs_end_to_end(campaign_frames, tmp_path):
    """Customers and a campaign, no transactions: profile-mode features train and score the uplift, the plan uses a fixed value."""
    raw_dir = write_raw(campaign_frames, tmp_path / "raw", fmt="csv", tables=("customers", "campaigns"))
    scored, targets = _train_and_plan(raw_dir, tmp_path / "warehouse")
    assert (scored["feature_mode"] == "profile").all() and scored["uplift"].notna().all()
    assert len(targets) and (targets["value_of_response"] == 400.0).all() and targets["cltv"].isna().all()
