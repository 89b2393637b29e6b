"""Complete-or-absent Parquet tables in an object store under ``<asset>/[date=YYYY-MM-DD/]``.

A write never touches what is published: it writes a new data file (``part-<id>.parquet``) beside
the old one, reads it back to verify its checksum and row count, then switches the ``_SUCCESS``
manifest to it in one atomic step (a rename locally, one PUT on S3) and only then removes the old
file. A failure at any step (disk full, a killed process, S3 unreachable) leaves the previous
version readable; the next write removes what a dead run left behind (on S3 once it is an hour old:
a younger file may be another live writer's). Locally, writers of one table take turns (a ``flock``); on S3
the last switch wins, and a reader whose file was removed right after a switch follows the new manifest. Readers follow the
manifest and refuse a table without one, so nobody ever reads half a partition.

Every numeric column must be finite before anything is written: an ``inf`` in a published
table is refused with the column and a few rows named.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_intel.resources.storage import ObjectStore

DATA_FILE = "part-0.parquet"  # the data file of manifests written before the atomic switch
MANIFEST = "_SUCCESS"
_DATA_NAME = re.compile(r"^part-[0-9A-Za-z-]+\.parquet$")  # part-0, part-<UTC time>-<id>
_TEMP_NAME = re.compile(r"^\..+\.tmp$")


class IncompletePartitionError(RuntimeError):
    """A partition has no published manifest: it was never written, or its write was interrupted."""


class WarehouseWriteError(RuntimeError):
    """A table could not be written; the previous version, if any, is still published."""


class NonFiniteValuesError(ValueError):
    """A table about to be published holds inf / -inf in a numeric column."""


def partition_prefix(asset_path: list[str], partition_key: str | None, shard: str | int | None = None) -> str:
    """``<asset>``, ``<asset>/date=YYYY-MM-DD`` or, for a scoring shard, ``<asset>/date=YYYY-MM-DD/shard=S``."""
    prefix = "/".join(asset_path)
    if not partition_key:
        return prefix
    return f"{prefix}/date={partition_key}" + (f"/shard={shard}" if shard is not None else "")


def check_finite(frame: pd.DataFrame, where: str) -> None:
    """Refuse ±inf in any numeric column (NaN is a missing value and allowed)."""
    problems = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            bad = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
            if bad.any():
                ids = frame.loc[bad, "customer_id"].head(5).tolist() if "customer_id" in frame else frame.index[bad][:5].tolist()
                problems.append(f"'{column}' has {int(bad.sum()):,} infinite values (rows: {ids})")
    if problems:
        raise NonFiniteValuesError(f"{where}: refusing to publish non-finite numbers: {'; '.join(problems)}. "
                                   "An input amount is probably absurd (see CUSTOMER_INTEL_MAX_ABS_AMOUNT); the last good version stays published.")


def _data_files(store: ObjectStore, prefix: str) -> dict[str, datetime]:
    """Names directly under ``prefix`` that are data files or temp files (not the manifest), with their modification times."""
    files = {}
    for obj in store.list(prefix):
        name = obj.key[len(prefix):].lstrip("/")
        if "/" not in name and (_DATA_NAME.match(name) or _TEMP_NAME.match(name)):
            files[name] = obj.last_modified
    return files


def _remove_leftovers(store: ObjectStore, prefix: str, keep: str | None) -> list[str]:
    """Remove temp files and data files the manifest does not point at (a dead run's); returns their names.

    Only files older than the store's ``leftover_grace_seconds``: on S3, where writers do not take turns, a younger
    one may be a live run's, verified and about to be published (removing it would publish a missing file)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=store.leftover_grace_seconds)
    removed = sorted(name for name, modified in _data_files(store, prefix).items() if name != keep and modified <= cutoff)
    for name in removed:
        store.delete(f"{prefix}/{name}")
    return removed


def _publish(store: ObjectStore, prefix: str, *, rows: int, columns: list[str], digest: str, size: int, upload, run_id,
             extra: dict | None = None) -> dict:
    with contextlib.ExitStack() as held:
        try:  # locally, writers of one table take turns; on S3 the last switch wins
            held.enter_context(store.write_lock(prefix))
        except OSError as exc:
            raise WarehouseWriteError(f"could not write {store.uri(prefix)}: {exc.strerror} ({exc.filename}); nothing was changed") from exc
        current = read_manifest(store, prefix)
        keep = current.get("data_file", DATA_FILE) if current else None
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        key = f"{prefix}/{name}"
        manifest = {"rows": rows, "columns": columns, "bytes": size, "sha256": digest, "data_file": name,
                    "written_at": datetime.now(UTC).isoformat(), "run_id": run_id, **(extra or {})}
        try:
            _remove_leftovers(store, prefix, keep)
            upload(key)
            if store.sha256(key) != digest:
                raise OSError(f"{store.uri(key)} does not match the bytes written (sha256)")
            store.put(f"{prefix}/{MANIFEST}", json.dumps(manifest, indent=1).encode())  # the atomic switch
        except Exception as exc:
            with contextlib.suppress(Exception):  # the write already failed; the next write removes a leftover
                store.delete(key)
            reason = f"{exc.strerror} ({exc.filename or store.uri(key)})" if isinstance(exc, OSError) and exc.strerror else str(exc)
            state = "the previous version is still published" if current else "nothing was published"
            raise WarehouseWriteError(f"could not write {store.uri(prefix)}: {reason}; {state}") from exc
        if keep and keep != name:
            with contextlib.suppress(Exception):  # an orphan is removed by the next write
                store.delete(f"{prefix}/{keep}")
        return manifest


def write_table(store: ObjectStore, prefix: str, frame: pd.DataFrame, run_id: str | None = None, extra: dict | None = None) -> dict:
    """Write ``frame`` to ``prefix`` and publish it; returns the manifest (``extra``: more manifest fields)."""
    check_finite(frame, store.uri(prefix))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    data = sink.getvalue()
    return _publish(store, prefix, rows=len(frame), columns=[str(c) for c in frame.columns],
                    digest=hashlib.sha256(data).hexdigest(), size=len(data), upload=lambda key: store.put(key, data), run_id=run_id,
                    extra=extra)


def _file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(8 * 1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_file(store: ObjectStore, prefix: str, path: str | Path, run_id: str | None = None) -> dict:
    """Publish a Parquet file the engine wrote (streamed, never loaded into pandas); returns the manifest."""
    metadata = pq.read_metadata(path)
    return _publish(store, prefix, rows=metadata.num_rows, columns=list(metadata.schema.names), digest=_file_sha256(path),
                    size=Path(path).stat().st_size, upload=lambda key: store.put_file(key, path), run_id=run_id)


def read_manifest(store: ObjectStore, prefix: str) -> dict | None:
    """The published manifest of the table at ``prefix``, or None when it is not published."""
    key = f"{prefix}/{MANIFEST}"
    return json.loads(store.get(key)) if store.exists(key) else None


def _published(store: ObjectStore, prefix: str) -> dict:
    manifest = read_manifest(store, prefix)
    if manifest is None:
        raise IncompletePartitionError(
            f"{store.uri(prefix)} has no {MANIFEST} manifest: the table was never written or its last write "
            "was interrupted. Materialise it (again) before reading it."
        )
    return manifest


def _mismatch(store: ObjectStore, prefix: str, name: str) -> IncompletePartitionError:
    return IncompletePartitionError(
        f"{store.uri(prefix)}: {name} does not match its {MANIFEST} manifest (sha256): the file was changed "
        "outside the pipeline. Materialise it again."
    )


READ_ATTEMPTS = 5


def _gone(exc: Exception) -> bool:
    """A data file that is not there (locally or on S3)."""
    if isinstance(exc, FileNotFoundError):
        return True
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _read_published(store: ObjectStore, prefix: str, read):
    """``read(manifest, data_file)`` of the published version. A writer switches the manifest and then removes the file
    the old one named, so a reader between the two finds its file gone: it then follows the new manifest (up to
    ``READ_ATTEMPTS`` switches); a file gone or changed while the manifest stays the same is an error."""
    manifest = _published(store, prefix)
    for attempt in range(READ_ATTEMPTS):
        name = manifest.get("data_file", DATA_FILE)
        try:
            return read(manifest, name)
        except Exception as exc:
            if attempt == READ_ATTEMPTS - 1 or not (_gone(exc) or isinstance(exc, IncompletePartitionError)):
                raise
            latest = _published(store, prefix)
            if latest == manifest:
                raise
            manifest = latest
    raise AssertionError("unreachable")


def read_table(store: ObjectStore, prefix: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a published table; raises IncompletePartitionError if it was never published or its
    bytes no longer match the manifest."""
    def read(manifest: dict, name: str) -> pd.DataFrame:
        data = store.get(f"{prefix}/{name}")
        if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            raise _mismatch(store, prefix, name)
        return pq.read_table(io.BytesIO(data), columns=columns).to_pandas()

    return _read_published(store, prefix, read)


def published_file(store: ObjectStore, prefix: str, staging: Path) -> tuple[str, dict]:
    """A local path of the published data file (the file itself locally, a verified copy from S3) and its manifest."""
    def read(manifest: dict, name: str) -> tuple[str, dict]:
        path = store.local_path(f"{prefix}/{name}", staging)
        if _file_sha256(path) != manifest["sha256"]:
            raise _mismatch(store, prefix, name)
        return path, manifest

    return _read_published(store, prefix, read)
