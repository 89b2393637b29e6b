"""The warehouse resource: where output tables live (a local folder or ``s3://bucket/prefix``).

The Parquet IO manager writes through it and the sensors read through it, so both see the same
keys and honour the same ``_SUCCESS`` manifests.
"""

from __future__ import annotations

import re

import pandas as pd
from pydantic import Field

from customer_intel.resources.s3_client import S3ClientResource
from customer_intel.resources.settings import Settings
from customer_intel.resources.storage import S3_SCHEME, LocalObjectStore, ObjectStore, S3ObjectStore
from customer_intel.resources.tables import MANIFEST, partition_prefix, read_manifest, read_table

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})/(?:shard=(\d+)/)?" + re.escape(MANIFEST) + "$")


class Warehouse(S3ClientResource):
    """Output tables as Parquet under ``root``: ``<asset>/[date=YYYY-MM-DD/]part-<id>.parquet`` + the ``_SUCCESS`` manifest that names it.

    ``root`` is a local folder (default ``data/warehouse``) or ``s3://bucket/prefix``; for S3 the
    bytes move through the boto3 client of ``s3`` (dagster-aws ``S3Resource``: ``endpoint_url``
    for MinIO, credentials from the standard AWS chain, never from configuration files).
    """

    root: str | None = Field(default=None, description="a folder or s3://bucket/prefix; unset: $CUSTOMER_INTEL_WAREHOUSE_DIR, "
                             "else $CUSTOMER_INTEL_DATA_DIR/warehouse (local) or s3://$CUSTOMER_INTEL_S3_BUCKET/$CUSTOMER_INTEL_S3_PREFIX")

    @property
    def location(self) -> str:
        """``root``, or the environment's warehouse location (read now, not at import)."""
        return self.root or Settings.from_env().warehouse_root

    def store(self) -> ObjectStore:
        """A local folder, or the S3 prefix through this resource's one boto3 client."""
        location = self.location
        if location.startswith(S3_SCHEME):
            return S3ObjectStore.from_uri(self.s3_client(), location)
        return LocalObjectStore(location)

    def read(self, asset: str, partition: str | None = None, columns: list[str] | None = None, shard: int | str | None = None) -> pd.DataFrame:
        """A published table, partition or shard (raises IncompletePartitionError when it is not published)."""
        return read_table(self.store(), partition_prefix([asset], partition, shard), columns)

    def manifest(self, asset: str, partition: str | None = None, shard: int | str | None = None) -> dict | None:
        """The published manifest of a table, partition or shard, or None when there is none."""
        return read_manifest(self.store(), partition_prefix([asset], partition, shard))

    def published(self, asset: str) -> dict[str, list[str | None]]:
        """Date -> the published shards of that date of ``asset`` (``[None]`` for a partition stored without shards), oldest first."""
        found: dict[str, list[str | None]] = {}
        for obj in self.store().list(asset):
            match = _PARTITION.match(obj.key[len(asset) + 1:])
            if match:
                found.setdefault(match.group(1), []).append(match.group(2))
        return {day: sorted(shards, key=lambda s: -1 if s is None else int(s)) for day, shards in sorted(found.items())}

    def published_partitions(self, asset: str) -> list[str]:
        """Dates of the partitions of ``asset`` with a published manifest (any shard of a sharded asset), oldest first."""
        return list(self.published(asset))

    def read_date(self, asset: str, partition: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A date of ``asset`` whole: the partition, or every published shard of it concatenated in shard order."""
        shards = self.published(asset).get(partition) or [None]
        frames = [self.read(asset, partition, columns, shard) for shard in shards]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
