"""The one reader for raw tables: CSV or Parquet, one file or a folder of files, with a column mapping.

The reader opens each file in the columnar engine where it lies (an S3 object is first copied to
a local staging folder) and keeps the values as they are in the file (CSV as text): type coercion
belongs to validation, which must see the original values to name the offending rows. Every row
keeps its file and row number (``_source_file``, ``_source_row``). Nothing is loaded into pandas
unless a caller asks for ``RawTable.frame`` (small tables and tests).
"""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
import zlib
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
FILE_INDEX = "_file_index"
# the reader's and validation's own columns: a source column of that name would be overwritten, so it is refused
RESERVED_COLUMNS = (SOURCE_FILE, SOURCE_ROW, FILE_INDEX)
CSV_DELIMITERS = (",", ";", "\t", "|")  # the delimiter is the one the header line uses most (ties: this order)
HEADER_BYTES = 1 << 20
EXAMPLE_CHARS = 200
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
    header_problems: tuple[tuple[str, str], ...] = ()  # (column, what is wrong) with the file's header
    rejects: str | None = None  # the engine table of CSV rows that did not parse (line, column, error, the line's text)
    local: str | None = None  # the file the engine read (a staged copy of an S3 object)
    dialect: CsvDialect | None = None  # CSV only

    def lines_of(self, records: set[int]) -> dict[int, int]:
        """The 1-based line each of ``records`` (0-based data records) starts on in the file; empty for Parquet and
        in-memory tables. A quoted value may span lines and blank lines hold no record, so a record's line is
        counted, not computed (only for the few rows a message shows)."""
        if self.local is None or self.dialect is None or not records:
            return {}
        return csv_record_lines(self.local, self.dialect, records)


def csv_record_lines(local: str, dialect: CsvDialect, records: set[int]) -> dict[int, int]:
    """Line numbers of data records of a CSV file as Python's csv module splits it (as the engine does a file
    without malformed records); stops after the last record asked for."""
    opener = gzip.open if local.lower().endswith(".gz") else open
    found: dict[int, int] = {}
    last = max(records)
    with opener(local, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=dialect.delimiter, quotechar=dialect.quote, doublequote=True, strict=False)
        start, header_seen, index = 1, False, 0
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                continue  # a blank line: no record
            if not header_seen:
                header_seen = True
                continue
            if index in records:
                found[index] = line
            if index >= last:
                break
            index += 1
    return found


@dataclass(frozen=True)
class MalformedRow:
    """A CSV record the engine could not split into the header's fields: where it breaks (line and that line's text)."""

    line: int
    text: str
    column: str | None
    error: str


def _columns(con, name: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {ident(name)}").fetchall()
            if row[0] not in (SOURCE_FILE, SOURCE_ROW)}


def _header_problems(names: list[str]) -> list[tuple[str, str]]:
    """A column the header names twice (the engine compares names ignoring case), or a reserved name."""
    problems, seen = [], {}
    for name in names:
        folded = name.lower()
        if folded in seen:
            problems.append((name, f"the header names the column {seen[folded]!r} twice (as {seen[folded]!r} and {name!r}; names are "
                                   "compared ignoring case): which one holds the values would be a guess"))
        else:
            seen[folded] = name
        if folded in RESERVED_COLUMNS:
            problems.append((name, f"the column name {name!r} is reserved for the reader's own bookkeeping; rename it in the export "
                                   "or map it away (resource 'raw_data' columns)"))
    return problems


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    quote: str = '"'


def _csv_header(con, local: str) -> tuple[CsvDialect, list[str], list[tuple[str, str]]]:
    """(dialect, column names, problems) of a CSV file's header, read by Python's csv module.

    The engine's dialect sniffer guesses from sample rows, so a broken row can make it read a file
    as one column or silently take a stray quote as text: the header line decides the delimiter, and
    the quote is ``"`` unless the sniffer finds the file quoting with ``'`` under that delimiter (a
    file it cannot sniff, e.g. with a broken record, is read with ``"`` and the broken record named).
    """
    opener = gzip.open if local.lower().endswith(".gz") else open
    with opener(local, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    first = head.split(b"\n", 1)[0]
    problems: list[tuple[str, str]] = []
    try:
        first.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.append(("(header)", "the header line is not UTF-8 text (save the export as UTF-8)"))
    text = head.decode("utf-8-sig", errors="replace")
    counts, quoted = dict.fromkeys(CSV_DELIMITERS, 0), False
    for char in text.split("\n", 1)[0]:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    delimiter = max(CSV_DELIMITERS, key=lambda d: (counts[d], -CSV_DELIMITERS.index(d)))
    try:
        sniffed = con.execute(f"SELECT Delimiter, Quote FROM sniff_csv({quote(local)})").fetchone()
    except duckdb.Error:
        sniffed = None
    dialect = CsvDialect(delimiter, "'" if sniffed is not None and tuple(sniffed) == (delimiter, "'") else '"')
    try:
        names = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=dialect.quote, doublequote=True,
                                strict=False), [])
    except csv.Error as exc:
        names, problems = [], [*problems, ("(header)", f"the header line does not parse as CSV: {exc}")]
    names = [name.strip() for name in names]  # "customer_id, ts, amount": the names are customer_id, ts and amount
    if names and not any(names):
        names = []  # a blank first line: no header, no rows
    names = [name if name else f"column{i}" for i, name in enumerate(names)]  # the engine's name for an unnamed column
    return dialect, names, problems + _header_problems(names)


def _unique(names: list[str]) -> list[str]:
    """Names the engine can hold side by side (a repeated name gets a suffix; it is refused by validation anyway)."""
    out: list[str] = []
    for name in names:
        candidate, i = name, 1
        while candidate.lower() in {o.lower() for o in out}:
            candidate, i = f"{name}_{i}", i + 1
        out.append(candidate)
    return out


def _open_file(con, name: str, path: str, local: str, mapping: Mapping[str, str]) -> FileView:
    """A view of one file with its rows numbered as in the file; CSV values stay text.

    A CSV record that does not split into the header's fields (an unterminated quote, too many or
    too few fields, bytes that are not UTF-8) is set aside in the ``rejects`` table, with its line,
    for validation to name; the other rows are read. A file that cannot be read at all (a truncated
    Parquet or gzip file, bytes of another format) is an empty view whose header problem names it.
    """
    rename = {source: target for target, source in mapping.items()}
    kind = "CSV" if is_csv(path) else "Parquet"
    rejects, problems, dialect = None, [], None
    try:
        size = Path(local).stat().st_size
    except OSError as exc:
        raise RawSourceError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    empty = f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS {SOURCE_FILE}, NULL::BIGINT AS {SOURCE_ROW} LIMIT 0"
    if size == 0:
        con.execute(empty)
        return FileView(name, path, {})
    try:
        if is_csv(path):
            dialect, header, problems = _csv_header(con, local)
            if not header:
                con.execute(empty)
                return FileView(name, path, {}, header_problems=tuple(problems))
            nulls = ", ".join(quote(m) for m in NULL_MARKERS)
            columns = ", ".join(f"{quote(c)}: 'VARCHAR'" for c in _unique(header))
            mark = quote(dialect.quote)
            rejects = f"{name}_rejects"
            # a table keeps the file's row order, so rowid is the row number (the CSV reader runs in parallel)
            con.execute(f"DROP TABLE IF EXISTS {rejects}")
            con.execute(f"DROP TABLE IF EXISTS {name}_scans")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_rows AS SELECT * FROM read_csv({quote(local)}, header = true, "
                        f"auto_detect = false, columns = {{{columns}}}, delim = {quote(dialect.delimiter)}, quote = {mark}, escape = {mark}, "
                        f"comment = '', strict_mode = true, null_padding = false, nullstr = [{nulls}], "
                        f"store_rejects = true, rejects_table = {quote(rejects)}, rejects_scan = {quote(name + '_scans')})")
            source, row = f"{name}_rows", "rowid"
        else:
            import pyarrow.parquet as pq

            problems = _header_problems(list(pq.read_schema(local).names))
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name}_rows AS SELECT * FROM read_parquet({quote(local)}, file_row_number = true)")
            source, row = f"{name}_rows", "file_row_number"
        original = [r[0] for r in con.execute(f"DESCRIBE {source}").fetchall() if r[0] != "file_row_number"]
    except (duckdb.Error, OSError, ValueError, EOFError, zlib.error) as exc:  # pyarrow's errors are ValueErrors
        con.execute(empty)
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        return FileView(name, path, {}, header_problems=(("(all)", f"the file cannot be read as {kind}: {lines[0]}"),))
    renamed = [f"{ident(c)} AS {ident(rename.get(c, c))}" for c in original if c.lower() not in RESERVED_COLUMNS]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(renamed + [''])}{quote(path)} AS {SOURCE_FILE}, "
                f"CAST({row} AS BIGINT) AS {SOURCE_ROW} FROM {source}")
    return FileView(name, path, _columns(con, name), tuple(original), tuple(problems), rejects, local, dialect)


def malformed_rows(con, view: FileView, limit: int | None = None) -> tuple[int, list[MalformedRow]]:
    """(count, first ``limit`` rows) of the CSV records of ``view`` that did not parse, each with the line where it
    breaks and that line's text as in the file.

    The engine's own line number ignores line breaks inside quoted values and, in a file that mixes CRLF and LF, it
    can attribute an unterminated quote to the record before; the byte offset of the quote (or of the record, for
    the other errors) is counted in the file instead.
    """
    if view.rejects is None:
        return 0, []
    at = "coalesce(CASE WHEN error_type = 'UNQUOTED VALUE' THEN byte_position END, line_byte_position)"
    count = con.execute(f"SELECT count(DISTINCT {at}) FROM {view.rejects}").fetchone()[0]
    if not count:
        return 0, []
    # a record may be rejected more than once (one error per missing column): its first column's error speaks for it
    rows = con.execute(f"SELECT {at} AS pos, arg_min(column_name, column_idx), arg_min(error_message, column_idx), any_value(csv_line) "
                       f"FROM {view.rejects} GROUP BY pos ORDER BY pos" + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    lines = _lines_at(view.local, [int(r[0]) for r in rows]) if view.local else {}
    return count, [MalformedRow(*lines.get(int(offset), (0, (text or "").strip("\r\n")[:EXAMPLE_CHARS])), column, error)
                   for offset, column, error, text in rows]


def _lines_at(local: str, offsets: list[int]) -> dict[int, tuple[int, str]]:
    """(1-based line, the whole line's text) of each byte offset, counted in the file. An offset at a line feed (a
    CRLF file) belongs to the next line."""
    opener = gzip.open if local.lower().endswith(".gz") else open
    out: dict[int, tuple[int, str]] = {}
    with opener(local, "rb") as handle:
        position, newlines, partial, ahead = 0, 0, b"", b""  # partial: the current line up to ``position``
        for at in sorted(set(offsets)):
            need = at + 1 - position
            ahead += handle.read(max(need - len(ahead), 0))
            data, ahead = ahead[:at - position], ahead[at - position:]
            newlines += data.count(b"\n")
            partial = (partial + data).rsplit(b"\n", 1)[-1] if b"\n" in data else partial + data
            position = at
            if ahead[:1] == b"\n":  # the line feed of a CRLF line end: the record is on the next line
                newlines, partial, ahead, position = newlines + 1, b"", ahead[1:], at + 1
            ahead += handle.read(EXAMPLE_CHARS * 4)
            text = (partial + ahead).split(b"\n", 1)[0].rstrip(b"\r")
            out[at] = (newlines + 1, text.decode("utf-8", errors="replace")[:EXAMPLE_CHARS])
    return out


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
    A file that cannot be read is not an error here: validation names it (rule ``well_formed_rows``).
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
        views = table.open_files(con)  # reads every header (and the mapping is checked against them)
    finally:
        con.close()
    table.missing_mapped_columns = {target: source for target, source in mapping.items()
                                    if any(v.source_columns and source not in v.source_columns for v in views)}
    return table
