import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from customer_intel.definitions import defs


def test_definitions_load_with_every_asset_documented_grouped_and_kinded():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_transactions", "raw_customers", "raw_campaigns", "customer_features", "scored_customers",
                    "cltv_training_frame", "cltv_models", "cltv_champion", "cltv_scores",
                    "segmentation_training_frame", "segmentation_models", "segmentation_champion", "segment_assignments",
                    "churn_training_frame", "churn_models", "churn_champion", "churn_scores",
                    "uplift_training_frame", "uplift_models", "uplift_champion", "uplift_scores", "campaign_targets",
                    "embeddings_training_frame", "embeddings_models", "embeddings_champion", "customer_embeddings", "lookalike_audience"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.group_name in {"ingest", "features", "scoring", "cltv", "segmentation", "churn", "uplift", "embeddings"}, key
        assert node.kinds, key


def test_scoring_job_covers_the_graph_and_is_daily_partitioned():
    job = defs.resolve_job_def("scoring_job")
    assert isinstance(job.partitions_def, dg.DailyPartitionsDefinition)
    assert job.partitions_def.timezone == "UTC"
    assert {n.name for n in job.graph.node_defs} >= {"raw_transactions", "customer_features", "scored_customers"}


def test_checks_are_blocking_and_partitioned_like_their_asset():
    graph = defs.resolve_asset_graph()
    scored = dg.AssetKey("scored_customers")
    specs = {(key.asset_key.to_user_string(), key.name): graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert all(spec.blocking for spec in specs.values())
    assert specs[("scored_customers", "one_row_per_customer")].partitions_def == graph.get(scored).partitions_def
    assert specs[("scored_customers", "valid_rfm_scores")].partitions_def == graph.get(scored).partitions_def
    raw_checks = {name for asset, name in specs if asset == "raw_transactions"}
    assert raw_checks == {
        "non_empty", "well_formed_rows", "required_columns", "valid_types", "non_null_values",
        "finite_amounts", "plausible_amounts", "no_duplicate_rows", "no_future_timestamps", "no_placeholder_dates",
    }


def test_training_job_is_unpartitioned_and_gated():
    job = defs.resolve_job_def("training_job")
    assert job.partitions_def is None
    assert {n.name for n in job.graph.node_defs} >= {"raw_transactions", "cltv_training_frame", "cltv_models", "cltv_champion"}
    graph = defs.resolve_asset_graph()
    gate = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("cltv_models"), "cltv_champion_not_worse"))
    assert gate.blocking


def test_nightly_schedule_scores_the_last_complete_day_at_two_utc_and_runs_by_default():
    schedule = defs.resolve_schedule_def("nightly_scoring_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "scoring_job"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-24"


def test_retraining_sensors_run_by_default_and_launch_training():
    for name in ("raw_landing_sensor", "feature_drift_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, name
        assert sensor.job_name == "training_job", name


def test_definitions_load_locally_with_no_s3_configured(monkeypatch):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "AWS_", "MLFLOW_"))}
    code = ("from customer_intel.definitions import defs; r = defs.resources; "
            "print(r['warehouse'].location, r['warehouse'].s3, r['raw_data'].s3)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    root, s3, raw_s3 = out.stdout.split()
    assert root.endswith("data/warehouse") and s3 == raw_s3 == "None"


def test_runs_that_rewrite_shared_tables_are_serialised_by_both_instance_configs():
    import yaml

    from customer_intel.jobs import SHARED_TABLES_TAG

    for name in ("training_job", "scoring_job"):
        assert defs.resolve_job_def(name).tags.items() >= SHARED_TABLES_TAG.items(), name
    [(key, value)] = SHARED_TABLES_TAG.items()
    root = Path(__file__).resolve().parents[1]
    for config in (root / "dagster.yaml", root / "deploy" / "dagster.yaml"):
        limits = yaml.safe_load(config.read_text())["run_coordinator"]["config"]["tag_concurrency_limits"]
        assert {"key": key, "value": value, "limit": 1} in limits, config
