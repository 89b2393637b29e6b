"""The one reader for raw tables: CSV or Parquet, one file or a folder of files, with a column mapping.

The reader opens each file in the columnar engine where it lies (an S3 object is first copied to
a local staging folder) and keeps the values as they are in the file (CSV as text): type coercion
belongs to validation, which must see the original values to name the offending rows. Every row
keeps its file and row number (``_source_file``, ``_source_row``). Nothing is loaded into pandas
unless a caller asks for ``RawTable.frame`` (small tables and tests).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import duckdb
import pandas as pd

from customer_intel.engine import connect, ident, quote
from customer_intel.ingest.contract import TableContract

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
# pandas' default missing-value markers: an export's "NA" or "NULL" is a missing value, not text
NULL_MARKERS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


class RawSourceError(ValueError):
    """The configured location cannot be read at all (missing, unreadable, unknown format)."""


def is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".csv.gz"))


@dataclass
class RawTable:
    """A raw table as found at its source, before validation.

    ``data`` is an in-memory frame (with ``_source_file``/``_source_row``) for small tables and
    tests; otherwise the engine reads ``local_files`` (the files, staged locally) in place.
    """

    name: str
    location: str | None
    files: list[str] = field(default_factory=list)
    data: pd.DataFrame | None = None
    column_mapping: dict[str, str] = field(default_factory=dict)
    missing_mapped_columns: dict[str, str] = field(default_factory=dict)  # contract name -> source name
    local_files: list[str] = field(default_factory=list)  # same order as ``files``
    staging: object | None = None  # keeps a staging folder of S3 copies alive as long as the table

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

    def open_files(self, con: duckdb.DuckDBPyConnection) -> list[FileView]:
        """One engine view per file (``raw_0``, ``raw_1``, ...): columns renamed to contract names,
        plus ``_source_file`` and ``_source_row``."""
        if self.data is not None:
            frame = self.data.rename(columns={s: t for t, s in self.column_mapping.items() if s in self.data.columns})
            views = []
            for index, path in enumerate(self.files or [self.location or "(in memory)"]):
                part = frame.loc[frame[SOURCE_FILE] == path] if SOURCE_FILE in frame and len(self.files) > 1 else frame
                name = f"raw_{index}"
                con.register(f"{name}_data", part.reset_index(drop=True))
                con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_data")
                views.append(FileView(name, path, _columns(con, name), tuple(c for c in self.data.columns if not c.startswith("_source_"))))
            return views
        return [_open_file(con, f"raw_{i}", path, local, self.column_mapping)
                for i, (path, local) in enumerate(zip(self.files, self.local_files or self.files))]

    @property
    def frame(self) -> pd.DataFrame:
        """Every row as read, in pandas (for small tables and tests)."""
        if self.data is not None:
            return self.data
        if self.absent:
            return pd.DataFrame()
        con = connect()
        try:
            views = self.open_files(con)
            if not any(v.columns for v in views):
                return pd.DataFrame()
            union = " UNION ALL BY NAME ".join(f"SELECT * FROM {v.name}" for v in views if v.columns)
            return con.execute(union).df()
        finally:
            con.close()


@dataclass(frozen=True)
class FileView:
    """One source file as an engine view: its name there, its path, and its columns (name -> type)."""

    name: str
    path: str
    columns: dict[str, str]
    source_columns: tuple[str, ...] = ()  # as named in the file, before the column mapping


def _columns(con, name: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {ident(name)}").fetchall()
            if row[0] not in (SOURCE_FILE, SOURCE_ROW)}


def _open_file(con, name: str, path: str, local: str, mapping: Mapping[str, str]) -> FileView:
    """A view of one file with its rows numbered as in the file; CSV values stay text."""
    rename = {source: target for target, source in mapping.items()}
    kind = "CSV" if is_csv(path) else "Parquet"
    try:
        if Path(local).stat().st_size == 0:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS {SOURCE_FILE}, NULL::BIGINT AS {SOURCE_ROW} LIMIT 0")
            return FileView(name, path, {})
        if is_csv(path):
            nulls = ", ".join(quote(m) for m in NULL_MARKERS)
            # a table keeps the file's row order, so rowid is the row number (the CSV reader runs in parallel)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_rows AS SELECT * FROM read_csv({quote(local)}, header = true, "
                        f"all_varchar = true, nullstr = [{nulls}], auto_detect = true)")
            source, row = f"{name}_rows", "rowid"
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name}_rows AS SELECT * FROM read_parquet({quote(local)}, file_row_number = true)")
            source, row = f"{name}_rows", "file_row_number"
        original = [r[0] for r in con.execute(f"DESCRIBE {source}").fetchall() if r[0] != "file_row_number"]
    except duckdb.Error as exc:
        raise RawSourceError(f"{path}: cannot be read as {kind}: {str(exc).splitlines()[0]}") from exc
    renamed = [f"{ident(c)} AS {ident(rename.get(c, c))}" for c in original]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(renamed)}, {quote(path)} AS {SOURCE_FILE}, "
                f"CAST({row} AS BIGINT) AS {SOURCE_ROW} FROM {source}")
    return FileView(name, path, _columns(con, name), tuple(original))


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

    def stage(self, path: str, folder: Path) -> str:
        """A local path with the file's bytes (the file itself when it is local)."""
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

    def stage(self, path: str, folder: Path) -> str:
        return path


LOCAL_FILES = LocalFiles()


def list_source_files(location: str, files: SourceFiles = LOCAL_FILES) -> list[str]:
    """The files behind a location: the file itself, or the table files in a folder, sorted."""
    return files.list(location)


def read_raw_table(
    contract: TableContract,
    location: str | None,
    column_mapping: Mapping[str, str] | None = None,
    files: SourceFiles = LOCAL_FILES,
) -> RawTable:
    """Find every file behind ``location`` and remember how source columns map to contract names.

    ``column_mapping`` maps contract column names to the names in the bank's export, e.g.
    ``{"customer_id": "Customer Key"}``. ``location=None`` means the table is not configured.
    ``files`` reaches the files (local by default; the S3 source passes an S3 adapter whose
    objects are staged to a local folder that lives as long as the returned table).
    Unreadable files are reported here, naming the file.
    """
    mapping = dict(column_mapping or {})
    if location is None:
        return RawTable(name=contract.name, location=None, column_mapping=mapping)
    paths = list_source_files(location, files)
    staging = None
    if isinstance(files, LocalFiles):
        local = list(paths)
    else:
        staging = tempfile.TemporaryDirectory(prefix=f"customer_intel_{contract.name}_")
        local = [files.stage(path, Path(staging.name) / f"{i}-{Path(path).name}") for i, path in enumerate(paths)]
    table = RawTable(name=contract.name, location=location, files=paths, column_mapping=mapping, local_files=local, staging=staging)
    con = connect()
    try:
        views = table.open_files(con)  # reads every header: an unreadable file fails here, by name
    finally:
        con.close()
    table.missing_mapped_columns = {target: source for target, source in mapping.items()
                                    if any(v.source_columns and source not in v.source_columns for v in views)}
    return table
