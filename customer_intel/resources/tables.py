"""Complete-or-absent Parquet tables in an object store under ``<asset>/[date=YYYY-MM-DD/]part-0.parquet``.

A write unpublishes the partition (removes ``_SUCCESS``), writes the data, reads it back to
verify row count and checksum, then publishes a ``_SUCCESS`` manifest last. Readers refuse a
partition without the manifest, so nobody ever reads half a partition.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_intel.resources.storage import ObjectStore

DATA_FILE = "part-0.parquet"
MANIFEST = "_SUCCESS"


class IncompletePartitionError(RuntimeError):
    """A partition has no published manifest: it was never written, or its write was interrupted."""


def partition_prefix(asset_path: list[str], partition_key: str | None) -> str:
    prefix = "/".join(asset_path)
    return f"{prefix}/date={partition_key}" if partition_key else prefix


def write_table(store: ObjectStore, prefix: str, frame: pd.DataFrame, run_id: str | None = None) -> dict:
    """Write ``frame`` to ``prefix`` and publish it; returns the manifest."""
    store.delete(f"{prefix}/{MANIFEST}")  # unpublish first: during the rewrite the partition is absent
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    data = sink.getvalue()
    store.put(f"{prefix}/{DATA_FILE}", data)
    written = store.get(f"{prefix}/{DATA_FILE}")
    digest = hashlib.sha256(data).hexdigest()
    if hashlib.sha256(written).hexdigest() != digest or pq.read_metadata(io.BytesIO(written)).num_rows != len(frame):
        raise OSError(f"{store.uri(prefix)}: verification after write failed; partition left unpublished")
    manifest = {
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "bytes": len(data),
        "sha256": digest,
        "data_file": DATA_FILE,
        "written_at": datetime.now(UTC).isoformat(),
        "run_id": run_id,
    }
    store.put(f"{prefix}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    return manifest


def read_manifest(store: ObjectStore, prefix: str) -> dict | None:
    """The published manifest of the table at ``prefix``, or None when it is not published."""
    key = f"{prefix}/{MANIFEST}"
    return json.loads(store.get(key)) if store.exists(key) else None


def read_table(store: ObjectStore, prefix: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a published table; raises IncompletePartitionError if it was never published or its
    bytes no longer match the manifest (a rewrite is under way, or the file was changed by hand)."""
    manifest = read_manifest(store, prefix)
    if manifest is None:
        raise IncompletePartitionError(
            f"{store.uri(prefix)} has no {MANIFEST} manifest: the table was never written or its last write "
            "was interrupted. Materialise it (again) before reading it."
        )
    data = store.get(f"{prefix}/{manifest.get('data_file', DATA_FILE)}")
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise IncompletePartitionError(
            f"{store.uri(prefix)}: {DATA_FILE} does not match its {MANIFEST} manifest (sha256): a rewrite is under way "
            "or the file was changed outside the pipeline. Materialise it again."
        )
    return pq.read_table(io.BytesIO(data), columns=columns).to_pandas()
