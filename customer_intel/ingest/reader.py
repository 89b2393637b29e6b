"""The one reader for raw tables: CSV or Parquet, one file or a folder of files, with a column mapping.

Values are returned as read (CSV as text): type coercion belongs to validation, which must see
the original values to name the offending rows. Every row remembers its file and row number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import pandas as pd

from customer_intel.ingest.contract import TableContract

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


class RawSourceError(ValueError):
    """The configured location cannot be read at all (missing, unreadable, unknown format)."""


@dataclass
class RawTable:
    """A raw table as read from its source, before validation."""

    name: str
    location: str | None
    files: list[str] = field(default_factory=list)
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    column_mapping: dict[str, str] = field(default_factory=dict)
    missing_mapped_columns: dict[str, str] = field(default_factory=dict)  # contract name -> source name

    @property
    def absent(self) -> bool:
        """True when the table is not configured: its features are switched off."""
        return self.location is None

    def describe_source(self) -> str:
        if self.absent:
            return "(not configured)"
        if len(self.files) == 1:
            return self.files[0]
        return f"{self.location} ({len(self.files)} files)"


def is_table_file_name(name: str) -> bool:
    """A raw-table file: a known suffix, and not hidden or a marker (``.part``, ``_SUCCESS``)."""
    name = name.rsplit("/", 1)[-1].lower()
    return not name.startswith((".", "_")) and name.endswith(TABLE_SUFFIXES)


class SourceFiles(Protocol):
    """How the reader reaches files: local paths by default, S3 through an adapter from resources."""

    def list(self, location: str) -> list[str]:
        """The table files behind ``location`` (the file itself, or the files in a folder/prefix), sorted."""
        ...

    def open(self, path: str) -> str | IO[bytes]:
        """Something pandas can read: a local path or a binary buffer."""
        ...


class LocalFiles:
    """Files on the local file system."""

    def list(self, location: str) -> list[str]:
        if location.startswith("s3://"):
            raise RawSourceError(
                f"{location}: an S3 location needs the S3 source; set CUSTOMER_INTEL_ENV=s3 (see the README's configuration)"
            )
        path = Path(location)
        if path.is_file():
            return [str(path)]
        if path.is_dir():
            files = sorted(str(p) for p in path.iterdir() if p.is_file() and is_table_file_name(p.name))
            if not files:
                raise RawSourceError(f"{location}: the folder holds no CSV or Parquet files ({', '.join(TABLE_SUFFIXES)})")
            return files
        raise RawSourceError(f"{location}: no such file or folder")

    def open(self, path: str) -> str:
        return path


LOCAL_FILES = LocalFiles()


def list_source_files(location: str, files: SourceFiles = LOCAL_FILES) -> list[str]:
    """The files behind a location: the file itself, or the table files in a folder, sorted."""
    return files.list(location)


def _read_file(path: str, files: SourceFiles) -> pd.DataFrame:
    lower = path.lower()
    try:
        handle = files.open(path)
        if lower.endswith((".csv", ".csv.gz")):
            # Everything as text: validation decides what parses, and reports what does not.
            compression = "gzip" if lower.endswith(".gz") else None
            return pd.read_csv(handle, dtype=str, keep_default_na=True, compression=compression)
        return pd.read_parquet(handle)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except RawSourceError:
        raise
    except Exception as exc:  # corrupt file, wrong format behind the suffix, permissions, S3 access
        raise RawSourceError(f"{path}: cannot be read as {'CSV' if 'csv' in lower else 'Parquet'}: {exc}") from exc


def read_raw_table(
    contract: TableContract,
    location: str | None,
    column_mapping: Mapping[str, str] | None = None,
    files: SourceFiles = LOCAL_FILES,
) -> RawTable:
    """Read every file behind ``location`` and rename source columns to contract names.

    ``column_mapping`` maps contract column names to the names in the bank's export, e.g.
    ``{"customer_id": "Customer Key"}``. ``location=None`` means the table is not configured.
    ``files`` reaches the files (local by default; the S3 source passes an S3 adapter).
    """
    mapping = dict(column_mapping or {})
    if location is None:
        return RawTable(name=contract.name, location=None, column_mapping=mapping)
    paths = list_source_files(location, files)
    parts = []
    for path in paths:
        part = _read_file(path, files)
        part[SOURCE_FILE] = path
        part[SOURCE_ROW] = range(len(part))
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    present = set(frame.columns)
    missing_mapped = {target: source for target, source in mapping.items() if source not in present}
    frame = frame.rename(columns={source: target for target, source in mapping.items() if source in present})
    return RawTable(
        name=contract.name,
        location=location,
        files=paths,
        frame=frame,
        column_mapping=mapping,
        missing_mapped_columns=missing_mapped,
    )
