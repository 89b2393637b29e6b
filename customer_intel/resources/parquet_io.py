"""Parquet IO manager: complete-or-absent tables under ``<asset>/[date=YYYY-MM-DD/]``, switched by their manifest.

It writes through the warehouse resource (a local folder or an S3 prefix, same keys) with the
write-beside-verify-switch protocol of ``tables``; readers refuse unpublished partitions. An
asset may return a pandas frame, or a ``ParquetFile`` the engine wrote (published as is, never
loaded into pandas); an input may ask for the file instead of a frame with
``AssetIn(metadata={"engine": True})`` (the warehouse's own file locally, a verified copy from S3).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from customer_intel.engine import ParquetFile
from customer_intel.resources.exports import EXPORT_ID_COLUMNS, pipeline_prefix, write_export
from customer_intel.resources.settings import ConfigurationError
from customer_intel.resources.storage import ObjectStore
from customer_intel.resources.tables import (
    IncompletePartitionError,
    NonFiniteValuesError,
    WarehouseWriteError,
    partition_prefix,
    published_file,
    read_table,
    write_file,
    write_table,
)
from customer_intel.resources.warehouse import Warehouse

_STAGING: list[Path] = []


def staging_dir() -> Path:
    """A folder for local copies of S3 inputs, removed when the process exits."""
    if not _STAGING:
        folder = Path(tempfile.mkdtemp(prefix="customer_intel_inputs_"))
        atexit.register(shutil.rmtree, folder, True)
        _STAGING.append(folder)
    return _STAGING[0]


def _date_and_shard(key: str, partitions_def) -> tuple[str, str | None]:
    """A partition key as (date, shard): a scoring shard's ``date|shard`` key is stored under ``date=.../shard=...``."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = partitions_def.get_partition_key_from_str(str(key)).keys_by_dimension
        return dims["date"], dims["shard"]
    return key, None


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame assets as Parquet in the warehouse (a local folder or an S3 prefix, same keys).

    An input may ask for a subset of columns with ``AssetIn(metadata={"columns": [...]})``, or for
    the published file itself with ``AssetIn(metadata={"engine": True})``.
    """

    warehouse: Warehouse

    def _store(self) -> ObjectStore:
        return self.warehouse.store()

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | ParquetFile) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame | ParquetFile):
            raise TypeError(f"ParquetIOManager stores DataFrames; {context.asset_key.to_user_string()} returned {type(obj).__name__}")
        partition, shard = _date_and_shard(context.partition_key, context.asset_partitions_def) if context.has_asset_partitions else (None, None)
        prefix = partition_prefix(context.asset_key.path, partition, shard)
        store = self._store()
        export_ids = EXPORT_ID_COLUMNS.get(context.asset_key.to_user_string())
        try:
            if export_ids is not None:  # a table that leaves the bank: ids pseudonymised when a salt is set
                frame = obj.to_pandas() if isinstance(obj, ParquetFile) else obj
                manifest = write_export(store, prefix, frame, export_ids, run_id=context.run_id)
            elif isinstance(obj, ParquetFile):
                manifest = write_file(store, prefix, obj.path, run_id=context.run_id)
            else:
                manifest = write_table(store, prefix, obj, run_id=context.run_id)
        except (WarehouseWriteError, NonFiniteValuesError, ConfigurationError) as exc:
            # a failed write (S3 or the disk) may pass, so the step's RetryPolicy may retry it; bad numbers or settings do not
            raise dg.Failure(description=f"{context.asset_key.to_user_string()}: {exc}",
                             allow_retries=isinstance(exc, WarehouseWriteError)) from exc
        uri = store.uri(f"{prefix}/{manifest['data_file']}")
        context.add_output_metadata(
            {"path": dg.MetadataValue.url(uri) if uri.startswith("s3://") else dg.MetadataValue.path(uri), "bytes": manifest["bytes"],
             **({"customer_ids": f"{manifest['customer_ids']}, keyed by CUSTOMER_INTEL_EXPORT_ID_SALT"} if "customer_ids" in manifest else {})}
        )

    def _load(self, store: ObjectStore, prefix: str, metadata: dict) -> pd.DataFrame | ParquetFile:
        if prefix.split("/", 1)[0] in EXPORT_ID_COLUMNS:  # downstream assets join on the real ids, never the pseudonyms
            prefix = pipeline_prefix(store, prefix)
        try:
            if metadata.get("engine"):
                path, manifest = published_file(store, prefix, staging_dir())
                return ParquetFile(path, manifest["rows"])
            return read_table(store, prefix, metadata.get("columns"))
        except IncompletePartitionError as exc:  # never published, or changed outside: a retry reads the same
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | ParquetFile | dict:
        metadata = context.definition_metadata or {}
        store = self._store()
        path = context.asset_key.path
        if not context.has_asset_partitions:
            return self._load(store, partition_prefix(path, None), metadata)
        keys = context.asset_partition_keys
        prefixes = {key: partition_prefix(path, *_date_and_shard(key, context.asset_partitions_def)) for key in keys}
        if len(keys) == 1:
            return self._load(store, prefixes[keys[0]], metadata)
        return {key: self._load(store, prefix, metadata) for key, prefix in prefixes.items()}
