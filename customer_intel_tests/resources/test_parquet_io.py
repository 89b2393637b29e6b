import errno
import json
import os

import pandas as pd
import pytest

from customer_intel.resources import IncompletePartitionError, LocalObjectStore, read_table, write_table
from customer_intel.resources.tables import DATA_FILE, MANIFEST, NonFiniteValuesError, WarehouseWriteError, partition_prefix, read_manifest

FRAME = pd.DataFrame({"customer_id": ["A", "B"], "score": [0.5, 0.25]})


def test_layout_is_the_s3_layout():
    assert partition_prefix(["scored_customers"], "2026-06-30") == "scored_customers/date=2026-06-30"
    assert partition_prefix(["raw_transactions"], None) == "raw_transactions"


def test_write_publishes_a_manifest_last_and_reads_back(tmp_path):
    store = LocalObjectStore(tmp_path)
    manifest = write_table(store, "scored_customers/date=2026-06-30", FRAME, run_id="r1")
    folder = tmp_path / "scored_customers" / "date=2026-06-30"
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, manifest["data_file"]]
    assert json.loads((folder / MANIFEST).read_text())["rows"] == 2 == manifest["rows"]
    assert manifest["run_id"] == "r1" and len(manifest["sha256"]) == 64
    pd.testing.assert_frame_equal(read_table(store, "scored_customers/date=2026-06-30"), FRAME)
    assert read_table(store, "scored_customers/date=2026-06-30", columns=["score"]).columns.tolist() == ["score"]
    pd.testing.assert_frame_equal(pd.read_parquet(folder / manifest["data_file"]), FRAME)  # plain Parquet for any reader


class Crash(Exception):
    pass


def test_a_failed_rewrite_leaves_the_last_good_partition_and_the_next_write_removes_its_leftovers(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    first = write_table(store, prefix, FRAME)

    class DiesAfterDataFile(LocalObjectStore):
        def put(self, key, data):
            if key.endswith(MANIFEST):
                # killed between the data file and the switch: its bytes and a temp file stay behind
                (self.root / prefix / ".part-x.parquet.abc.tmp").write_bytes(data[:3])
                raise Crash()
            super().put(key, data)

    with pytest.raises(WarehouseWriteError, match="the previous version is still published"):
        write_table(DiesAfterDataFile(tmp_path), prefix, FRAME.assign(score=1.0))
    pd.testing.assert_frame_equal(read_table(store, prefix), FRAME)  # the last good version, still readable
    leftovers = sorted(p.name for p in (tmp_path / prefix).iterdir())
    assert ".part-x.parquet.abc.tmp" in leftovers and first["data_file"] in leftovers
    second = write_table(store, prefix, FRAME.assign(score=1.0))
    assert read_table(store, prefix)["score"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in (tmp_path / prefix).iterdir()) == [MANIFEST, second["data_file"]]


def test_disk_full_during_a_rewrite_keeps_the_published_partition_and_says_so_in_one_line(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    write_table(store, prefix, FRAME)

    class FullDisk(LocalObjectStore):
        def put(self, key, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._path(key)))

    with pytest.raises(WarehouseWriteError) as failure:
        write_table(FullDisk(tmp_path), prefix, FRAME.assign(score=1.0))
    message = str(failure.value)
    assert "\n" not in message and "No space left on device" in message and "the previous version is still published" in message
    assert read_table(store, prefix)["score"].tolist() == [0.5, 0.25]
    assert sorted(p.name for p in (tmp_path / prefix).iterdir()) == [MANIFEST, read_manifest(store, prefix)["data_file"]]


def test_a_non_finite_number_is_never_published(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    write_table(store, prefix, FRAME)
    with pytest.raises(NonFiniteValuesError, match=r"'score' has 1 infinite values \(rows: \['B'\]\)"):
        write_table(store, prefix, FRAME.assign(score=[0.5, float("inf")]))
    assert read_table(store, prefix)["score"].tolist() == [0.5, 0.25]


def test_a_manifest_of_the_previous_layout_is_still_read(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "raw_transactions"
    write_table(store, prefix, FRAME)
    manifest = read_manifest(store, prefix)
    (tmp_path / prefix / manifest.pop("data_file")).rename(tmp_path / prefix / DATA_FILE)
    (tmp_path / prefix / MANIFEST).write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(read_table(store, prefix), FRAME)
    write_table(store, prefix, FRAME.assign(score=2.0))  # and the next write replaces the old file
    assert DATA_FILE not in [p.name for p in (tmp_path / prefix).iterdir()]


def test_a_data_file_that_no_longer_matches_its_manifest_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path)
    prefix = "scored_customers/date=2026-06-30"
    manifest = write_table(store, prefix, FRAME)
    FRAME.assign(score=9.0).to_parquet(tmp_path / prefix / manifest["data_file"], index=False)  # changed behind the manifest
    with pytest.raises(IncompletePartitionError, match=f"{manifest['data_file']} does not match its _SUCCESS manifest"):
        read_table(store, prefix)


def test_store_keeps_keys_inside_its_root(tmp_path):
    with pytest.raises(ValueError, match="escapes the store root"):
        LocalObjectStore(tmp_path / "root").put("../outside.txt", b"x")


KILLED_WRITER = """
import os, signal, sys
import pandas as pd
from customer_intel.resources.storage import LocalObjectStore
from customer_intel.resources.tables import write_table

def killed(fd):  # SIGKILL with the new data file's temp file on disk, before its rename
    os.kill(os.getpid(), signal.SIGKILL)

os.fsync = killed
write_table(LocalObjectStore(sys.argv[1]), "scored_customers/date=2026-06-30", pd.DataFrame({"customer_id": ["A"], "score": [9.0]}))
"""


def test_a_killed_run_leaves_the_partition_readable_and_the_next_run_removes_its_temp_file(tmp_path):
    import subprocess
    import sys

    import dagster as dg

    from customer_intel.resources import ParquetIOManager, Warehouse

    partitions = dg.StaticPartitionsDefinition(["2026-06-30"])

    def materialize(frame):
        @dg.asset(name="scored_customers", partitions_def=partitions)
        def scored():
            return frame

        io_manager = ParquetIOManager(warehouse=Warehouse(root=str(tmp_path)))
        result = dg.materialize([scored], partition_key="2026-06-30", resources={"io_manager": io_manager})
        assert result.success

    folder = tmp_path / "scored_customers" / "date=2026-06-30"
    materialize(FRAME)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    temp_files = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(temp_files) == 1 and temp_files[0].startswith(".part-"), temp_files
    pd.testing.assert_frame_equal(read_table(LocalObjectStore(tmp_path), "scored_customers/date=2026-06-30"), FRAME)
    materialize(FRAME.assign(score=1.0))
    manifest = read_manifest(LocalObjectStore(tmp_path), "scored_customers/date=2026-06-30")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, manifest["data_file"]]  # the dead run's temp file is gone
    assert read_table(LocalObjectStore(tmp_path), "scored_customers/date=2026-06-30")["score"].tolist() == [1.0, 1.0]
