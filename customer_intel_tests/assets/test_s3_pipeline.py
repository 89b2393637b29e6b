"""The scoring job end to end on S3 (moto's real HTTP endpoint): raw data in, published partitions out."""

import io
import json

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from customer_intel.resources.tables import MANIFEST
from customer_intel_tests.conftest import SMALL_END_DATE, pipeline_resources, scoring_job_with, step_failures, upload_raw

pytestmark = pytest.mark.e2e


class Killed(Exception):
    pass


class DiesBeforePublishing(S3Resource):
    """A client whose process 'dies' when it is about to publish scored_customers: the data is written, the manifest is not."""

    def get_client(self):
        client = super().get_client()

        def die(params, **_):
            if params["Key"].endswith(f"date={SMALL_END_DATE}/{MANIFEST}") and "scored_customers" in params["Key"]:
                raise Killed("killed between write and publish")

        client.meta.events.register("before-parameter-build.s3.PutObject", die)
        return client


def run_scoring(s3, bucket, tmp_path, partition=SMALL_END_DATE):
    resources = pipeline_resources(f"s3://{bucket}/raw", tmp_path / "warehouse", warehouse_root=f"s3://{bucket}/warehouse", s3=s3)
    return scoring_job_with(resources).execute_in_process(partition_key=partition, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def read_back(client, bucket, key) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_scoring_job_writes_partitions_to_s3_that_pandas_reads_back(s3_bucket, small_frames, tmp_path):
    s3, bucket = s3_bucket
    client = s3.get_client()
    upload_raw(small_frames, client, bucket, "raw", fmt="parquet")
    for partition in ("2026-06-29", SMALL_END_DATE):
        result = run_scoring(s3, bucket, tmp_path, partition)
        assert result.success, step_failures(result)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="warehouse/scored_customers/")["Contents"])
    def data_file(table, day):  # the file the partition's manifest points at
        key = f"warehouse/{table}/date={day}"
        return f"{key}/" + json.loads(client.get_object(Bucket=bucket, Key=f"{key}/{MANIFEST}")["Body"].read())["data_file"]

    assert keys == sorted(k for d in ("2026-06-29", SMALL_END_DATE)
                          for k in (f"warehouse/scored_customers/date={d}/{MANIFEST}", data_file("scored_customers", d)))
    scored = read_back(client, bucket, data_file("scored_customers", SMALL_END_DATE))
    features = read_back(client, bucket, data_file("customer_features", SMALL_END_DATE))
    assert len(scored) == len(features) > 500 and scored["customer_id"].is_unique
    assert scored["rfm_segment"].notna().all()
    earlier = read_back(client, bucket, data_file("scored_customers", "2026-06-29"))
    assert (earlier["T"].to_numpy() <= scored.set_index("customer_id").loc[earlier["customer_id"], "T"].to_numpy()).all()
    path = result.asset_materializations_for_node("scored_customers")[0].metadata["path"]
    assert path.value == f"s3://{bucket}/" + data_file("scored_customers", SMALL_END_DATE)


def test_a_run_killed_between_write_and_publish_leaves_no_partition_and_a_rerun_completes_it(s3_bucket, small_frames, tmp_path):
    s3, bucket = s3_bucket
    client = s3.get_client()
    upload_raw(small_frames, client, bucket, "raw", fmt="csv")
    prefix = f"warehouse/scored_customers/date={SMALL_END_DATE}"
    dying = DiesBeforePublishing(**{k: v for k, v in s3.model_dump().items() if v is not None})
    result = run_scoring(dying, bucket, tmp_path)
    assert not result.success and "killed between write and publish" in step_failures(result)["scored_customers"]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}
    assert keys == set()  # the new file was written, never switched to, and removed: nothing half-published
    from customer_intel.resources import Warehouse

    warehouse = Warehouse(root=f"s3://{bucket}/warehouse", s3=s3)
    assert warehouse.published_partitions("scored_customers") == []
    assert warehouse.published_partitions("customer_features") == [SMALL_END_DATE]

    result = run_scoring(s3, bucket, tmp_path)
    assert result.success, step_failures(result)
    assert warehouse.published_partitions("scored_customers") == [SMALL_END_DATE]
    manifest = warehouse.manifest("scored_customers", SMALL_END_DATE)
    assert len(warehouse.read("scored_customers", SMALL_END_DATE)) == len(read_back(client, bucket, f"{prefix}/{manifest['data_file']}"))
