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
from customer_intel.ingest.contract import IngestLimits
from customer_intel.ingest.reader import LOCAL_FILES, TABLE_SUFFIXES, RawSourceError, is_table_file_name
from customer_intel.resources.s3_client import S3ClientResource
from customer_intel.resources.settings import NOT_CONFIGURED, TABLES, ConfigurationError, Settings, column_mapping
from customer_intel.resources.storage import S3_SCHEME, S3ObjectStore, StoredObject, s3_uri, split_s3_uri, stat_object


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

    def stage(self, path: str, target: Path) -> str:
        """Copy an object to a local file for the engine; the caller owns ``target``'s folder."""
        bucket, key = split_s3_uri(path)
        try:
            self.client.download_file(bucket, key, str(target))
        except Exception as exc:  # access denied, object gone since it was listed, endpoint down
            raise RawSourceError(f"{path}: cannot be downloaded: {exc}") from exc
        return str(target)


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
    customers_duplicates: str | None = Field(default=None, description="a customer id on more than one row: 'refuse' or 'keep_last' "
                                             "(the last row in file order); unset: $CUSTOMER_INTEL_CUSTOMERS_DUPLICATES, else refuse")
    max_abs_amount: float | None = Field(default=None, description="amounts further from zero are refused; unset: $CUSTOMER_INTEL_MAX_ABS_AMOUNT, else 1e9")
    min_date: str | None = Field(default=None, description="YYYY-MM-DD: earlier timestamps are placeholders and refused; "
                                 "unset: $CUSTOMER_INTEL_MIN_DATE, else 1980-01-01")

    @property
    def raw_location(self) -> str:
        """``raw_dir``, or the environment's raw location (read now, not at import)."""
        return self.raw_dir or Settings.from_env().raw_dir

    def _explicit_path(self, table: str) -> str | None:
        explicit = getattr(self, f"{table}_path")
        return explicit if explicit is not None else Settings.from_env().table_paths[table]

    def columns(self, table: str) -> dict[str, str]:
        mapping = getattr(self, f"{table}_columns")
        return column_mapping(mapping, f"raw_data.{table}_columns") if mapping is not None else Settings.from_env().column_mappings[table]

    def limits(self) -> IngestLimits:
        """The configurable bounds of the contract's rules (resource fields, else the environment)."""
        settings = Settings.from_env()
        try:
            return IngestLimits(
                max_abs_amount=self.max_abs_amount if self.max_abs_amount is not None else settings.max_abs_amount,
                min_date=self.min_date or settings.min_date,
                duplicate_keys=self.customers_duplicates or settings.customers_duplicates,
            )
        except ValueError as exc:
            raise ConfigurationError(f"raw_data: {exc}") from None

    def switched_off(self, table: str) -> bool:
        """True when the table is switched off explicitly (path 'none')."""
        explicit = self._explicit_path(table)
        return explicit is not None and explicit.strip().lower() in NOT_CONFIGURED

    def location(self, table: str) -> str | None:
        """Where ``table`` is: an explicit path, else found by name in the raw folder; None when absent.

        A raw folder that does not exist, and a table found in two forms (``transactions.csv`` beside
        ``transactions.parquet``), are errors that name the paths: reading either would be a guess.
        """
        explicit = self._explicit_path(table)
        if explicit is not None:
            return None if explicit.strip().lower() in NOT_CONFIGURED else explicit
        raw_dir = self.raw_location
        if raw_dir.startswith(S3_SCHEME):
            bucket, prefix = split_s3_uri(raw_dir)
            listed = S3ObjectStore(self.s3_client(), bucket).list(prefix)
            if not listed:
                raise RawSourceError(f"the raw location {raw_dir} holds no objects (CUSTOMER_INTEL_RAW_DIR / raw_data.raw_dir); "
                                     "nothing was read or written")
            names = {obj.key[len(prefix):].lstrip("/") for obj in listed}
            found = [s3_uri(bucket, prefix, f"{table}{suffix}") for suffix in TABLE_SUFFIXES if f"{table}{suffix}" in names]
            if any(name.startswith(f"{table}/") for name in names):
                found.append(s3_uri(bucket, prefix, table) + "/")
        else:
            root = Path(raw_dir)
            if not root.is_dir():
                raise RawSourceError(f"the raw folder {raw_dir} does not exist (CUSTOMER_INTEL_RAW_DIR / raw_data.raw_dir); "
                                     "nothing was read or written")
            found = [str(c) for c in [root / f"{table}{suffix}" for suffix in TABLE_SUFFIXES] + [root / table] if c.exists()]
        if len(found) > 1:
            raise RawSourceError(f"{table} is there in {len(found)} forms: {', '.join(found)}. Remove the stale one, or name the one "
                                 f"to read with CUSTOMER_INTEL_{table.upper()}_PATH (raw_data.{table}_path)")
        return found[0] if found else None

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
                files = self.table_files(table)
            except RawSourceError:
                continue
            found.update((f.uri, f) for f in files)
        return sorted(found.values(), key=lambda f: f.uri)

    def table_files(self, table: str) -> list[LandedFile]:
        """The files ``table`` would be read from now, with the content tags the landing sensor compares
        (S3 ETag; size + mtime of a local file); [] when the table is absent. Raises RawSourceError
        like ``read``. Ingestion records them before it reads (see ``raw_landing_sensor``)."""
        location = self.location(table)
        if location is None:
            return []
        if location.startswith(S3_SCHEME):
            objects = S3Files(self.s3_client()).objects(location)
        else:
            # absolute paths: the sensor and the ingestion that recorded its baseline may resolve a relative raw_dir
            # from different working directories
            objects = [(str(Path(path).resolve()), stat_object(Path(path), path)) for path in LOCAL_FILES.list(location)]
        return sorted((LandedFile(uri, obj.etag, obj.last_modified) for uri, obj in objects), key=lambda f: f.uri)
