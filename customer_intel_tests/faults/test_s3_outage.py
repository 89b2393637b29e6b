"""The S3 endpoint (moto's real HTTP server on 127.0.0.1) goes away in the middle of a scoring run.

The run fails cleanly and fast, the previous partition of every table stays readable and unchanged,
nothing of the interrupted date is half-published, and once the endpoint is back a re-run publishes
tables byte-identical to an uninterrupted run of the same date.
"""

import threading
import time
import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

from customer_intel.assets import FAMILIES
from customer_intel.resources import IncompletePartitionError, Warehouse
from customer_intel.resources.s3_client import BoundedS3Resource
from customer_intel.resources.tables import _DATA_NAME, MANIFEST
from customer_intel.table_names import CAMPAIGN_TARGETS, CUSTOMER_FEATURES, LOOKALIKE_AUDIENCE, RAW_TABLES, SCORED_CUSTOMERS
from customer_intel_tests.conftest import SMALL_END_DATE, pipeline_resources, scoring_job_with, step_failures, upload_raw
from customer_intel_tests.faults.conftest import KillableMotoServer

pytestmark = pytest.mark.e2e

DAY, DAY_BEFORE = SMALL_END_DATE, "2026-06-29"
FAMILY_SCORES = tuple(family.spec.scores_name for family in FAMILIES)
DAILY_TABLES = (CUSTOMER_FEATURES, *FAMILY_SCORES, SCORED_CUSTOMERS, CAMPAIGN_TARGETS, LOOKALIKE_AUDIENCE)


def bounded_s3(server: KillableMotoServer) -> BoundedS3Resource:
    """The client the runs use: one retry and short timeouts, so a dead endpoint fails a request in well under a second."""
    return BoundedS3Resource(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="testing",
                             aws_secret_access_key="testing", max_attempts=2, connect_timeout=1, read_timeout=5)


def score(server, bucket: str, root, day: str, run_id: str | None = None, instance=None):
    resources = pipeline_resources(f"s3://{bucket}/raw", root / bucket, warehouse_root=f"s3://{bucket}/warehouse", s3=bounded_s3(server))
    return scoring_job_with(resources).execute_in_process(partition_key=day, instance=instance or dg.DagsterInstance.ephemeral(),
                                                          raise_on_error=False, run_id=run_id)


def kill_when_step_starts(server: KillableMotoServer, instance, run_id: str, steps: tuple[str, ...]) -> threading.Thread:
    """Watch the run's event log from another thread; kill the endpoint as soon as one of ``steps`` has started."""
    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
            started = [r.event_log_entry.step_key for r in records]
            if any(step in started for step in steps):
                server.kill()
                watcher.killed_at = next(step for step in started if step in steps)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.killed_at = None
    watcher.start()
    return watcher


def state(warehouse: Warehouse, table: str, day: str | None) -> tuple[dict | None, bytes | None]:
    """A table's published manifest and the bytes of the data file it names (None, None when unpublished)."""
    manifest = warehouse.manifest(table, day)
    if manifest is None:
        return None, None
    prefix = f"{table}/date={day}" if day else table
    return manifest, warehouse.store().get(f"{prefix}/{manifest['data_file']}")


def test_the_endpoint_dying_mid_run_fails_cleanly_keeps_the_last_partitions_and_a_rerun_is_byte_identical(
        trained_registry, small_frames, killable_s3):
    root, _ = trained_registry
    server = killable_s3
    client = bounded_s3(server).get_client()
    for bucket in ("outage", "uninterrupted"):
        client.create_bucket(Bucket=bucket)
        upload_raw(small_frames, client, bucket, "raw", fmt="parquet")
    warehouse = Warehouse(root="s3://outage/warehouse", s3=bounded_s3(server))

    before = score(server, "outage", root, DAY_BEFORE)
    assert before.success, step_failures(before)
    previous = {table: state(warehouse, table, DAY_BEFORE) for table in DAILY_TABLES}
    previous.update({table: state(warehouse, table, None) for table in RAW_TABLES})
    assert all(manifest is not None for manifest, _ in previous.values()), previous.keys()

    # the scoring run of DAY; the endpoint dies as soon as the first family's scoring step starts (the features are published)
    instance, run_id = dg.DagsterInstance.ephemeral(), str(uuid.uuid4())
    watcher = kill_when_step_starts(server, instance, run_id, FAMILY_SCORES)
    started = time.monotonic()
    failed = score(server, "outage", root, DAY, run_id=run_id, instance=instance)
    seconds = time.monotonic() - started
    watcher.join(timeout=5)
    assert watcher.killed_at in FAMILY_SCORES and not server.alive
    assert not failed.success and seconds < 90, seconds
    failures = step_failures(failed)
    assert failures and set(failures) <= {*DAILY_TABLES, *RAW_TABLES}, failures
    for step, message in failures.items():  # each failure names the endpoint that went away
        assert f"127.0.0.1:{server.port}" in message and ("Could not connect to the endpoint URL" in message
                                                         or "Connection was closed" in message), (step, message[:500])
    statuses = {e.step_key: e.event_type_value for e in failed.all_events if e.step_key and e.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")}
    assert statuses[CUSTOMER_FEATURES] == "STEP_SUCCESS" and statuses.get(SCORED_CUSTOMERS) != "STEP_SUCCESS", statuses

    # the endpoint comes back on the same port: moto's buckets live in this process, so they are all there
    server.start()
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} >= {"outage", "uninterrupted"}
    for table, (manifest, data) in previous.items():  # every previous partition: the same manifest, the same bytes, readable
        day = DAY_BEFORE if table in DAILY_TABLES else None
        now_manifest, now_data = state(warehouse, table, day)
        if day is None and now_manifest["run_id"] == run_id:  # a raw table the interrupted run re-ingested before the outage
            assert now_manifest["sha256"] == manifest["sha256"], table  # the same raw data, the same bytes
        else:
            assert now_manifest == manifest and now_data == data, table
        assert len(warehouse.read(table, day)) == manifest["rows"], table
    # of DAY, a table is published whole (its manifest's bytes) or not at all; the interrupted steps published nothing
    published_day = {table for table in DAILY_TABLES if warehouse.manifest(table, DAY) is not None}
    assert CUSTOMER_FEATURES in published_day and not published_day & {*failures, SCORED_CUSTOMERS, CAMPAIGN_TARGETS, LOOKALIKE_AUDIENCE}
    for table in DAILY_TABLES:
        if table in published_day:
            assert len(warehouse.read(table, DAY)) == warehouse.manifest(table, DAY)["rows"]
        else:
            with pytest.raises(IncompletePartitionError, match=f"s3://outage/warehouse/{table}/date={DAY} has no {MANIFEST} manifest"):
                warehouse.read(table, DAY)

    restarted = datetime.now(UTC)
    rerun = score(server, "outage", root, DAY)
    assert rerun.success, step_failures(rerun)
    reference = score(server, "uninterrupted", root, DAY)
    assert reference.success, step_failures(reference)
    other = Warehouse(root="s3://uninterrupted/warehouse", s3=bounded_s3(server))
    for table in (*DAILY_TABLES, *RAW_TABLES):
        day = DAY if table in DAILY_TABLES else None
        (manifest, data), (reference_manifest, reference_data) = state(warehouse, table, day), state(other, table, day)
        assert data == reference_data and manifest["sha256"] == reference_manifest["sha256"], table  # byte-identical Parquet
        assert manifest["rows"] == reference_manifest["rows"] and manifest["rows"] > 0 or table == CAMPAIGN_TARGETS, table
        prefix = f"{table}/date={day}" if day else table
        objects = {o.key.rsplit("/", 1)[-1]: o for o in warehouse.store().list(prefix) if "/" not in o.key[len(prefix) + 1:]}
        assert MANIFEST in objects and manifest["data_file"] in objects and _DATA_NAME.match(manifest["data_file"]), (table, objects)
        # anything else is a data file the outage kept from being deleted: unnamed, so no reader sees it, and removed by
        # a later write once it is an hour old (on S3 a younger one may be a live writer's)
        assert all(_DATA_NAME.match(name) and o.last_modified < restarted for name, o in objects.items()
                   if name not in (MANIFEST, manifest["data_file"])), (table, sorted(objects))
