"""The raw-data source resource: where the bank's three tables are and what their columns are called.

Locations are local paths or ``s3://bucket/key`` (one file) / ``s3://bucket/prefix/`` (a folder of
files); S3 bytes move through the boto3 client of dagster-aws's ``S3Resource``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import Field

from customer_intel.ingest import RawTable, TableContract, read_raw_table
from customer_intel.ingest.reader import LOCAL_FILES, TABLE_SUFFIXES, RawSourceError, is_table_file_name
from customer_intel.resources.s3_client import S3ClientResource
from customer_intel.resources.settings import Settings
from customer_intel.resources.storage import S3_SCHEME, S3ObjectStore, StoredObject, s3_uri, split_s3_uri, stat_object

NOT_CONFIGURED = {"", "none", "off"}
TABLES = ("transactions", "customers", "campaigns")


@dataclass(frozen=True)
class LandedFile:
    """A raw file as the landing sensor sees it: where it is and a tag that changes with its content."""

    uri: str
    etag: str
    last_modified: datetime


class S3Files:
    """The reader's view of S3: a key is one file, a prefix is a folder of files (its direct children)."""

    def __init__(self, client):
        self.client = client

    def objects(self, location: str) -> list[tuple[str, StoredObject]]:
        """(URI, object) of every file the reader takes from ``location``."""
        bucket, key = split_s3_uri(location)
        objects = S3ObjectStore(self.client, bucket).list(key)
        exact = [obj for obj in objects if obj.key == key]
        if exact and not location.endswith("/"):
            return [(location, exact[0])]
        files = [obj for obj in objects if "/" not in obj.key[len(key):].lstrip("/") and is_table_file_name(obj.key)]
        if not files:
            if objects:
                raise RawSourceError(f"{location}: the prefix holds no CSV or Parquet files ({', '.join(TABLE_SUFFIXES)})")
            raise RawSourceError(f"{location}: no such object or prefix")
        return [(s3_uri(bucket, obj.key), obj) for obj in files]

    def list(self, location: str) -> list[str]:
        return [uri for uri, _ in self.objects(location)]

    def open(self, path: str) -> io.BytesIO:
        bucket, key = split_s3_uri(path)
        return io.BytesIO(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())


class RawDataSource(S3ClientResource):
    """Locates and reads the raw tables, from a local folder or an S3 prefix.

    A table is found by name in ``raw_dir`` (``transactions.parquet``, ``transactions.csv`` or a
    ``transactions/`` folder of such files) unless ``<table>_path`` names a file or folder
    explicitly; an explicit path that does not exist is an error, a table that is neither
    configured nor found is absent and its features are switched off. Set a path to ``none`` to
    switch a table off. ``<table>_columns`` maps contract names to the export's names, e.g.
    ``{"customer_id": "Customer Key"}``. ``raw_dir`` and the paths may be ``s3://`` URIs; ``s3``
    is the client configuration then (default: the standard AWS chain).
    """

    raw_dir: str | None = Field(default=None, description="folder or s3://bucket/prefix the tables are found in by name; "
                                "unset: $CUSTOMER_INTEL_RAW_DIR, else $CUSTOMER_INTEL_DATA_DIR/raw (local) or s3://$CUSTOMER_INTEL_S3_BUCKET/raw")
    transactions_path: str | None = Field(default=None, description="explicit file or folder ('none': off); unset: $CUSTOMER_INTEL_TRANSACTIONS_PATH, else found by name")
    customers_path: str | None = Field(default=None, description="explicit file or folder ('none': off); unset: $CUSTOMER_INTEL_CUSTOMERS_PATH, else found by name")
    campaigns_path: str | None = Field(default=None, description="explicit file or folder ('none': off); unset: $CUSTOMER_INTEL_CAMPAIGNS_PATH, else found by name")
    transactions_columns: dict[str, str] | None = Field(default=None, description="contract column -> export column; unset: $CUSTOMER_INTEL_TRANSACTIONS_COLUMNS")
    customers_columns: dict[str, str] | None = Field(default=None, description="contract column -> export column; unset: $CUSTOMER_INTEL_CUSTOMERS_COLUMNS")
    campaigns_columns: dict[str, str] | None = Field(default=None, description="contract column -> export column; unset: $CUSTOMER_INTEL_CAMPAIGNS_COLUMNS")

    @property
    def raw_location(self) -> str:
        """``raw_dir``, or the environment's raw location (read now, not at import)."""
        return self.raw_dir or Settings.from_env().raw_dir

    def _explicit_path(self, table: str) -> str | None:
        explicit = getattr(self, f"{table}_path")
        return explicit if explicit is not None else Settings.from_env().table_paths[table]

    def columns(self, table: str) -> dict[str, str]:
        mapping = getattr(self, f"{table}_columns")
        return mapping if mapping is not None else Settings.from_env().column_mappings[table]

    def location(self, table: str) -> str | None:
        explicit = self._explicit_path(table)
        if explicit is not None:
            return None if explicit.strip().lower() in NOT_CONFIGURED else explicit
        raw_dir = self.raw_location
        if raw_dir.startswith(S3_SCHEME):
            bucket, prefix = split_s3_uri(raw_dir)
            names = {obj.key[len(prefix):].lstrip("/") for obj in S3ObjectStore(self.s3_client(), bucket).list(prefix)}
            for suffix in TABLE_SUFFIXES:
                if f"{table}{suffix}" in names:
                    return s3_uri(bucket, prefix, f"{table}{suffix}")
            if any(name.startswith(f"{table}/") for name in names):
                return s3_uri(bucket, prefix, table) + "/"
            return None
        root = Path(raw_dir)
        for candidate in [root / f"{table}{suffix}" for suffix in TABLE_SUFFIXES] + [root / table]:
            if candidate.exists():
                return str(candidate)
        return None

    def read(self, contract: TableContract) -> RawTable:
        location = self.location(contract.name)
        files = S3Files(self.s3_client()) if location and location.startswith(S3_SCHEME) else LOCAL_FILES
        return read_raw_table(contract, location, self.columns(contract.name), files)

    def landed_files(self) -> list[LandedFile]:
        """Exactly the files the ingestion assets would read now, with content tags.

        What the landing sensor watches: a new file, or a changed tag, means new raw data. Files
        the reader would not take (other names, nested folders, markers such as ``_SUCCESS``)
        launch nothing; a table with nothing readable yet is skipped (ingestion reports it).
        """
        found: dict[str, LandedFile] = {}
        for table in TABLES:
            try:
                location = self.location(table)
                if location is None:
                    continue
                if location.startswith(S3_SCHEME):
                    objects = S3Files(self.s3_client()).objects(location)
                else:
                    objects = [(path, stat_object(Path(path), path)) for path in LOCAL_FILES.list(location)]
            except RawSourceError:
                continue
            for uri, obj in objects:
                found[uri] = LandedFile(uri, obj.etag, obj.last_modified)
        return sorted(found.values(), key=lambda f: f.uri)
