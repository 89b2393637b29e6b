"""Validation of raw tables against the contract, in the columnar engine: typed output, or violations
that name file, column, rule and rows.

``validate_raw_table`` evaluates each rule of ``contract.rules_for`` as vectorised queries over the
files where they lie (one aggregate pass per file for the column rules, then the table-wide rules:
repeated rows, repeated keys, unknown ids). A rule's result lists its violations, each with up to
``MAX_EXAMPLES`` offending rows shown as they appear in the source file, so a person can find and
fix them. When every rule passes, the typed table is written by the engine (``output``: a Parquet
file, never through pandas) or returned as a frame for small tables.

Timestamps are normalised to UTC value by value: a naive value is UTC, an offset is honoured, so a
column that mixes the two is read correctly row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from customer_intel.engine import ParquetFile, TableInput, ident, quote, register, session
from customer_intel.ingest.contract import RULES, ColumnSpec, IngestLimits, TableContract, rules_for
from customer_intel.ingest.reader import FILE_INDEX, SOURCE_FILE, SOURCE_ROW, FileView, RawTable, is_csv, malformed_rows

MAX_EXAMPLES = 5
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                 "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
FLOAT_TYPES = ("FLOAT", "DOUBLE")
MAX_EXACT_FLOAT_ID = 2**53  # beyond it a float no longer holds every integer: an id stored as one may have changed


@dataclass
class Violation:
    rule: str
    column: str
    files: list[str]
    n_rows: int
    n_total: int
    detail: str
    examples: list[str] = field(default_factory=list)

    def message(self, asset_name: str) -> str:
        files = ", ".join(self.files)
        head = (
            f"{asset_name}: file {files}, column '{self.column}', rule '{self.rule}' "
            f"({RULES[self.rule]}): {self.detail}"
        )
        if self.n_rows:
            head += f"; {self.n_rows:,} of {self.n_total:,} rows violate it. First {len(self.examples)}:"
        return "\n".join([head, *(f"    {example}" for example in self.examples)])


@dataclass
class RuleResult:
    rule: str
    evaluated: bool
    violations: list[Violation] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.evaluated and not self.violations


@dataclass
class ValidationReport:
    table: str
    asset_name: str
    source: str
    n_rows: int
    results: list[RuleResult]
    frame: pd.DataFrame  # typed rows in contract columns (+ extra profile attributes); empty on failure or with ``output``
    output: ParquetFile | None = None  # the typed table, when it was written to a file
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        # Rules are only skipped after another rule failed, or when they do not apply.
        return not self.violations

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    def failure_message(self) -> str:
        blocks = [v.message(self.asset_name) for v in self.violations]
        skipped = [r.rule for r in self.results if not r.evaluated and not r.note.startswith("not applicable")]
        tail = []
        if skipped:
            tail.append(f"Not evaluated until the above is fixed: {', '.join(skipped)}.")
        tail.append(
            "Nothing was written: the last good outputs are untouched. Fix the source file or the "
            "column mapping (resource 'raw_data') and re-run."
        )
        return "\n".join([*blocks, *tail])


def _show(value) -> str:
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return repr(value.isoformat())
    return repr(value)


class _Locator:
    """Where a row is, as a person finds it: the CSV line its record starts on (counted in the file: a quoted value
    may span lines, a blank line holds no record), or the Parquet row number."""

    def __init__(self, views: list[FileView]):
        self.views = {v.path: v for v in views}

    def where(self, rows: list[tuple[str, int]]) -> list[str]:
        lines: dict[str, dict[int, int]] = {}
        for path in {p for p, _ in rows}:
            view = self.views.get(path)
            lines[path] = view.lines_of({r for p, r in rows if p == path}) if view is not None else {}
        return [f"line {lines[p].get(r, r + 2)} of {p}" if is_csv(p) else f"row {r + 1} of {p}" for p, r in rows]


def _examples(con, query: str, columns: list[str], locate: _Locator) -> list[str]:
    """``query`` selects ``_source_file, _source_row`` and ``columns``; one line per row."""
    found = con.execute(query).fetchall()
    places = locate.where([(row[0], int(row[1])) for row in found])
    return [f"{place}: {', '.join(f'{c}={_show(v)}' for c, v in zip(columns, row[2:]))}" for place, row in zip(places, found)]


@dataclass
class _Column:
    """How one contract column of one file is typed and judged."""

    spec: ColumnSpec
    typed: str  # SQL of the typed value
    present: str  # SQL: the source holds a (non-missing) value


def _column_sql(spec: ColumnSpec, source_type: str) -> _Column:
    c = ident(spec.name)
    kind = source_type.upper()
    text = kind == "VARCHAR"
    value = f"NULLIF(trim({c}), '')" if text else c
    present = f"({value} IS NOT NULL)"
    if not text:
        present = f"({c} IS NOT NULL AND NOT coalesce(isnan(TRY_CAST({c} AS DOUBLE)), FALSE))"
    if spec.kind == "string":
        if text:
            return _Column(spec, value, present)
        if kind.startswith(("STRUCT", "MAP", "UNION")) or kind.endswith("]"):
            return _Column(spec, "CAST(NULL AS VARCHAR)", present)  # a record or a list is not an id or a label
        if kind in FLOAT_TYPES:
            # an integer column with a gap becomes float in many exports (7 -> 7.0): the id is 7, as in a CSV or an
            # integer column; a fraction, or a value beyond 2**53, is not an id a float can hold
            exact = f"{c} = trunc({c}) AND abs({c}) < {MAX_EXACT_FLOAT_ID}"
            return _Column(spec, f"CASE WHEN {present} AND {exact} THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) END", present)
        return _Column(spec, f"CASE WHEN {present} THEN CAST({c} AS VARCHAR) END", present)  # NaN is missing, not 'nan'
    if spec.kind == "timestamp":
        if text:
            typed = f"TRY_CAST({value} AS TIMESTAMPTZ)"
        elif kind.startswith(("TIMESTAMP", "DATE")):
            typed = f"CAST({c} AS TIMESTAMPTZ)"  # a naive stored timestamp is UTC (the session's zone)
        else:
            typed = "CAST(NULL AS TIMESTAMPTZ)"  # a number, a time of day, a duration: not a point in time
        return _Column(spec, typed, present)
    number = f"TRY_CAST({value} AS DOUBLE)" if text else f"TRY_CAST({c} AS DOUBLE)"
    number = f"CASE WHEN isnan({number}) THEN NULL ELSE {number} END"  # NaN is a missing value, as in pandas
    if not text and not kind.startswith(NUMERIC_TYPES) and not (kind == "BOOLEAN" and spec.kind == "flag"):
        # true is not an amount (a flag may be boolean), nor is a date, a duration or a list
        return _Column(spec, "CAST(NULL AS DOUBLE)" if spec.kind == "float" else "CAST(NULL AS TINYINT)", present)
    if spec.kind == "flag":
        return _Column(spec, f"CASE WHEN {number} IN (0, 1) THEN CAST({number} AS TINYINT) END", present)
    return _Column(spec, number, present)


def _column_rules(column: _Column, now: pd.Timestamp, limits: IngestLimits) -> list[tuple[str, str, str]]:
    """(rule, SQL condition of an offending row, detail) for one typed column."""
    spec, t = column.spec, "t." + ident(column.spec.name)
    present = "t." + ident("_present_" + spec.name)
    kind = "0 or 1" if spec.kind == "flag" else f"a {spec.kind}"
    rules = [("valid_types", f"{t} IS NULL AND {present}", f"values must be {kind}")]
    if not spec.nullable:
        rules.append(("non_null_values", f"NOT {present}", "null or empty values"))
    if spec.finite:
        rules.append(("finite_amounts", f"isinf({t})", "infinite values"))
        rules.append(("plausible_amounts", f"NOT isinf({t}) AND abs({t}) > CAST('{limits.max_abs_amount!r}' AS DOUBLE)",
                      f"values beyond ±{limits.max_abs_amount:,.0f} (an export error: such amounts overflow every sum)"))
    if spec.not_in_future:
        floor = pd.Timestamp(limits.min_date, tz="UTC")
        rules.append(("no_future_timestamps", f"{t} > TIMESTAMPTZ '{now.isoformat()}'", f"timestamps after the as-of time {now.isoformat()}"))
        rules.append(("no_placeholder_dates", f"{t} < TIMESTAMPTZ '{floor.isoformat()}'",
                      f"timestamps before the date floor {floor.date()} (placeholders such as 1900-01-01, not events)"))
    return rules


def _known_ids_views(con, known: pd.Index | Sequence[TableInput]) -> list[str]:
    """One view of ids per table the ids must be found in (``known_0``, ``known_1``, ...)."""
    if isinstance(known, pd.Index):
        known = [pd.DataFrame({"customer_id": known.astype(str)})]
    names = []
    for i, table in enumerate(known):
        register(con, f"known_{i}_src", table)
        con.execute(f"CREATE OR REPLACE TEMP VIEW known_{i} AS SELECT CAST(customer_id AS VARCHAR) AS customer_id FROM known_{i}_src")
        names.append(f"known_{i}")
    return names


def validate_raw_table(
    raw: RawTable,
    contract: TableContract,
    *,
    now: pd.Timestamp,
    known_customer_ids: pd.Index | Sequence[TableInput] | None = None,
    asset_name: str | None = None,
    limits: IngestLimits | None = None,
    output: str | None = None,
    con=None,
) -> ValidationReport:
    """Type ``raw`` to the contract and evaluate every rule that applies to it.

    ``known_customer_ids``: the ids of the other tables (an index, or tables with a ``customer_id``
    column) for ``known_customer_ids``. ``output``: write the typed table there as Parquet.
    """
    limits = limits or IngestLimits()
    asset_name = asset_name or f"raw_{contract.name}"
    rules = rules_for(contract)
    source = raw.describe_source()
    empty_typed = pd.DataFrame({c.name: pd.Series(dtype="object") for c in contract.columns})

    def report(results: list[RuleResult], n: int, typed=empty_typed, written=None, notes=()) -> ValidationReport:
        return ValidationReport(contract.name, asset_name, source, n, results, typed, written, list(notes))

    if raw.absent:
        note = "not applicable: the table is not configured, its features are switched off"
        return report([RuleResult(rule, evaluated=False, note=note) for rule in rules], 0)

    with session(con) as con:
        views = raw.open_files(con)
        counts = [con.execute(f"SELECT count(*) FROM {v.name}").fetchone()[0] if v.columns else 0 for v in views]
        n = sum(counts)
        results: dict[str, RuleResult] = {rule: RuleResult(rule, evaluated=True) for rule in rules}
        broken = _well_formed(con, views, n, results["well_formed_rows"])
        if n == 0 and not broken and not results["well_formed_rows"].violations:
            results["non_empty"].violations.append(Violation("non_empty", "(all)", raw.files, 0, 0, "the file has no data rows"))
        if n == 0 or results["well_formed_rows"].violations:
            why = "rows or headers that do not parse" if results["well_formed_rows"].violations else "the table is empty"
            for rule in rules[rules.index("well_formed_rows") + 1:]:
                results[rule] = RuleResult(rule, evaluated=False, note=f"skipped: {why}")
            return report(list(results.values()), n)
        views = [v for v, count in zip(views, counts) if count]  # an empty part adds nothing
        locate = _Locator(views)

        _required_columns(raw, contract, views, n, results["required_columns"])
        if results["required_columns"].violations:
            for rule in rules[rules.index("required_columns") + 1:]:
                results[rule] = RuleResult(rule, evaluated=False, note="skipped: required columns are missing")
            return report(list(results.values()), n)

        typed_selects = []
        found: dict[tuple[str, str], Violation] = {}
        extras: list[str] = []
        extra_sql: list[dict[str, tuple[str, str]]] = []  # per file: extra column -> (SQL, its type)
        for index, view in enumerate(views):
            columns = [_column_sql(spec, view.columns[spec.name]) for spec in contract.columns if spec.name in view.columns]
            shown = [c.spec.name for c in columns]
            extra = [c for c in view.columns if contract.keep_extra_columns and c not in shown]
            extras += [c for c in extra if c not in extras]
            typed_cols = ", ".join(f"{c.typed} AS {ident(c.spec.name)}, {c.present} AS {ident('_present_' + c.spec.name)}" for c in columns)
            raw_cols = ", ".join(f"{ident(name)} AS {ident('_raw_' + name)}" for name in shown)
            inner = f"(SELECT {typed_cols}, {raw_cols}, {SOURCE_FILE}, {SOURCE_ROW} FROM {view.name}) AS t"
            checks = [(spec_rule, column.spec.name, cond, detail)
                      for column in columns for spec_rule, cond, detail in _column_rules(column, now, limits)]
            tallies = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _, _, cond, _ in checks)
                                  + f" FROM {inner}").fetchone()
            raw_shown = ", ".join(f"t.{ident('_raw_' + name)}" for name in shown)
            for (rule, column, cond, detail), tally in zip(checks, tallies):
                if not tally:
                    continue
                violation = found.setdefault((rule, column), Violation(rule, column, [], 0, n, detail))
                violation.files.append(view.path)
                violation.n_rows += tally
                room = MAX_EXAMPLES - len(violation.examples)
                if room > 0:
                    violation.examples += _examples(con, f"SELECT t.{SOURCE_FILE}, t.{SOURCE_ROW}, {raw_shown} FROM {inner} "
                                                    f"WHERE {cond} ORDER BY t.{SOURCE_ROW} LIMIT {room}", shown, locate)
            extra_sql.append({name: _extra_sql(con, view, name) for name in extra})
            typed_selects.append(f"SELECT {', '.join(f'{c.typed} AS {ident(c.spec.name)}' for c in columns)}{{extras}}, "
                                 f"{SOURCE_FILE}, {SOURCE_ROW}, {index} AS {FILE_INDEX} FROM {view.name}")
        as_text = _extras_as_text(extra_sql)
        typed_selects = [select.replace("{extras}", "".join(f", {f'CAST({sql} AS VARCHAR)' if name in as_text else sql} AS {ident(name)}"
                                                               for name, (sql, _) in columns.items()))
                         for select, columns in zip(typed_selects, extra_sql)]
        for (rule, _), violation in found.items():
            results[rule].violations.append(violation)

        con.execute("CREATE OR REPLACE TEMP VIEW typed_all AS " + " UNION ALL BY NAME ".join(typed_selects))
        names = [spec.name for spec in contract.columns if any(spec.name in v.columns for v in views)]
        notes: list[str] = []
        if contract.no_duplicate_rows:
            _duplicate_rows(con, names, n, results["no_duplicate_rows"], locate)
        keep = "TRUE"
        if contract.unique_key:
            keep = _unique_keys(con, contract, names, n, limits, results["unique_customer_ids"], notes, locate)
        if contract.ids_must_be_known:
            if known_customer_ids is None:
                results["known_customer_ids"] = RuleResult(
                    "known_customer_ids", evaluated=False, note="not applicable: neither customers nor transactions are configured"
                )
            else:
                _unknown_ids(con, _known_ids_views(con, known_customer_ids), names, n, results["known_customer_ids"], locate)

        ordered = list(results.values())
        if any(r.violations for r in ordered):
            return report(ordered, n)
        select = f"SELECT {', '.join(ident(c) for c in names + extras)} FROM typed_all WHERE {keep}"
        if output is not None:
            # file order, then row order: the connection preserves insertion order, so no sort is needed
            con.execute(f"COPY ({select}) TO {quote(output)} (FORMAT parquet, COMPRESSION zstd)")
            rows = con.execute(f"SELECT count(*) FROM read_parquet({quote(output)})").fetchone()[0]
            return report(ordered, n, written=ParquetFile(output, rows), notes=notes)
        typed = con.execute(f"{select} ORDER BY {FILE_INDEX}, {SOURCE_ROW}").df()
        for spec in contract.columns:
            if spec.name in typed and spec.kind == "string":
                typed[spec.name] = typed[spec.name].astype("string")
            elif spec.name in typed and spec.kind == "timestamp":
                typed[spec.name] = typed[spec.name].astype("datetime64[ns, UTC]")
            elif spec.name in typed and spec.kind == "flag":
                typed[spec.name] = typed[spec.name].astype("Int8")
        return report(ordered, n, typed, notes=notes)


def _extra_sql(con, view: FileView, name: str) -> tuple[str, str]:
    """(SQL, type) of a profile attribute: numbers when every value of a text column parses as one, else as given."""
    c = ident(name)
    if view.columns[name].upper() != "VARCHAR":
        return c, view.columns[name].upper()
    text = f"NULLIF(trim({c}), '')"
    numeric = con.execute(f"SELECT count({text}) = count(TRY_CAST({text} AS DOUBLE)) FROM {view.name}").fetchone()[0]
    return (f"TRY_CAST({text} AS DOUBLE)", "DOUBLE") if numeric else (c, "VARCHAR")


def _extras_as_text(per_file: list[dict[str, tuple[str, str]]]) -> set[str]:
    """Profile attributes whose files disagree on the type (a date in one part, a number in another): kept as text,
    since the engine cannot put them in one column otherwise."""
    types: dict[str, set[str]] = {}
    for columns in per_file:
        for name, (_, kind) in columns.items():
            types.setdefault(name, set()).add(kind)
    return {name for name, kinds in types.items()
            if len(kinds) > 1 and not all(k.startswith(NUMERIC_TYPES) for k in kinds)}


def _well_formed(con, views: list[FileView], n: int, result: RuleResult) -> int:
    """Header problems and CSV records that did not parse, per file and column; returns the number of such records."""
    broken = 0
    for view in views:
        for column, detail in view.header_problems:
            result.violations.append(Violation("well_formed_rows", column, [view.path], 0, n, detail))
        count, rows = malformed_rows(con, view, MAX_EXAMPLES)
        if not count:
            continue
        broken += count
        columns = sorted({row.column for row in rows if row.column})
        errors = sorted({row.error for row in rows})
        detail = f"records that do not parse as CSV ({'; '.join(errors)})"
        examples = [f"line {row.line} of {view.path}: {row.error}: {row.text!r}" for row in rows]
        result.violations.append(Violation("well_formed_rows", ", ".join(columns) or "(all)", [view.path], count, n + count,
                                           detail, examples))
    return broken


def _required_columns(raw: RawTable, contract: TableContract, views: list[FileView], n: int, result: RuleResult) -> None:
    """Each file must hold every required column: a part whose header says ``amt`` is named, not read as nulls."""
    for spec in contract.columns:
        for view in views:
            mapped = raw.missing_mapped_columns.get(spec.name)
            mapped_missing = mapped is not None and (not view.source_columns or mapped not in view.source_columns)
            if not mapped_missing and not (spec.required and spec.name not in view.columns):
                continue
            detail = (f"the column mapping points '{spec.name}' at source column '{mapped}', which is not in the file"
                      if mapped_missing else f"required column '{spec.name}' is missing")
            detail += f" (columns found: {', '.join(sorted(view.source_columns or view.columns))})"
            result.violations.append(Violation("required_columns", spec.name, [view.path], 0, n, detail))
    for group in contract.one_of:
        for view in views:
            if not any(name in view.columns for name in group):
                detail = (f"one of the columns {' or '.join(repr(c) for c in group)} is required "
                          f"(columns found: {', '.join(sorted(view.source_columns or view.columns))})")
                result.violations.append(Violation("required_columns", "/".join(group), [view.path], 0, n, detail))


def _table_examples(con, where: str, names: list[str], locate: _Locator, limit: int = MAX_EXAMPLES) -> tuple[list[str], list[str]]:
    """(files, example lines) of the typed rows matching ``where``, in file order."""
    files = [r[0] for r in con.execute(f"SELECT DISTINCT {SOURCE_FILE} FROM typed_all WHERE {where} ORDER BY 1").fetchall()]
    cols = ", ".join(ident(c) for c in names)
    lines = _examples(con, f"SELECT {SOURCE_FILE}, {SOURCE_ROW}, {cols} FROM typed_all WHERE {where} "
                      f"ORDER BY {FILE_INDEX}, {SOURCE_ROW} LIMIT {limit}", names, locate)
    return files, lines


def _duplicate_rows(con, names: list[str], n: int, result: RuleResult, locate: _Locator) -> None:
    """Exact repeats of an earlier row: candidates by a 64-bit hash, confirmed on the values."""
    cols = ", ".join(ident(c) for c in names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE dup_hashes AS SELECT h FROM (SELECT hash({cols}) AS h FROM typed_all) "
                "GROUP BY h HAVING count(*) > 1")
    if not con.execute("SELECT count(*) FROM dup_hashes").fetchone()[0]:
        return
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dup_rows AS
        SELECT {FILE_INDEX}, {SOURCE_ROW} FROM (
            SELECT {FILE_INDEX}, {SOURCE_ROW}, row_number() OVER (PARTITION BY {cols} ORDER BY {FILE_INDEX}, {SOURCE_ROW}) AS rn
            FROM typed_all WHERE hash({cols}) IN (SELECT h FROM dup_hashes)) WHERE rn > 1""")
    count = con.execute("SELECT count(*) FROM dup_rows").fetchone()[0]
    if count:
        where = f"({FILE_INDEX}, {SOURCE_ROW}) IN (SELECT ({FILE_INDEX}, {SOURCE_ROW}) FROM dup_rows)"
        files, lines = _table_examples(con, where, names, locate)
        result.violations.append(Violation("no_duplicate_rows", "(all)", files, count, n, "exact repeats of an earlier row", lines))


def _unique_keys(con, contract: TableContract, names: list[str], n: int, limits: IngestLimits,
                 result: RuleResult, notes: list[str], locate: _Locator) -> str:
    """Repeated keys are refused, or (``keep_last``) all but the last row of each key are dropped; returns the row filter."""
    key = list(contract.unique_key)
    if contract.validity_column and contract.validity_column in names:
        key.append(contract.validity_column)  # versions of a profile: one row per key and validity start
    cols = ", ".join(ident(c) for c in key)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE repeated_keys AS SELECT {cols}, count(*) AS n FROM typed_all WHERE {not_null} "
                f"GROUP BY ALL HAVING count(*) > 1")
    repeated, rows = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM repeated_keys").fetchone()
    if not repeated:
        return "TRUE"
    if limits.duplicate_keys == "keep_last":
        notes.append(f"{repeated:,} customer ids appear on more than one row ({rows:,} rows); kept the last row of each "
                     "in file order (customers_duplicates=keep_last)")
        return (f"({FILE_INDEX}, {SOURCE_ROW}) IN (SELECT ({FILE_INDEX}, {SOURCE_ROW}) FROM typed_all QUALIFY row_number() OVER "
                f"(PARTITION BY {cols} ORDER BY {FILE_INDEX} DESC, {SOURCE_ROW} DESC) = 1)")
    where = f"({cols}) IN (SELECT ({cols}) FROM repeated_keys)" if len(key) > 1 else f"{cols} IN (SELECT {cols} FROM repeated_keys)"
    files, lines = _table_examples(con, where, names, locate)
    detail = ("ids that appear on more than one row. If the export repeats a customer on purpose (appended updates), set "
              "CUSTOMER_INTEL_CUSTOMERS_DUPLICATES=keep_last (resource raw_data: customers_duplicates, or `customer-intel run "
              "--customers-duplicates keep_last`) to keep the last row of each id in file order, or add a valid_from column")
    result.violations.append(Violation("unique_customer_ids", ",".join(contract.unique_key), files, int(rows), n, detail, lines))
    return "TRUE"


def _unknown_ids(con, known: list[str], names: list[str], n: int, result: RuleResult, locate: _Locator) -> None:
    # one semi-join probe per known table (the small table probes the big one; no set of every id is built)
    missing = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {k} WHERE {k}.customer_id = typed_all.customer_id)" for k in known)
    where = f"customer_id IS NOT NULL AND {missing}"
    count = con.execute(f"SELECT count(*) FROM typed_all WHERE {where}").fetchone()[0]
    if count:
        files, lines = _table_examples(con, where, names, locate)
        result.violations.append(Violation("known_customer_ids", "customer_id", files, count, n,
                                           "ids not found in raw_customers or raw_transactions", lines))
