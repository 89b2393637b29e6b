"""Parquet IO manager: complete-or-absent partitions under ``<asset>/[date=YYYY-MM-DD/]part-0.parquet``.

It writes through the warehouse resource (a local folder or an S3 prefix, same keys) with the
write-verify-publish protocol of ``tables.write_table``; readers refuse unpublished partitions.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from customer_intel.resources.storage import ObjectStore
from customer_intel.resources.tables import DATA_FILE, partition_prefix, read_table, write_table
from customer_intel.resources.warehouse import Warehouse


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame assets as Parquet in the warehouse (a local folder or an S3 prefix, same keys).

    An input may ask for a subset of columns with ``AssetIn(metadata={"columns": [...]})``.
    """

    warehouse: Warehouse

    def _store(self) -> ObjectStore:
        return self.warehouse.store()

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"ParquetIOManager stores DataFrames; {context.asset_key.to_user_string()} returned {type(obj).__name__}")
        partition = context.partition_key if context.has_asset_partitions else None
        prefix = partition_prefix(context.asset_key.path, partition)
        store = self._store()
        manifest = write_table(store, prefix, obj, run_id=context.run_id)
        uri = store.uri(f"{prefix}/{DATA_FILE}")
        context.add_output_metadata(
            {"path": dg.MetadataValue.url(uri) if uri.startswith("s3://") else dg.MetadataValue.path(uri), "bytes": manifest["bytes"]}
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict[str, pd.DataFrame]:
        columns = (context.definition_metadata or {}).get("columns")
        store = self._store()
        path = context.asset_key.path
        if not context.has_asset_partitions:
            return read_table(store, partition_prefix(path, None), columns)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return read_table(store, partition_prefix(path, keys[0]), columns)
        return {key: read_table(store, partition_prefix(path, key), columns) for key in keys}
