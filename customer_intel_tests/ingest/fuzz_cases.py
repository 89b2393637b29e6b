"""Hypothesis strategies of whole cases: a valid table in some rendering (it must ingest as typed), or one fault
injected into one file of it (it must be refused by the named rule, naming that file and column)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from customer_intel.ingest import CONTRACTS
from customer_intel.ingest.reader import RESERVED_COLUMNS
from customer_intel_tests.ingest.fuzz_support import (
    EXTRA_NUMERIC,
    EXTRA_TEXT,
    TS_STYLES,
    Case,
    Part,
    customer_ids,
    kind_of,
    layouts,
    long_ids,
    plain_ids,
    table_rows,
    unicode_ids,
)

TABLES = ("transactions", "customers", "campaigns")
GOOD_CLASSES = ("formats_and_orders", "mapped_names", "extra_columns", "unicode_long_ids", "boundary_values",
                "time_zones", "empty_part", "duplicates_allowed", "parquet_dtypes", "csv_dialects")
FAULT_CLASSES = ("missing_column", "missing_mapped_column", "empty_file", "null_required", "non_finite", "huge_value",
                 "bad_type", "future_timestamp", "placeholder_date", "duplicate_rows_or_keys", "unknown_customer",
                 "broken_csv_row", "bad_header", "corrupt_file")
CSV_ONLY_FAULTS = ("broken_csv_row",)
FAULTS = {
    "transactions": tuple(f for f in FAULT_CLASSES if f != "unknown_customer"),
    "customers": tuple(f for f in FAULT_CLASSES if f not in ("unknown_customer", "non_finite", "huge_value")),
    "campaigns": tuple(f for f in FAULT_CLASSES if f != "duplicate_rows_or_keys"),
}
MAPPED = {"customer_id": "Customer Key", "ts": "Posted At", "amount": "Amount (EUR)", "sent_at": "sent", "converted": "visit",
          "campaign_id": "Campaign, name"}


def _typed_key(table: str, row: dict) -> tuple:
    contract = CONTRACTS[table]
    return tuple((None if row.get(c.name) is None else float(row[c.name]) if c.kind == "float" else row[c.name])
                 for c in contract.columns if c.name in row)


def expected_columns(table: str, parts: list[Part], columns: list[str], mapping: dict[str, str]) -> list[str]:
    contract = CONTRACTS[table]
    names = [c.name for c in contract.columns if c.name in columns]
    if not contract.keep_extra_columns:
        return names
    inverse = {v: k for k, v in mapping.items()}
    extras: list[str] = []
    for part in parts:
        header = part.header if part.fmt != "parquet" else list(part.frame.columns)
        if part.empty_bytes or (part.fmt != "parquet" and not part.records) or (part.fmt == "parquet" and part.frame.empty):
            continue
        extras += [inverse.get(h, h) for h in header if inverse.get(h, h) not in names and inverse.get(h, h) not in extras]
    return names + extras


@st.composite
def base(draw, table: str, input_class: str, csv_only: bool = False, distinct: bool = False, formats=None):
    """A valid table's rows, rendered: (Case without a verdict)."""
    known = draw(st.lists(customer_ids, min_size=1, max_size=4, unique=True)) if table == "campaigns" else None
    rows, columns = draw(table_rows(table, known or [], distinct))
    mapping: dict[str, str] = {}
    if input_class in ("mapped_names", "missing_mapped_column"):
        mapping = {c: MAPPED[c] for c in draw(st.lists(st.sampled_from([c for c in columns if c in MAPPED]), min_size=1, unique=True))}
    if input_class == "unicode_long_ids":
        pool = draw(st.lists(st.one_of(unicode_ids, long_ids), min_size=len(rows), max_size=len(rows), unique=True))
        if table == "campaigns":
            known = pool
        for row, new in zip(rows, pool):
            row["customer_id"] = new
    if input_class == "boundary_values":
        for row in rows:
            for c in ("amount", "revenue"):
                if c in row:
                    row[c] = draw(st.sampled_from([1e9, -1e9, 5e-324, -0.0, 2.2250738585072014e-308, 999999999.9999999, 1e-300]))
            for c in ("ts", "sent_at", "valid_from"):
                if c in row:
                    row[c] = draw(st.sampled_from([pd.Timestamp("1980-01-01", tz="UTC"), pd.Timestamp("2026-06-30 23:59:59.999999", tz="UTC"),
                                                   pd.Timestamp("2000-02-29 12:00", tz="UTC")]))
    if input_class == "extra_columns":
        columns = columns + ["zz extra", "Notes"]
        for row in rows:
            row["zz extra"] = f"x{draw(st.integers(0, 9))}"
            row["Notes"] = draw(st.sampled_from(["ok", "ünïcode", "with, comma", 'a "quote"']))
    if input_class == "duplicates_allowed":
        if table == "transactions" and "transaction_id" not in columns:
            columns.append("transaction_id")
            for i, row in enumerate(rows):
                row["transaction_id"] = f"T{i}"
        if table == "customers":  # a repeated key is refused; a second version of a profile (valid_from) is not
            if "valid_from" in columns:
                rows = rows + [dict(rows[0], valid_from=rows[0]["valid_from"] + pd.Timedelta(days=1))]
        else:
            rows = rows + [dict(rows[0], **({"transaction_id": "T-again"} if table == "transactions" else {}))]
    forced_formats = formats
    formats = ("csv", "csv", "csv.gz", "parquet")
    if table == "campaigns" or input_class == "unicode_long_ids":
        formats = ("csv", "csv.gz", "parquet")
    if csv_only or input_class == "csv_dialects":
        formats = ("csv", "csv.gz")
    if input_class == "parquet_dtypes":  # ints as floats, numbers as text, float32, booleans and text flags, zones
        formats = ("parquet",)
    formats = forced_formats or formats
    n_parts = 2 if input_class == "empty_part" else None
    ts_styles = ("offset", "offset_compact", "zone_name", "z", "naive") if input_class == "time_zones" else TS_STYLES
    parts, typed, folder = draw(layouts(table, rows, columns, mapping, n_parts=n_parts, formats=formats, ts_styles=ts_styles))
    if table == "campaigns":
        for out in typed:  # ids of digits are never rendered as numbers for campaigns (they must match the known ids)
            assert out["customer_id"] in known
    case = Case(table, parts, folder, typed, [], mapping, input_class, known_ids=known)
    if table == "customers" and input_class == "extra_columns" and len(parts) > 1:
        # one part's attribute is a date, another's text or number: the engine cannot union them without text
        first = parts[0]
        if first.fmt == "parquet":
            first.frame["Notes"] = pd.Timestamp("2026-01-01")
            case.text_extras = ("Notes",)
    case.columns = expected_columns(table, parts, columns, mapping)
    if table != "customers":
        for row in case.rows:
            for c in ("zz extra", "Notes"):
                row.pop(c, None)
    return case


def _verdict_without_fault(case: Case) -> Case:
    """A valid table can still hold an exact repeat by chance (transactions): the oracle says so by typed values."""
    if case.table == "transactions":
        seen: dict[tuple, int] = {}
        for i, row in enumerate(case.rows):
            key = _typed_key("transactions", row)
            if key in seen:
                part, _ = _locate(case, i)
                case.expect_rule, case.expect_column, case.expect_file = "no_duplicate_rows", "(all)", part
                case.input_class += "+chance_duplicate"
                return case
            seen[key] = i
    return case


def _rows_in(part: Part) -> int:
    return len(part.records) if part.fmt != "parquet" else len(part.frame)


def _locate(case: Case, index: int) -> tuple[int, int]:
    """(part, record in that part) of a row of the table."""
    for p, part in enumerate(case.parts):
        n = len(part.records) if part.fmt != "parquet" else len(part.frame)
        if index < n:
            return p, index
        index -= n
    raise IndexError(index)


@st.composite
def good_cases(draw, table: str, input_class: str):
    case = draw(base(table, input_class))
    if input_class == "empty_part" and len(case.parts) == 2:
        empty = draw(st.integers(0, 1))
        part = case.parts[empty]
        n0 = _rows_in(case.parts[0])
        if draw(st.booleans()):
            part.empty_bytes = True
        elif part.fmt == "parquet":
            part.frame = part.frame.iloc[:0]
        else:
            part.records = []
        case.rows = case.rows[n0:] if empty == 0 else case.rows[:n0]
        if table == "customers":
            case.columns = expected_columns(table, case.parts, case.columns, case.mapping)
    return _verdict_without_fault(case)


# ---------------------------------------------------------------- faults


def _source_name(case: Case, column: str) -> str:
    return case.mapping.get(column, column)


def _set(part: Part, record: int, column: str, text: str | None, value=None, use_value: bool = False) -> None:
    """Put ``text`` (CSV) or, with ``use_value``, ``value`` (Parquet) into one cell; a Parquet column that cannot hold
    ``value`` as its own type becomes text (its other values written as text the reader parses back to the same)."""
    if part.fmt != "parquet":
        part.records[record][part.header.index(column)] = text
        return
    series = part.frame[column].copy()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    stamps = pd.api.types.is_datetime64_any_dtype(series)
    if use_value and (value is None or (isinstance(value, float) and np.isnan(value) and not numeric)):
        # a Parquet null is a null: the CSV markers ("NA", "null") are text there, and text is a value
        series = series.astype(object)
        series.iloc[record] = None
    elif use_value and isinstance(value, float) and numeric:
        series = series.astype("float64")
        series.iloc[record] = value
    elif use_value and isinstance(value, pd.Timestamp) and stamps:
        tz = series.dt.tz
        series.iloc[record] = value.tz_convert(tz) if tz is not None else value.tz_convert("UTC").tz_localize(None)
    else:
        if stamps:
            series = series.map(lambda t: None if pd.isna(t) else t.isoformat())
        elif pd.api.types.is_bool_dtype(series):
            series = series.astype(int)
        series = series.astype(object).map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else
                                          repr(v) if isinstance(v, float) else str(v))
        series.iloc[record] = text if not use_value else (None if value is None else text)
    part.frame[column] = series


def _line(case: Case, p: int, record: int) -> str:
    part = case.parts[p]
    return f"line {part.lines()[record]}" if part.fmt != "parquet" else f"row {record + 1}"


@st.composite
def fault_cases(draw, table: str, fault: str):
    csv_only = fault in CSV_ONLY_FAULTS or (fault == "bad_header" and draw(st.booleans()))
    case = draw(base(table, "missing_mapped_column" if fault == "missing_mapped_column" else "formats_and_orders", csv_only, distinct=True,
                     formats=("parquet", "csv.gz") if fault == "corrupt_file" else None))
    contract = CONTRACTS[table]
    case.input_class = fault + (f" (1 of {len(case.parts)} parts)" if len(case.parts) > 1 else "")
    p = draw(st.integers(0, len(case.parts) - 1))
    part = case.parts[p]
    n = len(part.records) if part.fmt != "parquet" else len(part.frame)
    r = draw(st.integers(0, n - 1))
    present = [c for c in case.columns if c in {s.name for s in contract.columns}]
    csv_part = part.fmt != "parquet"

    def refuse(rule, column, example=None, file=p):
        case.expect_rule, case.expect_column, case.expect_file, case.expect_example = rule, column, file, example
        return case

    if fault == "missing_column":
        column = draw(st.sampled_from(contract.required_columns))
        name = _source_name(case, column)
        if csv_part:
            i = part.header.index(name)
            part.header.pop(i)
            for record in part.records:
                record.pop(i)
        else:
            part.frame = part.frame.drop(columns=[name])
        return refuse("required_columns", column)
    if fault == "missing_mapped_column":
        column = draw(st.sampled_from(sorted(case.mapping)))
        case.mapping = dict(case.mapping, **{column: "Not In The Export"})
        return refuse("required_columns", column)
    if fault == "empty_file":
        for each in case.parts:
            how = draw(st.sampled_from(["zero_bytes", "header_only"]))
            if how == "zero_bytes":
                each.empty_bytes = True
            elif each.fmt == "parquet":
                each.frame = each.frame.iloc[:0]
            else:
                each.records = []
        return refuse("non_empty", "(all)", file=0)
    if fault == "null_required":
        column = draw(st.sampled_from([c for c in present if not contract.column(c).nullable]))
        _set(part, r, _source_name(case, column), draw(st.sampled_from(["", "NA", "null", "NaN", "   ", "N/A"])),
             draw(st.sampled_from([None, np.nan])), use_value=True)
        return refuse("non_null_values", column, _line(case, p, r))
    finite = [c for c in present if contract.column(c).finite]
    stamps = [c for c in present if contract.column(c).kind == "timestamp"]
    if fault == "non_finite" and finite:
        column = draw(st.sampled_from(finite))
        _set(part, r, _source_name(case, column), draw(st.sampled_from(["inf", "-inf", "Infinity", "1e309", "-1e400"])),
             draw(st.sampled_from([np.inf, -np.inf])), use_value=True)
        return refuse("finite_amounts", column, _line(case, p, r))
    if fault == "huge_value" and finite:
        column = draw(st.sampled_from(finite))
        value = draw(st.sampled_from([1e308, -1.7976931348623157e308, 1000000000.0001, -5e9, 1e10]))
        _set(part, r, _source_name(case, column), repr(value), value, use_value=True)
        return refuse("plausible_amounts", column, _line(case, p, r))
    if fault == "bad_type":
        if not csv_part and draw(st.booleans()):
            # a Parquet column of another type: booleans as amounts, a date as a flag, records or lists anywhere
            column = draw(st.sampled_from(present))
            kind = contract.column(column).kind
            foreign = draw(st.sampled_from({"float": ["bool", "date", "struct", "list"], "timestamp": ["float", "time", "struct"],
                                            "flag": ["date", "struct", "list"], "string": ["struct", "list"]}[kind]))
            n_rows = len(part.frame)
            part.frame[_source_name(case, column)] = {
                "bool": pd.Series([True] * n_rows, dtype=bool), "date": [dt.date(2026, 1, 1)] * n_rows,
                "struct": [{"value": 1}] * n_rows, "list": [[1.0]] * n_rows, "float": [1.5e9] * n_rows,
                "time": [dt.time(10, 30)] * n_rows}[foreign]
            case.input_class = f"bad_type:parquet {foreign} as {kind}" + (f" (1 of {len(case.parts)} parts)" if len(case.parts) > 1 else "")
            return refuse("valid_types", column, "row 1")
        options = [c for c in present if contract.column(c).kind in ("float", "timestamp", "flag")]
        if options:
            column = draw(st.sampled_from(options))
            kind = contract.column(column).kind
            text = draw(st.sampled_from({"float": ["12,50", "abc", "1.2.3", "0x10", "1e", "€5"],
                                         "timestamp": ["yesterday", "2026-13-01", "31/12/2025", "2026-02-30", "noon"],
                                         "flag": ["2", "yes", "-1", "0.5", "true"]}[kind]))
            _set(part, r, _source_name(case, column), text)
            return refuse("valid_types", column, _line(case, p, r))
    if fault in ("future_timestamp", "placeholder_date") and stamps:
        column = draw(st.sampled_from(stamps))
        when = draw(st.sampled_from(["2099-01-01T00:00:00Z", "2026-07-02 00:00:00+00:00", "2030-05-05"]
                                    if fault == "future_timestamp" else ["1900-01-01", "1970-01-01T00:00:00Z", "1979-12-31 23:59:59"]))
        value = pd.Timestamp(when).tz_localize("UTC") if pd.Timestamp(when).tzinfo is None else pd.Timestamp(when)
        _set(part, r, _source_name(case, column), when, value, use_value=draw(st.booleans()))
        return refuse("no_future_timestamps" if fault == "future_timestamp" else "no_placeholder_dates", column, _line(case, p, r))
    if fault == "duplicate_rows_or_keys":
        # repeat row ``r`` of part ``p`` at the end of that part, as written; a transaction_id column would tell
        # the two apart, so it goes
        if csv_part:
            if "transaction_id" in part.header:
                i = part.header.index("transaction_id")
                part.header.pop(i)
                for each in part.records:
                    each.pop(i)
            part.records.append(list(part.records[r]))
        else:
            part.frame = part.frame.drop(columns=["transaction_id"], errors="ignore")
            part.frame = pd.concat([part.frame, part.frame.iloc[[r]]], ignore_index=True)
        if table == "customers":
            return refuse("unique_customer_ids", "customer_id", file=p)
        keys = [_typed_key(table, row) for row in case.rows]
        chance = len(set(keys)) < len(keys)  # other repeats may fill the five examples shown
        return refuse("no_duplicate_rows", "(all)", None if chance else _line(case, p, _rows_in(part) - 1))
    if fault == "unknown_customer" and table == "campaigns":
        _set(part, r, _source_name(case, "customer_id"), "NOT-A-CUSTOMER-é")
        return refuse("known_customer_ids", "customer_id", _line(case, p, r))
    if fault == "broken_csv_row" and csv_part:
        how = draw(st.sampled_from(["unterminated_quote", "too_many_fields", "too_few_fields", "not_utf8", "other_delimiter"]))
        record = part.records[r]
        fields = ["" if v is None else v for v in record]
        d = part.delimiter
        if how == "unterminated_quote":
            k = draw(st.integers(0, len(fields) - 1))
            text = d.join(_plain(f, d) for f in fields[:k]) + (d if k else "") + '"' + _unquotable(fields[k]) + d + d.join(
                _plain(f, d) for f in fields[k + 1:])
            part.raw_lines[r] = text.encode()
            column = part.header[k]
        elif how == "too_many_fields":
            part.raw_lines[r] = (d.join(_plain(f, d) for f in fields) + d + "surplus").encode()
            column = "(all)"
        elif how == "too_few_fields":
            part.raw_lines[r] = d.join(_plain(f, d) for f in fields[:-1]).encode()
            column = part.header[len(fields) - 1]
        elif how == "not_utf8":
            k = draw(st.integers(0, len(fields) - 1))
            cells = [_plain(f, d).encode() for f in fields]
            cells[k] = b"Jos\xe9" + cells[k]
            part.raw_lines[r] = d.encode().join(cells)
            column = part.header[k]
        else:
            other = ";" if d != ";" else ","
            text = other.join(_plain(f, other) for f in fields)
            found = len(next(csv.reader(io.StringIO(text, newline=""), delimiter=d)))
            if found == len(fields):
                return _verdict_without_fault(case)
            part.raw_lines[r] = text.encode()
            column = part.header[found] if found < len(fields) else "(all)"
        inverse = {v: k for k, v in case.mapping.items()}
        column = inverse.get(column, column)
        case.input_class = f"broken_csv_row:{how}" + (f" (1 of {len(case.parts)} parts)" if len(case.parts) > 1 else "")
        return refuse("well_formed_rows", column, _line(case, p, r))
    if fault == "bad_header":
        how = draw(st.sampled_from(["repeated_name", "repeated_name_other_case", "reserved_name"]))
        first = part.header[0] if csv_part else part.frame.columns[0]
        name = {"repeated_name": first, "repeated_name_other_case": first.upper() if first.upper() != first else first.lower(),
                "reserved_name": draw(st.sampled_from(RESERVED_COLUMNS))}[how]
        if name == first and how == "repeated_name_other_case":
            name = first.swapcase() if first.swapcase().lower() == first.lower() and first.swapcase() != first else first
        if csv_part:
            part.header.append(name)
            for record in part.records:
                record.append("x")
        else:
            if how != "reserved_name":
                case.input_class = "bad_header:not_applicable (a Parquet file cannot repeat a name)"
                return _verdict_without_fault(case)
            part.frame[name] = "x"
        case.input_class = f"bad_header:{how}" + (f" (1 of {len(case.parts)} parts)" if len(case.parts) > 1 else "")
        return refuse("well_formed_rows", name)
    if fault == "corrupt_file":
        # a part cut short (a copy interrupted mid-way) or another format's bytes under the name
        data = part.to_bytes()
        how = draw(st.sampled_from(["truncated", "foreign_bytes"]))
        part.raw_bytes = data[: max(len(data) // 2, 1)] if how == "truncated" else b"PK\x03\x04 not a table \x00\xff" * 8
        case.input_class = f"corrupt_file:{how} {part.fmt}" + (f" (1 of {len(case.parts)} parts)" if len(case.parts) > 1 else "")
        return refuse("well_formed_rows", "(all)")
    case.input_class = f"{fault}:not_applicable"
    return _verdict_without_fault(case)  # the fault does not apply to this file: the case must ingest


def _plain(value: str, delimiter: str) -> str:
    """A field as the csv module would write it."""
    if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _unquotable(value: str) -> str:
    return value.replace('"', "").replace("\n", " ")


__all__ = ["EXTRA_NUMERIC", "EXTRA_TEXT", "TABLES", "fault_cases", "good_cases", "kind_of", "plain_ids"]
