"""The S3 object store, tables and raw reader against moto's real HTTP endpoint on 127.0.0.1."""

import io

import pandas as pd
import pytest

from customer_intel.ingest import TRANSACTIONS, RawSourceError
from customer_intel.resources import RawDataSource, S3ObjectStore, Warehouse, read_table, write_table
from customer_intel.resources.tables import MANIFEST, WarehouseWriteError
from customer_intel_tests.conftest import upload_raw

FRAME = pd.DataFrame({"customer_id": ["A", "B"], "score": [0.5, 0.25]})


def test_store_round_trips_bytes_lists_by_prefix_and_deletes_folders(s3_bucket):
    s3, bucket = s3_bucket
    store = S3ObjectStore(s3.get_client(), bucket, "warehouse")
    store.put("scored/date=2026-06-30/part-0.parquet", b"abc")
    store.put("scored/date=2026-06-30/_SUCCESS", b"{}")
    store.put("scored_customers/x", b"z")
    assert store.get("scored/date=2026-06-30/part-0.parquet") == b"abc"
    assert store.exists("scored/date=2026-06-30/_SUCCESS") and not store.exists("scored/date=2026-07-01/_SUCCESS")
    listed = store.list("scored")  # "scored_customers/x" shares the prefix string but is another folder
    assert [o.key for o in listed] == ["scored/date=2026-06-30/_SUCCESS", "scored/date=2026-06-30/part-0.parquet"]
    assert all(len(o.etag) == 32 and o.size > 0 for o in listed)
    assert store.uri("scored") == f"s3://{bucket}/warehouse/scored"
    store.delete("scored")
    assert store.list("scored") == [] and store.exists("scored_customers/x")
    with pytest.raises(ValueError, match="escapes the store prefix"):
        store.put("../outside", b"x")


def test_tables_on_s3_switch_in_one_put_and_a_failed_rewrite_keeps_the_last_good_partition(s3_bucket):
    s3, bucket = s3_bucket
    client = s3.get_client()
    store = S3ObjectStore(client, bucket, "warehouse")
    prefix = "scored_customers/date=2026-06-30"
    manifest = write_table(store, prefix, FRAME, run_id="r1")
    raw = client.get_object(Bucket=bucket, Key=f"warehouse/{prefix}/{manifest['data_file']}")["Body"].read()
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(raw)), FRAME)  # plain Parquet for any reader
    assert manifest["rows"] == 2

    def die_before_switch(params, **_):
        if params["Key"].endswith(MANIFEST):
            raise ConnectionError("endpoint gone between the data file and the switch")

    crashing = s3.get_client()
    crashing.meta.events.register("before-parameter-build.s3.PutObject", die_before_switch)
    with pytest.raises(WarehouseWriteError, match=f"could not write s3://{bucket}/warehouse/{prefix}: .*the previous version is still published"):
        write_table(S3ObjectStore(crashing, bucket, "warehouse"), prefix, FRAME.assign(score=1.0))
    pd.testing.assert_frame_equal(read_table(store, prefix), FRAME)  # the last good partition, untouched
    assert [o.key.rsplit("/", 1)[-1] for o in store.list(prefix)] == sorted([MANIFEST, manifest["data_file"]])  # the new file was removed
    assert Warehouse(root=f"s3://{bucket}/warehouse", s3=s3).published_partitions("scored_customers") == ["2026-06-30"]
    second = write_table(store, prefix, FRAME.assign(score=1.0))
    assert read_table(store, prefix)["score"].tolist() == [1.0, 1.0]
    assert [o.key.rsplit("/", 1)[-1] for o in store.list(prefix)] == sorted([MANIFEST, second["data_file"]])  # the old file is gone


def test_raw_tables_are_read_from_an_s3_prefix_a_folder_of_files_or_one_key(s3_bucket, small_frames):
    s3, bucket = s3_bucket
    client = s3.get_client()
    upload_raw(small_frames, client, bucket, "landing", fmt="csv", tables=("customers",))
    transactions = small_frames["transactions"]
    half = len(transactions) // 2
    for i, part in enumerate([transactions.iloc[:half], transactions.iloc[half:]]):
        client.put_object(Bucket=bucket, Key=f"landing/transactions/part-{i}.parquet", Body=part.to_parquet(index=False))
    client.put_object(Bucket=bucket, Key="landing/transactions/_SUCCESS", Body=b"")  # markers are not tables
    source = RawDataSource(raw_dir=f"s3://{bucket}/landing", s3=s3)
    assert source.location("transactions") == f"s3://{bucket}/landing/transactions/"
    assert source.location("customers") == f"s3://{bucket}/landing/customers.csv"
    assert source.location("campaigns") is None
    raw = source.read(TRANSACTIONS)
    assert raw.files == [f"s3://{bucket}/landing/transactions/part-0.parquet", f"s3://{bucket}/landing/transactions/part-1.parquet"]
    assert len(raw.frame) == len(transactions)
    assert raw.frame["_source_file"].iloc[-1].endswith("part-1.parquet") and raw.frame["_source_row"].iloc[-1] == len(transactions) - half - 1
    one = RawDataSource(raw_dir="/unused", transactions_path=f"s3://{bucket}/landing/transactions/part-1.parquet", s3=s3)
    assert len(one.read(TRANSACTIONS).frame) == len(transactions) - half


def test_missing_or_empty_s3_locations_are_clear_errors(s3_bucket):
    s3, bucket = s3_bucket
    s3.get_client().put_object(Bucket=bucket, Key="landing/transactions/readme.txt", Body=b"hello")
    empty = RawDataSource(raw_dir="/unused", transactions_path=f"s3://{bucket}/landing/transactions/", s3=s3)
    with pytest.raises(RawSourceError, match=f"s3://{bucket}/landing/transactions/: the prefix holds no CSV or Parquet files"):
        empty.read(TRANSACTIONS)
    missing = RawDataSource(raw_dir="/unused", transactions_path=f"s3://{bucket}/nowhere/transactions.csv", s3=s3)
    with pytest.raises(RawSourceError, match=f"s3://{bucket}/nowhere/transactions.csv: no such object or prefix"):
        missing.read(TRANSACTIONS)
