"""The retraining sensors evaluated against real stores: moto's HTTP S3 endpoint and local folders."""

import json

import dagster as dg
import pandas as pd
import pytest

from customer_intel.automation import feature_drift_sensor, raw_landing_sensor
from customer_intel.cltv.frames import build_cltv_split
from customer_intel.features import build_customer_features
from customer_intel.monitoring import drift_report
from customer_intel.resources import DriftPolicy, RawDataSource, S3ObjectStore, Warehouse, write_table
from customer_intel_tests.conftest import SMALL_END_DATE, pipeline_resources, upload_raw, write_raw


def tick(sensor, cursor, instance=None, **resources):
    """One sensor evaluation: (run requests, the cursor it leaves, its skip message); an empty instance unless given."""
    with dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance or dg.DagsterInstance.ephemeral()) as context:
        data = sensor.evaluate_tick(context)
    return data.run_requests, data.cursor, data.skip_message


class RegistryStub:
    """The one registry question the drift sensor asks; the real answer is tested in test_cltv_assets."""

    def __init__(self, sha256=None):
        self.sha256 = sha256

    def champion_training_frame_sha256(self, family):
        return self.sha256


def drift_tick(cursor, warehouse, policy=None, champion_frame_sha256=None):
    return tick(feature_drift_sensor, cursor, warehouse=warehouse, drift_policy=policy or DriftPolicy(),
                model_registry=RegistryStub(champion_frame_sha256))


def test_landing_sensor_fires_once_per_new_or_changed_s3_file(s3_bucket):
    s3, bucket = s3_bucket
    client = s3.get_client()
    source = RawDataSource(raw_dir=f"s3://{bucket}/raw", s3=s3)
    requests, cursor, skip = tick(raw_landing_sensor, None, raw_data=source)
    assert requests == [] and "no new or changed raw files (0 seen" in skip

    client.put_object(Bucket=bucket, Key="raw/transactions.csv", Body=b"customer_id,ts,amount\nA,2026-01-01,5\n")
    [first], cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert first.job_name in (None, "training_job") and first.tags["customer_intel/trigger"] == "landing"
    assert first.tags["customer_intel/landed_files"] == f"s3://{bucket}/raw/transactions.csv"

    requests, cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert requests == []  # the same file again: nothing

    # a second file in the same second as the first: a timestamp watermark would skip it, key + ETag does not
    client.put_object(Bucket=bucket, Key="raw/customers.csv", Body=b"customer_id\nA\n")
    client.put_object(Bucket=bucket, Key="raw/_upload_in_progress.csv", Body=b"partial")  # markers are ignored
    [request], cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert request.tags["customer_intel/landed_files"] == f"s3://{bucket}/raw/customers.csv"

    client.put_object(Bucket=bucket, Key="raw/transactions.csv", Body=b"customer_id\nA,2026-01-01,5\nB,2026-01-02,7\n")
    [changed], cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert changed.tags["customer_intel/landed_files"] == f"s3://{bucket}/raw/transactions.csv"
    assert len({first.run_key, request.run_key, changed.run_key}) == 3

    client.put_object(Bucket=bucket, Key="raw/transactions.csv", Body=b"customer_id\nA,2026-01-01,5\nB,2026-01-02,7\n")
    requests, cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert requests == []  # rewritten with identical bytes: same ETag, no new data
    assert set(json.loads(cursor)["seen"]) == {f"s3://{bucket}/raw/transactions.csv", f"s3://{bucket}/raw/customers.csv"}

    # files the ingestion assets would not read launch nothing: other names, nested folders
    client.put_object(Bucket=bucket, Key="raw/notes.csv", Body=b"a\n1\n")
    client.put_object(Bucket=bucket, Key="raw/archive/transactions-2019.csv", Body=b"a\n1\n")
    assert tick(raw_landing_sensor, cursor, raw_data=source)[0] == []

    # rolled back to the first version: new data again, under a run key never used before
    client.put_object(Bucket=bucket, Key="raw/transactions.csv", Body=b"customer_id,ts,amount\nA,2026-01-01,5\n")
    [rollback], cursor, _ = tick(raw_landing_sensor, cursor, raw_data=source)
    assert rollback.run_key not in {first.run_key, request.run_key, changed.run_key}


def test_landing_sensor_watches_a_local_folder_too(tmp_path):
    source = RawDataSource(raw_dir=str(tmp_path))
    (tmp_path / "transactions.csv").write_text("customer_id,ts,amount\n")
    [request], cursor, _ = tick(raw_landing_sensor, None, raw_data=source)
    assert request.tags["customer_intel/landed_files"] == str(tmp_path / "transactions.csv")
    assert tick(raw_landing_sensor, cursor, raw_data=source)[0] == []
    (tmp_path / "transactions.csv").write_text("customer_id,ts,amount\nA,2026-01-01,5\n")
    assert len(tick(raw_landing_sensor, cursor, raw_data=source)[0]) == 1


def ingesting_training_run(instance, resources, tables=None, raise_on_error=True):
    """A real run of training_job on ``instance`` that ingests ``tables`` (default: all three) and trains
    nothing else (the cheapest successful training run); its result."""
    from customer_intel.definitions import all_asset_checks, all_assets
    from customer_intel.jobs import training_job

    job = dg.Definitions(assets=all_assets, asset_checks=all_asset_checks, jobs=[training_job],
                         resources=resources).resolve_job_def("training_job")
    keys = [dg.AssetKey(f"raw_{table}") for table in tables or ("transactions", "customers", "campaigns")]
    return job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=raise_on_error)


def test_landing_sensor_first_tick_skips_what_this_instance_trained_on_local(tmp_path, small_frames):
    """First tick (no cursor): nothing trained here -> every file launches (a fresh deployment with data but
    no model); after a successful training run -> its files are seen and only files added or changed since launch."""
    raw = write_raw(small_frames, tmp_path / "raw")
    source = RawDataSource(raw_dir=str(raw))
    files = sorted(str(raw / f"{t}.csv") for t in ("campaigns", "customers", "transactions"))
    with dg.instance_for_test() as instance:
        [request], fresh_cursor, _ = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert request.tags["customer_intel/landed_files"] == ", ".join(files)  # no model yet: train on what is there
        assert sorted(json.loads(fresh_cursor)["seen"]) == files

        # a failed training run trained nothing: the files it ingested before failing stay new
        (raw / "campaigns.csv").write_text("customer_id,campaign_id\nX,1\n")  # breaks the contract: the run fails
        failed = ingesting_training_run(instance, pipeline_resources(raw, tmp_path / "warehouse"), raise_on_error=False)
        assert not failed.success and failed.asset_materializations_for_node("raw_transactions")  # transactions were ingested
        small_frames["campaigns"].to_csv(raw / "campaigns.csv", index=False)
        [request], _, _ = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert request.tags["customer_intel/landed_files"] == ", ".join(files)

        trained = ingesting_training_run(instance, pipeline_resources(raw, tmp_path / "warehouse"))
        recorded = instance.get_latest_materialization_event(dg.AssetKey("raw_customers")).asset_materialization.metadata
        assert recorded["read_files"].value == {str(raw / "customers.csv"): source.table_files("customers")[0].etag}
        requests, cursor, skip = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert requests == [] and f"(3 seen under {raw}; first tick: 3 already read by training run {trained.run_id})" in skip
        assert json.loads(cursor) == {"seen": {f: source_tag(source, f) for f in files}, "launches": 0}
        # the normal path from here: a rewritten file is new
        small_frames["customers"].head(500).to_csv(raw / "customers.csv", index=False)
        [changed], _, _ = tick(raw_landing_sensor, cursor, instance, raw_data=source)
        assert changed.tags["customer_intel/landed_files"] == str(raw / "customers.csv")

        # first tick again (a reset cursor, a new deployment of the sensor): only what changed since training launches
        (raw / "transactions.csv").unlink()
        small_frames["transactions"].to_parquet(raw / "transactions.parquet", index=False)
        [request], cursor, skip = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert request.tags["customer_intel/landed_files"] == f"{raw / 'customers.csv'}, {raw / 'transactions.parquet'}"
        assert json.loads(cursor)["launches"] == 1 and set(json.loads(cursor)["seen"]) == {*files[:2], str(raw / "transactions.parquet")}


def source_tag(source, uri):
    return {f.uri: f.etag for f in source.landed_files()}[uri]


def test_landing_sensor_first_tick_on_s3_compares_etags_not_times(s3_bucket, small_frames, tmp_path):
    """S3: the baseline is the ETags the training run's ingestion listed; an object rewritten later with the
    same bytes (a newer LastModified, the same ETag) is not new, other bytes are."""
    s3, bucket = s3_bucket
    client = s3.get_client()
    raw = upload_raw(small_frames, client, bucket, tables=("transactions", "customers"))
    source = RawDataSource(raw_dir=raw, s3=s3)
    with dg.instance_for_test() as instance:
        trained = ingesting_training_run(instance, pipeline_resources(raw, tmp_path / "warehouse", s3=s3), tables=("transactions", "customers"))
        body = client.get_object(Bucket=bucket, Key="raw/customers.parquet")["Body"].read()
        client.put_object(Bucket=bucket, Key="raw/customers.parquet", Body=body)  # same bytes, later LastModified
        requests, cursor, skip = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert requests == [] and f"first tick: 2 already read by training run {trained.run_id}" in skip
        assert sorted(json.loads(cursor)["seen"]) == [f"{raw}/customers.parquet", f"{raw}/transactions.parquet"]
        client.put_object(Bucket=bucket, Key="raw/campaigns.parquet", Body=b"PAR1")  # landed after training: new
        [request], _, _ = tick(raw_landing_sensor, None, instance, raw_data=source)
        assert request.tags["customer_intel/landed_files"] == f"{raw}/campaigns.parquet"


@pytest.fixture(scope="module")
def reference_features(small_frames):
    """Features as of a cutoff, as a training frame written before the shared lifecycle stores them (split = evaluate)."""
    frame = build_customer_features(small_frames["transactions"], small_frames["customers"], "2026-04-01").frame
    return frame.reset_index().assign(split="evaluate")


def drift_warehouse(s3, bucket, reference, live):
    store = S3ObjectStore(s3.get_client(), bucket, "warehouse")
    write_table(store, "cltv_training_frame", reference)
    write_table(store, f"customer_features/date={SMALL_END_DATE}", live)
    return Warehouse(root=f"s3://{bucket}/warehouse", s3=s3)


def test_drift_sensor_stays_quiet_on_a_resample_of_the_training_features(s3_bucket, reference_features):
    s3, bucket = s3_bucket
    live = reference_features.drop(columns="split").sample(frac=1.0, replace=True, random_state=3)
    warehouse = drift_warehouse(s3, bucket, reference_features, live)
    requests, cursor, skip = drift_tick(None, warehouse)
    assert requests == [] and "no drift" in skip and "max PSI 0.0" in skip
    assert cursor.startswith(f"{SMALL_END_DATE}:")
    assert "already compared" in drift_tick(cursor, warehouse)[2]


def test_drift_sensor_fires_on_a_shifted_distribution_with_the_psi_table_in_the_tags(s3_bucket, reference_features):
    s3, bucket = s3_bucket
    live = reference_features.drop(columns="split").assign(
        monetary=lambda f: f["monetary"] * 1.8,  # customers spend much more per visit
        avg_ticket=lambda f: f["avg_ticket"] * 1.8,
    )
    warehouse = drift_warehouse(s3, bucket, reference_features, live)
    [request], cursor, _ = drift_tick(None, warehouse)
    psi = json.loads(request.tags["customer_intel/psi"])
    assert set(request.tags["customer_intel/drifted_features"].split(",")) == {"monetary", "avg_ticket"}
    assert min(psi["monetary"], psi["avg_ticket"]) > 0.5
    assert max(psi[f] for f in ("frequency", "recency", "spend_trend", "category_entropy", "purchase_days_90d")) == 0.0
    assert request.tags["customer_intel/drift_partition"] == SMALL_END_DATE and request.run_key == f"drift-{cursor}"
    assert cursor.startswith(f"{SMALL_END_DATE}:")
    assert drift_tick(cursor, warehouse)[0] == []  # one launch per partition and training frame


def test_drift_sensor_is_quiet_on_the_real_training_frame_a_horizon_later(s3_bucket, small_frames):
    """Production dates: the features the registered champion was refitted on (the training frame's refit
    rows, as of the end of its test window) vs tonight's features 90 days later.

    Customer age (T) moves by the horizon by construction (PSI ~0.9 here) and is not a default
    drift feature; the behaviour features stay below the threshold."""
    s3, bucket = s3_bucket
    frames = build_cltv_split(small_frames["transactions"], small_frames["customers"], pd.Timestamp("2026-01-01"), 90)
    assert str(frames.cutoff_of("refit").date()) == "2026-04-01"  # 90 days before tonight's partition
    live = build_customer_features(small_frames["transactions"], small_frames["customers"], SMALL_END_DATE).frame.reset_index()
    warehouse = drift_warehouse(s3, bucket, frames.to_frame(), live)
    requests, cursor, skip = drift_tick(None, warehouse)
    assert requests == [] and "no drift" in skip
    training = frames.to_frame()
    assert drift_report(training[training["split"] == "refit"], live, features=("T",)).max_psi > 0.5  # why T is left out
    # a rewritten partition is compared again (the cursor carries its checksum)
    write_table(S3ObjectStore(s3.get_client(), bucket, "warehouse"), f"customer_features/date={SMALL_END_DATE}",
                live.assign(monetary=live["monetary"] * 1.8, avg_ticket=live["avg_ticket"] * 1.8))
    [request], _, _ = drift_tick(cursor, warehouse)
    assert set(request.tags["customer_intel/drifted_features"].split(",")) == {"monetary", "avg_ticket"}
    # the reference says whether it is the frame the champion was judged on; after a run that promoted
    # nothing it is not, and monitoring goes on against the latest frame, saying so
    judged = json.loads(warehouse.store().get("cltv_training_frame/_SUCCESS"))["sha256"]
    [request], _, _ = drift_tick(None, warehouse, champion_frame_sha256=judged)
    assert request.tags["customer_intel/drift_reference"] == "cltv_training_frame, the frame the cltv champion was judged on"
    [request], _, _ = drift_tick(None, warehouse, champion_frame_sha256="f" * 64)
    assert "NOT the frame the registered cltv champion was judged on (ffffffffffff)" in request.tags["customer_intel/drift_reference"]


def test_drift_sensor_waits_for_published_tables(s3_bucket):
    s3, bucket = s3_bucket
    requests, _, skip = drift_tick(None, Warehouse(root=f"s3://{bucket}/warehouse", s3=s3))
    assert requests == [] and "0 published customer_features partitions" in skip
