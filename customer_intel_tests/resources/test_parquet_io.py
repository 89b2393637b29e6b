import json

import pandas as pd
import pytest

from customer_intel.resources import IncompletePartitionError, LocalObjectStore, read_table, write_table
from customer_intel.resources.tables import DATA_FILE, MANIFEST, partition_prefix

FRAME = pd.DataFrame({"customer_id": ["A", "B"], "score": [0.5, 0.25]})


def test_layout_is_the_s3_layout():
    assert partition_prefix(["scored_customers"], "2026-06-30") == "scored_customers/date=2026-06-30"
    assert partition_prefix(["raw_transactions"], None) == "raw_transactions"


def test_write_publishes_a_manifest_last_and_reads_back(tmp_path):
    store = LocalObjectStore(tmp_path)
    manifest = write_table(store, "scored_customers/date=2026-06-30", FRAME, run_id="r1")
    folder = tmp_path / "scored_customers" / "date=2026-06-30"
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, DATA_FILE]
    assert json.loads((folder / MANIFEST).read_text())["rows"] == 2 == manifest["rows"]
    assert manifest["run_id"] == "r1" and len(manifest["sha256"]) == 64
    pd.testing.assert_frame_equal(read_table(store, "scored_customers/date=2026-06-30"), FRAME)
    assert read_table(store, "scored_customers/date=2026-06-30", columns=["score"]).columns.tolist() == ["score"]
    pd.testing.assert_frame_equal(pd.read_parquet(folder / DATA_FILE), FRAME)  # plain Parquet for any reader


def test_interrupted_rewrite_leaves_no_visible_partition_and_a_rerun_completes_it(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    write_table(store, prefix, FRAME)

    class Crash(Exception):
        pass

    class CrashingStore(LocalObjectStore):
        def put(self, key, data):
            if key.endswith(DATA_FILE):
                super().put(key, data[: len(data) // 2])  # torn write, then the process dies
                raise Crash()
            super().put(key, data)

    with pytest.raises(Crash):
        write_table(CrashingStore(tmp_path), prefix, FRAME.assign(score=1.0))
    with pytest.raises(IncompletePartitionError, match="has no _SUCCESS manifest"):
        read_table(store, prefix)
    write_table(store, prefix, FRAME.assign(score=1.0))
    assert read_table(store, prefix)["score"].tolist() == [1.0, 1.0]


def test_a_data_file_that_no_longer_matches_its_manifest_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    write_table(store, prefix, FRAME)
    FRAME.assign(score=9.0).to_parquet(tmp_path / prefix / DATA_FILE, index=False)  # changed behind the manifest
    with pytest.raises(IncompletePartitionError, match=f"{DATA_FILE} does not match its _SUCCESS manifest"):
        read_table(store, prefix)


def test_store_keeps_keys_inside_its_root(tmp_path):
    with pytest.raises(ValueError, match="escapes the store root"):
        LocalObjectStore(tmp_path / "root").put("../outside.txt", b"x")
