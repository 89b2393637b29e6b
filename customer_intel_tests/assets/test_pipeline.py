"""End-to-end materialisations of the whole graph on a small generated bank."""

from pathlib import Path

import pandas as pd
import pytest

from customer_intel.assets import FAMILIES
from customer_intel.features import SEGMENT_NAMES, calibration_holdout_frame
from customer_intel.ingest import CAMPAIGNS, CUSTOMERS, TRANSACTIONS, rules_for
from customer_intel_tests.conftest import SMALL_END_DATE, good_pipeline, materialize_graph, published, step_failures, write_raw

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(small_frames, tmp_path_factory):
    result, _, warehouse = good_pipeline(small_frames, tmp_path_factory.mktemp("pipeline"), fmt="parquet")
    return result, warehouse


def test_every_asset_and_check_succeeds(pipeline):
    result, _ = pipeline
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events() for m in [m.materialization]}
    assert materialized == {"raw_transactions", "raw_customers", "raw_campaigns", "customer_features", "cltv_scores",
                            "segment_assignments", "churn_scores", "uplift_scores", "scored_customers",
                            "campaign_targets", "customer_embeddings", "lookalike_audience"}
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[("scored_customers", "one_row_per_customer")] and checks[("raw_transactions", "no_duplicate_rows")]
    assert all(checks.values()) and len(checks) == sum(len(rules_for(c)) for c in (TRANSACTIONS, CUSTOMERS, CAMPAIGNS)) + 2


def test_scored_partition_is_complete_and_readable(pipeline, small_frames):
    _, warehouse = pipeline
    folder = warehouse / "scored_customers" / f"date={SMALL_END_DATE}"
    assert (folder / "_SUCCESS").is_file()
    scored = pd.read_parquet(published(folder))
    assert scored["customer_id"].is_unique and len(scored) == len(small_frames["customers"])
    assert scored.columns[:11].tolist() == [
        "customer_id", "as_of", "feature_mode", "recency", "frequency", "monetary",
        "r_score", "f_score", "m_score", "rfm_score", "rfm_segment",
    ]
    assert set(scored["rfm_segment"]) <= set(SEGMENT_NAMES) and scored["rfm_segment"].nunique() >= 8
    assert (scored["as_of"] == pd.Timestamp(SMALL_END_DATE, tz="UTC")).all()
    assert {"channel_share_online", "category_entropy", "t_x", "T"} <= set(scored.columns)
    # the bank's profile attributes stay in customer_features: the export carries those CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS names (none)
    assert not set(small_frames["customers"].columns) - {"customer_id"} & set(scored.columns)
    features = pd.read_parquet(published(warehouse / "customer_features" / f"date={SMALL_END_DATE}"))
    assert "Avg_Credit_Limit" in features


def test_training_and_scoring_features_are_identical_for_the_same_date(pipeline, small_frames):
    _, warehouse = pipeline
    scored = pd.read_parquet(published(warehouse / "scored_customers" / f"date={SMALL_END_DATE}"))
    raw_tx = pd.read_parquet(published(warehouse / "raw_transactions"))
    raw_customers = pd.read_parquet(published(warehouse / "raw_customers"))
    training = calibration_holdout_frame(raw_tx, raw_customers, SMALL_END_DATE, horizon_days=30)
    model_columns = {c for family in FAMILIES if family.spec.in_scored_customers for c in family.contribution.columns}
    assert model_columns <= set(scored.columns) and scored[sorted(model_columns)].isna().all().all()  # no champion in this registry
    scored = scored.drop(columns=sorted(model_columns))
    features = training[scored.columns].set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(features, scored.set_index("customer_id").sort_index(), check_dtype=False)


def test_metadata_carries_counts_tables_and_a_plot(pipeline):
    result, _ = pipeline
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert meta["scored_customers"]["dagster/row_count"].value == 600
    assert "Champions" in meta["scored_customers"]["rfm_segments"].value
    assert meta["customer_features"]["distributions"].value.startswith("![as of 2026-06-30](data:image/png;base64,")
    assert "| recency" in meta["customer_features"]["feature_summary"].value
    assert meta["raw_transactions"]["ts_max"].value.startswith("2026-06-30")
    path = Path(meta["scored_customers"]["path"].value)
    assert path.parent.as_posix().endswith(f"scored_customers/date={SMALL_END_DATE}") and path == published(path.parent)


def test_a_backfilled_partition_uses_only_data_up_to_its_date(pipeline, small_frames, tmp_path):
    raw_dir = write_raw(small_frames, tmp_path / "raw", fmt="parquet")
    result = materialize_graph(raw_dir, tmp_path / "warehouse", partition="2025-12-31")
    assert result.success, step_failures(result)
    scored = pd.read_parquet(published(tmp_path / "warehouse" / "scored_customers" / "date=2025-12-31"))
    acquired = small_frames["transactions"].groupby("customer_id")["ts"].min()
    assert len(scored) == int((acquired < pd.Timestamp("2026-01-01", tz="UTC")).sum())


def test_absent_optional_tables_switch_features_off(small_frames, tmp_path):
    raw_dir = write_raw(small_frames, tmp_path / "raw", tables=("transactions",))
    result = materialize_graph(raw_dir, tmp_path / "warehouse")
    assert result.success, step_failures(result)
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert meta["raw_customers"]["note"].value == "customers not configured: its features are switched off"
    assert meta["raw_customers"]["dagster/row_count"].value == 0
    assert "raw_customers not configured" in meta["customer_features"]["notes"].value
    scored = pd.read_parquet(published(tmp_path / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert "Avg_Credit_Limit" not in scored and len(scored) == 600


def test_profile_mode_runs_without_transactions(small_frames, tmp_path):
    raw_dir = write_raw(small_frames, tmp_path / "raw", tables=("customers",))
    result = materialize_graph(raw_dir, tmp_path / "warehouse")
    assert result.success, step_failures(result)
    scored = pd.read_parquet(published(tmp_path / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert set(scored["feature_mode"]) == {"profile"} and len(scored) == 600
    assert scored[["recency", "frequency", "monetary"]].min().min() == 0.0
    assert scored[["recency", "frequency", "monetary"]].max().max() == 1.0
