"""Scoring shards: the chain's sensors, the ingest guard, and 2 shards on the multiprocess executor giving 1 shard's tables."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from customer_intel.assets.partitions import DATE_TAG, INGEST_TAG, check_same_ingest
from customer_intel.automation.schedules import nightly_date
from customer_intel.automation.shards import PARTITION_TAG, chain_in_flight, publish_run_request, shard_in, shard_run_requests
from customer_intel.jobs import FAMILY_GROUPS
from customer_intel.table_names import CAMPAIGN_TARGETS, LOOKALIKE_AUDIENCE, RAW_TRANSACTIONS, SCORED_CUSTOMERS
from customer_intel_tests.conftest import SMALL_END_DATE, materialize_graph, published, step_failures, write_raw

ROOT = Path(__file__).resolve().parents[2]
DAY = SMALL_END_DATE
# small and quick, and a champion for every family on 600 customers (too few for an uplift above the random band)
TRAIN_CONFIG = {"ops": {
    "uplift_models": {"config": {"include": ["response", "t_logistic"], "require_above_random": False}},
    "embeddings_models": {"config": {"include": ["customer2vec"], "dim": 16, "epochs": 3}},
}}


def _run(instance, job_name: str, tags: dict, status=dg.DagsterRunStatus.SUCCESS) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), tags=tags, status=status)
    instance.add_run(run)
    return run


def test_a_dated_ingest_run_requests_every_shard_of_its_date_once():
    ingest = dg.DagsterRun(job_name="ingest_job", run_id="ingest-1", tags={DATE_TAG: DAY})
    requests = shard_run_requests(ingest, shards=3)
    assert [r.partition_key for r in requests] == [dg.MultiPartitionKey({"date": DAY, "shard": str(s)}) for s in range(3)]
    assert [str(r.partition_key) for r in requests] == [f"{DAY}|0", f"{DAY}|1", f"{DAY}|2"]
    assert len({r.run_key for r in requests}) == 3
    assert all(r.tags == {DATE_TAG: DAY, INGEST_TAG: "ingest-1"} for r in requests)
    assert [shard_in(r.partition_key) for r in requests] == [0, 1, 2]


def test_an_ingest_run_without_a_date_or_outside_the_partitions_requests_nothing():
    by_hand = shard_run_requests(dg.DagsterRun(job_name="ingest_job", run_id="by-hand", tags={}), shards=2)
    assert isinstance(by_hand, dg.SkipReason) and "has no customer_intel/date tag" in by_hand.skip_message
    early = shard_run_requests(dg.DagsterRun(job_name="ingest_job", run_id="early", tags={DATE_TAG: "1999-01-01"}), shards=2)
    assert isinstance(early, dg.SkipReason) and "1999-01-01 is not a daily partition" in early.skip_message


def test_publish_waits_for_every_shard_of_the_same_ingest_and_is_requested_once():
    with dg.DagsterInstance.ephemeral() as instance:
        def shard(s, ingest, status=dg.DagsterRunStatus.SUCCESS):
            return _run(instance, "shard_scoring_job", {DATE_TAG: DAY, INGEST_TAG: ingest, PARTITION_TAG: f"{DAY}|{s}"}, status)

        first = shard(0, "A")
        shard(1, "B")  # another ingest's shard 1 does not complete ingest A's date
        shard(1, "A", dg.DagsterRunStatus.FAILURE)
        waiting = publish_run_request(instance, first, shards=2)
        assert isinstance(waiting, dg.SkipReason)
        assert waiting.skip_message == f"{DAY}: 1 of 2 shards done for ingest A; waiting for shard(s) [1]"
        last = shard(1, "A")  # the failed shard re-executed: its success publishes the date
        request = publish_run_request(instance, last, shards=2)
        assert isinstance(request, dg.RunRequest)
        assert (request.partition_key, request.run_key) == (DAY, f"publish:{DAY}:A")
        assert publish_run_request(instance, first, shards=2).run_key == request.run_key  # the other shard's event: same key
        untagged = _run(instance, "shard_scoring_job", {PARTITION_TAG: f"{DAY}|0"})
        assert "run publish_job for its date by hand" in publish_run_request(instance, untagged, shards=2).skip_message


def test_the_nightly_tick_scores_the_day_that_has_just_ended():
    import datetime as dt

    assert nightly_date(dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)) == "2026-06-30"
    assert nightly_date(dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))) == "2026-06-30"


def test_a_shard_fails_when_the_raw_tables_were_ingested_again_after_its_ingest():
    @dg.asset(name=RAW_TRANSACTIONS)
    def raw():
        return 1

    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize([raw], instance=instance).run_id
        second = dg.materialize([raw], instance=instance).run_id

        class Context:  # what the guard reads of a step's context
            def __init__(self, ingest):
                self.instance, self.partition_key = instance, f"{DAY}|1"
                self.run = dg.DagsterRun(job_name="shard_scoring_job", run_id="shard", tags={INGEST_TAG: ingest} if ingest else {})

        check_same_ingest(Context(second), [RAW_TRANSACTIONS])  # the latest ingest: scores
        # a re-execution of the latest ingest from failure rewrites only what failed: the parent's tables are its own
        instance.add_run(dg.DagsterRun(job_name="ingest_job", run_id="retry", parent_run_id=second, root_run_id=second))
        check_same_ingest(Context("retry"), [RAW_TRANSACTIONS])
        check_same_ingest(Context(None), [RAW_TRANSACTIONS])  # not launched by an ingest (a manual run): nothing to compare
        with pytest.raises(dg.Failure) as failure:
            check_same_ingest(Context(first), [RAW_TRANSACTIONS])
        assert failure.value.description.startswith(f"raw_transactions was written by run {second} after ingest run {first} "
                                                    f"launched this one; scoring {DAY}|1 now would mix two ingests")


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    """Every family's champion trained on the small bank, in a registry under the returned root."""
    root = tmp_path_factory.mktemp("shards")
    raw_dir = write_raw(small_frames, root / "raw", fmt="parquet")
    result = materialize_graph(raw_dir, root / "training", partition=None, groups=("ingest", *FAMILY_GROUPS), run_config=TRAIN_CONFIG)
    assert result.success, step_failures(result)
    return root, raw_dir


def _table(warehouse: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(published(warehouse / name / f"date={DAY}"))
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


@pytest.mark.e2e
def test_two_shards_on_the_multiprocess_executor_publish_the_tables_of_one(trained):
    root, raw_dir = trained
    one = materialize_graph(raw_dir, root / "one")  # scoring_job's assets, one shard, the same registry
    assert one.success, step_failures(one)
    home = root / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "CUSTOMER_INTEL_SCORING_SHARDS": "2", "CUSTOMER_INTEL_ENV": "local", "CUSTOMER_INTEL_RAW_DIR": str(raw_dir),
           "CUSTOMER_INTEL_WAREHOUSE_DIR": str(root / "two"), "CUSTOMER_INTEL_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(home),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-m", "customer_intel.automation.chain", DAY], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    chain = json.loads(done.stdout)
    assert chain["ingest"]["success"] and chain["publish"]["success"]
    assert sorted(run["tags"][PARTITION_TAG] for run in chain["shards"]) == [f"{DAY}|0", f"{DAY}|1"]
    assert all(run["success"] and run["tags"][INGEST_TAG] == chain["ingest"]["run_id"] for run in chain["shards"])

    # each shard holds its own customers, together all of them
    features = [pd.read_parquet(published(root / "two" / "customer_features" / f"date={DAY}" / f"shard={s}")) for s in (0, 1)]
    assert min(len(f) for f in features) > 0 and not set(features[0]["customer_id"]) & set(features[1]["customer_id"])
    one_scored, two_scored = _table(root / "one", SCORED_CUSTOMERS), _table(root / "two", SCORED_CUSTOMERS)
    assert sorted(pd.concat(features)["customer_id"]) == one_scored["customer_id"].tolist()
    # every family scored (a champion each), and the published tables equal the unsharded ones
    models = [c for c in one_scored.columns if c.endswith("_model")]
    assert len(models) >= 4 and one_scored[models].notna().all().all()
    pd.testing.assert_frame_equal(two_scored, one_scored, check_exact=False, rtol=1e-6)
    for name in (CAMPAIGN_TARGETS, LOOKALIKE_AUDIENCE):
        one_table, two_table = _table(root / "one", name), _table(root / "two", name)
        assert len(one_table) > 0, name
        pd.testing.assert_frame_equal(two_table, one_table, check_exact=False, rtol=1e-6)
    assert np.isclose(two_scored["cltv"].sum(), one_scored["cltv"].sum())


def test_the_retraining_sensors_wait_while_a_dates_chain_is_in_flight():
    with dg.DagsterInstance.ephemeral() as instance:
        assert chain_in_flight(instance, shards=2) is None
        running = _run(instance, "shard_scoring_job", {DATE_TAG: DAY}, dg.DagsterRunStatus.STARTED)
        assert chain_in_flight(instance, shards=1) is None  # one shard: scoring_job holds the shared-tables lock itself
        assert chain_in_flight(instance, shards=2) == f"shard_scoring_job run {running.run_id} ({DAY}) is started"


def test_with_two_shards_the_code_location_defines_the_chain_and_the_schedule_starts_it():
    code = """
import datetime as dt, json
import dagster as dg
from customer_intel.definitions import defs
jobs = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
shard_job = defs.resolve_job_def("shard_scoring_job")
schedule = defs.resolve_schedule_def("nightly_scoring_schedule")
with dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)) as context:
    request = schedule.evaluate_tick(context).run_requests[0]
print(json.dumps({"jobs": jobs, "sensors": sorted(s.name for s in defs.sensors),
                  "shard_partitions": type(shard_job.partitions_def).__name__, "schedule_job": schedule.job_name,
                  "tags": request.tags, "publish_assets": sorted(k.to_user_string() for k in defs.resolve_job_def("publish_job").asset_layer.executable_asset_keys)}))
"""
    env = {**os.environ, "CUSTOMER_INTEL_SCORING_SHARDS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["jobs"] == ["ingest_job", "publish_job", "shard_scoring_job", "training_job"]
    assert {"shard_scoring_sensor", "publish_sensor", "raw_landing_sensor", "feature_drift_sensor"} == set(out["sensors"])
    assert out["shard_partitions"] == "MultiPartitionsDefinition" and out["schedule_job"] == "ingest_job"
    assert out["tags"][DATE_TAG] == "2026-06-30"
    assert out["publish_assets"] == ["campaign_targets", "lookalike_audience", "scored_customers"]
