"""The one reader for raw tables: CSV or Parquet, one file or a folder of files, with a column mapping.

Values are returned as read (CSV as text): type coercion belongs to validation, which must see
the original values to name the offending rows. Every row remembers its file and row number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


def _is_table_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith((".", "_")) and name.endswith(TABLE_SUFFIXES)


def list_source_files(location: str) -> list[str]:
    """The files behind a location: the file itself, or the table files in a folder, sorted."""
    if location.startswith("s3://"):
        raise RawSourceError(
            f"{location}: S3 locations are not readable by this deployment yet; "
            "copy the files to a local folder or configure the S3 source"
        )
    path = Path(location)
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if _is_table_file(p))
        if not files:
            raise RawSourceError(f"{location}: the folder holds no CSV or Parquet files ({', '.join(TABLE_SUFFIXES)})")
        return files
    raise RawSourceError(f"{location}: no such file or folder")


def _read_file(path: str) -> pd.DataFrame:
    lower = path.lower()
    try:
        if lower.endswith((".csv", ".csv.gz")):
            # Everything as text: validation decides what parses, and reports what does not.
            return pd.read_csv(path, dtype=str, keep_default_na=True)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:  # corrupt file, wrong format behind the suffix, permissions
        raise RawSourceError(f"{path}: cannot be read as {'CSV' if 'csv' in lower else 'Parquet'}: {exc}") from exc


def read_raw_table(
    contract: TableContract,
    location: str | None,
    column_mapping: Mapping[str, str] | None = None,
) -> RawTable:
    """Read every file behind ``location`` and rename source columns to contract names.

    ``column_mapping`` maps contract column names to the names in the bank's export, e.g.
    ``{"customer_id": "Customer Key"}``. ``location=None`` means the table is not configured.
    """
    mapping = dict(column_mapping or {})
    if location is None:
        return RawTable(name=contract.name, location=None, column_mapping=mapping)
    files = list_source_files(location)
    parts = []
    for path in files:
        part = _read_file(path)
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
        files=files,
        frame=frame,
        column_mapping=mapping,
        missing_mapped_columns=missing_mapped,
    )
