"""Generated raw files with their expected outcome, and the ingest path the asset runs, as a plain call.

A case is built from typed rows (the expectation) rendered into files the way exports differ: CSV or
Parquet, one file or parts, any column order, mapped names, time zones, number spellings, dtypes.
Optionally one fault is injected, and the case then says which rule must refuse it, for which
column and which file. The expectation never comes from the code under test: values are what
Python makes of the text written (``float(text)``, the instant the offset names).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import re
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import event
from hypothesis import strategies as st

from customer_intel.ingest import CONTRACTS
from customer_intel.ingest.reader import NULL_MARKERS
from customer_intel.resources import RawDataSource
from customer_intel.resources.storage import LocalObjectStore
from customer_intel.resources.tables import partition_prefix, read_table, write_file
from customer_intel.table_names import raw_table

NOW = pd.Timestamp("2026-07-01", tz="UTC")
T_MIN = pd.Timestamp("1980-01-02", tz="UTC")
T_MAX = pd.Timestamp("2026-06-30", tz="UTC")
NULL_TEXT = frozenset(NULL_MARKERS)
COUNTS: Counter = Counter()  # (table, input class, outcome) -> examples, printed at the end of the fuzz modules


# ---------------------------------------------------------------- values


def _clean_id(text: str) -> bool:
    return bool(text) and text.strip() == text and text not in NULL_TEXT and text.isprintable()


ID_CHARS = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"))
plain_ids = st.integers(0, 9_999_999).map(lambda i: f"C{i:07d}")
unicode_ids = st.text(ID_CHARS, min_size=1, max_size=24).filter(_clean_id)
long_ids = st.tuples(st.sampled_from(["X", "é", "日本", "🙂", "a,b", 'q"']), st.integers(300, 3000), st.integers(0, 999)).map(
    lambda t: f"L{t[2]}" + t[0] * t[1])
customer_ids = st.one_of(plain_ids, plain_ids, unicode_ids, long_ids)
labels = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs", "Pd")), min_size=1, max_size=12).filter(_clean_id)


@st.composite
def instants(draw) -> pd.Timestamp:
    micros = draw(st.integers(T_MIN.value // 1000, T_MAX.value // 1000))
    return pd.Timestamp(micros * 1000, tz="UTC")


amounts = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    st.integers(-10**9, 10**9).map(float),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, 2.2250738585072014e-308, 1e9, -1e9, 0.1, 123.45]),
)

TS_STYLES = ("z", "offset", "offset_compact", "naive", "naive_t", "fraction_z", "date", "zone_name")
ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "UTC")


def render_ts(t: pd.Timestamp, style: str, offset_min: int, zone: str) -> tuple[str, pd.Timestamp]:
    """(text, the UTC instant it names)."""
    whole = t.floor("s")
    if style == "z":
        return whole.strftime("%Y-%m-%dT%H:%M:%SZ"), whole
    if style in ("offset", "offset_compact"):
        local = whole.tz_convert(None) + pd.Timedelta(minutes=offset_min)
        sign, m = ("+" if offset_min >= 0 else "-"), abs(offset_min)
        zone_text = f"{sign}{m // 60:02d}:{m % 60:02d}" if style == "offset" else f"{sign}{m // 60:02d}{m % 60:02d}"
        return local.strftime("%Y-%m-%d %H:%M:%S") + zone_text, whole
    if style == "naive":
        return whole.strftime("%Y-%m-%d %H:%M:%S"), whole
    if style == "naive_t":
        return whole.strftime("%Y-%m-%dT%H:%M:%S"), whole
    if style == "fraction_z":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), t
    if style == "zone_name":
        local = whole.tz_convert(zone)
        return local.strftime("%Y-%m-%d %H:%M:%S") + f" {zone}", whole
    day = t.floor("D")
    return day.strftime("%Y-%m-%d"), day


AMOUNT_STYLES = ("repr", "g17", "int", "exp6", "plus")


def render_amount(x: float, style: str) -> str:
    if style == "int" and x.is_integer() and abs(x) < 1e15 and not (x == 0 and math.copysign(1, x) < 0):
        return str(int(x))
    if style == "exp6":
        return f"{x:.6e}"
    if style == "plus" and x >= 0 and math.copysign(1, x) > 0:
        return "+" + repr(x)
    if style == "g17":
        return f"{x:.17g}"
    return repr(x)


# ---------------------------------------------------------------- the model of a case


@dataclass
class Part:
    """One file: CSV as header + records of text (None: empty), or Parquet as a DataFrame."""

    name: str
    fmt: str  # csv | csv.gz | parquet
    header: list[str] = field(default_factory=list)
    records: list[list[str | None]] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    delimiter: str = ","
    bom: bool = False
    crlf: bool = False
    raw_lines: dict[int, bytes] = field(default_factory=dict)  # record index -> bytes written instead (broken rows)
    raw_header: bytes | None = None
    empty_bytes: bool = False
    raw_bytes: bytes | None = None  # the file's bytes, replaced (a corrupt file)

    def lines(self) -> list[int]:
        """The 1-based line each record starts on."""
        out, line = [], 2 + self.header_newlines()
        for i, record in enumerate(self.records):
            out.append(line)
            text = self.raw_lines.get(i)
            line += (text.count(b"\n") if text is not None else sum((v or "").count("\n") for v in record)) + 1
        return out

    def header_newlines(self) -> int:
        return sum(h.count("\n") for h in self.header)

    def to_bytes(self) -> bytes:
        if self.empty_bytes:
            return b""
        if self.raw_bytes is not None:
            return self.raw_bytes
        if self.fmt == "parquet":
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(self.frame, preserve_index=False), sink)
            return sink.getvalue()
        end = "\r\n" if self.crlf else "\n"

        def line(values) -> bytes:
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=self.delimiter, lineterminator=end, quoting=csv.QUOTE_MINIMAL).writerow(
                ["" if v is None else v for v in values])
            return buffer.getvalue().encode()

        out = [(b"\xef\xbb\xbf" if self.bom else b"") + (self.raw_header if self.raw_header is not None else line(self.header))]
        for i, record in enumerate(self.records):
            out.append(self.raw_lines[i] + end.encode() if i in self.raw_lines else line(record))
        data = b"".join(out)
        return gzip.compress(data, mtime=0) if self.fmt == "csv.gz" else data


@dataclass
class Case:
    table: str
    parts: list[Part]
    folder: bool
    rows: list[dict]  # expected typed rows, in file order (contract names + kept extras)
    columns: list[str]  # expected output columns, in order
    mapping: dict[str, str]
    input_class: str
    expect_rule: str | None = None  # None: ingests
    expect_column: str | None = None
    expect_file: int | None = None  # index of the part named
    expect_example: str | None = None  # a line the message must show ("line 7", "row 3")
    known_ids: list[str] | None = None
    text_extras: tuple[str, ...] = ()  # extras whose values are engine-rendered text (compared for presence only)

    def write(self, root: Path) -> Path:
        raw_dir = root / "raw"
        base = raw_dir / self.table if self.folder else raw_dir
        base.mkdir(parents=True, exist_ok=True)
        for part in self.parts:
            (base / part.name).write_bytes(part.to_bytes())
        return raw_dir

    def path_of(self, raw_dir: Path, index: int) -> str:
        part = self.parts[index]
        return str((raw_dir / self.table / part.name) if self.folder else (raw_dir / part.name))


# ---------------------------------------------------------------- rows of each table

EXTRA_NUMERIC = "Avg_Credit_Limit"
EXTRA_COUNT = "Total_visits_online"
EXTRA_TEXT = "Branch note"


@st.composite
def table_rows(draw, table: str, known: list[str], distinct: bool = False) -> tuple[list[dict], list[str]]:
    """(typed rows, contract/extra columns the table carries) of a valid table; ``distinct``: one customer per
    transaction, so no single-cell fault can make two rows repeat each other."""
    n = draw(st.integers(1, 6))
    if table == "transactions":
        pool = draw(st.lists(customer_ids, min_size=n if distinct else 1, max_size=n if distinct else 3, unique=True))
        columns = ["customer_id", "ts", "amount"] + draw(st.lists(st.sampled_from(["category", "channel", "transaction_id"]),
                                                                   unique=True, max_size=3))
        rows = []
        for i in range(n):
            row = {"customer_id": pool[i] if distinct else draw(st.sampled_from(pool)), "ts": draw(instants()), "amount": draw(amounts)}
            if "category" in columns:
                row["category"] = draw(st.one_of(st.none(), labels, labels.map(lambda s: f"{s}\nline two")))
            if "channel" in columns:
                row["channel"] = draw(st.one_of(st.none(), st.sampled_from(["online", "in_store", "atm", "ßranch, west"])))
            if "transaction_id" in columns:
                row["transaction_id"] = f"T{i}"
            rows.append(row)
        return rows, columns
    if table == "customers":
        ids = draw(st.lists(customer_ids, min_size=n, max_size=n, unique=True))
        columns = ["customer_id", EXTRA_NUMERIC, EXTRA_COUNT, EXTRA_TEXT]
        rows = [{"customer_id": c, EXTRA_NUMERIC: draw(st.floats(0, 1e6, allow_nan=False)),
                 EXTRA_COUNT: float(draw(st.integers(0, 50))), EXTRA_TEXT: "n-" + draw(labels)} for c in ids]
        if draw(st.booleans()):
            columns.insert(1, "valid_from")
            for row in rows:
                row["valid_from"] = draw(instants())
        return rows, columns
    assignment = draw(st.sampled_from([("treated",), ("arm",), ("treated", "arm")]))
    columns = ["customer_id", "campaign_id", *assignment, "sent_at", "converted"] + (["revenue"] if draw(st.booleans()) else [])
    rows = []
    for _ in range(n):
        row = {"customer_id": draw(st.sampled_from(known)), "campaign_id": draw(st.sampled_from(["CAMP-1", "ÉTÉ 2026", "c,3"])),
               "sent_at": draw(instants()), "converted": draw(st.integers(0, 1))}
        if "treated" in columns:
            row["treated"] = draw(st.integers(0, 1))
        if "arm" in columns:
            row["arm"] = draw(st.sampled_from(["control", "cashback", "Prämie"]))
        if "revenue" in columns:
            row["revenue"] = draw(st.one_of(st.none(), amounts))
        rows.append(row)
    return rows, columns


def kind_of(table: str, column: str) -> str:
    contract = CONTRACTS[table]
    names = [c.name for c in contract.columns]
    if column in names:
        return contract.column(column).kind
    return "extra_number" if column in (EXTRA_NUMERIC, EXTRA_COUNT) else "extra_text"


# ---------------------------------------------------------------- rendering


@st.composite
def render_part(draw, table: str, rows: list[dict], columns: list[str], fmt: str, name: str, mapping: dict[str, str],
                ts_styles=TS_STYLES) -> tuple[Part, list[dict]]:
    """A file holding ``rows``; returns it with the rows as the reader must type them (the file's spelling decides)."""
    order = draw(st.permutations(columns))
    header = [mapping.get(c, c) for c in order]
    typed = [dict(r) for r in rows]
    if fmt != "parquet":
        part = Part(name, fmt, header=header, delimiter=draw(st.sampled_from([",", ",", ";", "\t", "|"])),
                    bom=draw(st.booleans()), crlf=draw(st.booleans()))
        styles = {c: draw(st.sampled_from(ts_styles)) for c in order if kind_of(table, c) == "timestamp"}
        amount_styles = {c: draw(st.sampled_from(AMOUNT_STYLES)) for c in order if kind_of(table, c) in ("float", "extra_number")}
        flag_forms = {c: draw(st.sampled_from(["int", "float"])) for c in order if kind_of(table, c) == "flag"}
        for row, out in zip(rows, typed):
            record = []
            for c in order:
                v, kind = row[c], kind_of(table, c)
                if v is None:
                    record.append(draw(st.sampled_from([None, "NA", "null", "NaN"])) if kind in ("float",) else None)
                elif kind == "timestamp":
                    mixed = draw(st.sampled_from(ts_styles)) if draw(st.booleans()) else styles[c]
                    text, out[c] = render_ts(v, mixed, draw(st.integers(-48, 56)) * 15, draw(st.sampled_from(ZONES)))
                    record.append(text)
                elif kind in ("float", "extra_number"):
                    text = render_amount(v, amount_styles[c])
                    out[c] = float(text)
                    record.append(text)
                elif kind == "flag":
                    record.append(str(v) if flag_forms[c] == "int" else f"{v:.1f}")
                else:
                    record.append(v)
            part.records.append(record)
        return part, typed
    data = {}
    for c in order:
        values, kind = [row[c] for row in rows], kind_of(table, c)
        if kind == "timestamp":
            style = draw(st.sampled_from(["utc", "zone", "naive", "text", "us"] if ts_styles == TS_STYLES else ["zone", "text"]))
            if style == "text":
                texts = [render_ts(v, draw(st.sampled_from(ts_styles)), draw(st.integers(-48, 56)) * 15, draw(st.sampled_from(ZONES)))
                         for v in values]
                data[c] = [t for t, _ in texts]
                for out, (_, instant) in zip(typed, texts):
                    out[c] = instant
            elif style == "zone":
                data[c] = pd.Series(values, dtype="datetime64[ns, UTC]").dt.tz_convert(draw(st.sampled_from(ZONES)))
            elif style == "naive":
                data[c] = pd.Series(values, dtype="datetime64[ns, UTC]").dt.tz_localize(None)
            elif style == "us":
                data[c] = pd.Series(values, dtype="datetime64[us, UTC]")
            else:
                data[c] = pd.Series(values, dtype="datetime64[ns, UTC]")
        elif kind in ("float", "extra_number"):
            style = draw(st.sampled_from(["float64", "float32", "int64", "text", "decimal_text"]))
            if style == "int64" and all(v is not None and v.is_integer() and abs(v) < 2**53 for v in values):
                data[c] = pd.Series([int(v) for v in values], dtype="int64")
                for out, v in zip(typed, values):
                    out[c] = float(int(v))  # an integer column has no negative zero
            elif style == "float32" and all(v is None or abs(v) < 3e38 for v in values):
                data[c] = pd.Series(values, dtype="float32")
                for out, v in zip(typed, values):
                    out[c] = None if v is None else float(np.float32(v))
            elif style == "text":
                data[c] = [None if v is None else repr(v) for v in values]
            else:
                data[c] = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        elif kind == "flag":
            style = draw(st.sampled_from(["int64", "bool", "float64", "text", "int8"]))
            data[c] = (pd.Series(values, dtype="int64").astype(bool) if style == "bool" else
                       pd.Series(values, dtype="float64") if style == "float64" else
                       [str(v) for v in values] if style == "text" else pd.Series(values, dtype=style))
        elif c == "customer_id" and table != "campaigns" and all(re.fullmatch(r"C\d{7}", v) for v in values) and draw(st.booleans()):
            # ids of digits only: an integer column, or a float one (an integer column with a gap, as pandas writes it)
            numbers = [int(v[1:]) for v in values]
            data[c] = pd.Series(numbers, dtype=draw(st.sampled_from(["int64", "float64"])))
            for out, number in zip(typed, numbers):
                out[c] = str(number)
        elif kind == "string" and draw(st.booleans()):
            data[c] = pd.Series(values, dtype="category")
        else:
            data[c] = values
    frame = pd.DataFrame(data)
    frame.columns = [mapping.get(c, c) for c in order]
    return Part(name, "parquet", frame=frame), typed


@st.composite
def layouts(draw, table: str, rows: list[dict], columns: list[str], mapping: dict[str, str], n_parts: int | None = None,
            formats=("csv", "csv", "csv.gz", "parquet"), ts_styles=TS_STYLES):
    """Parts of the table (one file, or a folder of files split in row order) and their typed rows."""
    n_parts = n_parts or draw(st.sampled_from([1, 1, 2, 3]))
    n_parts = min(n_parts, len(rows)) or 1
    cuts = sorted(draw(st.lists(st.integers(1, max(len(rows) - 1, 1)), min_size=n_parts - 1, max_size=n_parts - 1, unique=True))) \
        if n_parts > 1 else []
    chunks = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)])]
    parts, typed = [], []
    folder = n_parts > 1 or draw(st.booleans())
    for i, chunk in enumerate(chunks):
        fmt = draw(st.sampled_from(formats))
        name = f"part-{i}.{fmt}" if folder else f"{table}.{fmt}"
        part, out = draw(render_part(table, chunk, columns, fmt, name, mapping, ts_styles))
        parts.append(part)
        typed += out
    return parts, typed, folder


# ---------------------------------------------------------------- running the real ingest path


@dataclass
class Outcome:
    ingested: pd.DataFrame | None
    message: str | None
    violations: list = field(default_factory=list)


def ingest(case: Case, root: Path, warehouse: Path) -> Outcome:
    """The ingest asset's own code without a Dagster run: ``assets.ingest.read_and_validate`` (read with the raw_data
    resource, judge against the contract, typed copy to staging; the step's Failure when the source cannot be read),
    then, when every rule passed, the IO manager's writer publishes the copy. A refusal returns the text the step fails
    with (the Failure's, or the report's) and publishes nothing."""
    import dagster as dg

    from customer_intel.assets.ingest import read_and_validate
    from customer_intel.resources import Warehouse
    from customer_intel.resources.parquet_io import staging_dir

    contract = CONTRACTS[case.table]
    asset = raw_table(case.table)
    raw_dir = case.write(root)
    source = RawDataSource(raw_dir=str(raw_dir), **({f"{case.table}_columns": case.mapping} if case.mapping else {}))
    output_name = f"{asset}-fuzz-{uuid.uuid4().hex}.parquet"
    known = [pd.DataFrame({"customer_id": case.known_ids})] if case.known_ids is not None else None
    try:
        read = read_and_validate(source, Warehouse(root=str(warehouse)), contract, output_name, known_customer_ids=known, now=NOW)
    except dg.Failure as failure:
        return Outcome(None, failure.description)
    report, staged = read.report, staging_dir() / output_name
    if not report.passed:
        assert not staged.exists(), "a refused table must not leave a typed copy behind"
        return Outcome(None, report.failure_message(), report.violations)
    store = LocalObjectStore(warehouse)
    write_file(store, partition_prefix([asset], None), staged, run_id="fuzz")
    staged.unlink(missing_ok=True)
    return Outcome(read_table(store, partition_prefix([asset], None)), None)


def same_float(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    return float(a) == float(b) and math.copysign(1, float(a)) == math.copysign(1, float(b))


def assert_ingested(case: Case, outcome: Outcome) -> None:
    assert outcome.ingested is not None, f"{case.input_class}: expected to ingest, refused:\n{outcome.message}"
    frame = outcome.ingested
    assert list(frame.columns) == case.columns, (list(frame.columns), case.columns)
    assert len(frame) == len(case.rows), (len(frame), len(case.rows))
    for i, (expected, got) in enumerate(zip(case.rows, frame.to_dict("records"))):
        for column in case.columns:
            want, have = expected.get(column), got[column]
            kind = kind_of(case.table, column)
            if column in case.text_extras:
                assert isinstance(have, str) and have, (i, column, have)
            elif kind == "timestamp":
                assert have is not None and not pd.isna(have) and pd.Timestamp(have) == want, (i, column, want, have)
                assert str(frame[column].dtype).endswith("UTC]"), frame[column].dtype
            elif kind in ("float", "extra_number"):
                assert same_float(want, have), (i, column, want, have)
            elif kind == "flag":
                assert have == want, (i, column, want, have)
            elif want is None:
                assert have is None or pd.isna(have), (i, column, have)
            else:
                assert have == want, (i, column, want[:80], have[:80] if isinstance(have, str) else have)


def assert_refused(case: Case, outcome: Outcome, raw_dir: Path) -> None:
    assert outcome.ingested is None, f"{case.input_class}: expected rule {case.expect_rule} to refuse it; it was ingested"
    message = outcome.message
    rules = {v.rule for v in outcome.violations}
    assert rules == {case.expect_rule}, f"{case.input_class}: expected only {case.expect_rule}, got {rules}:\n{message}"
    path = case.path_of(raw_dir, case.expect_file) if case.expect_file is not None else None
    asset = raw_table(case.table)
    heads = [line for line in message.splitlines() if line.startswith(f"{asset}: file ")]
    named = [re.match(rf"{asset}: file (.*), column '(.*)', rule '([a-z_]+)'", line) for line in heads]
    assert any(m and m.group(3) == case.expect_rule and case.expect_column in m.group(2).split(", ") and (path is None or path in m.group(1))
               for m in named), f"{case.input_class}: no line names file {path}, column {case.expect_column}, rule {case.expect_rule}:\n{message}"
    if case.expect_example:
        assert f"{case.expect_example} of {path}" in message, f"{case.input_class}: expected '{case.expect_example} of {path}':\n{message}"
    assert "Nothing was written: the last good outputs are untouched." in message


def record(case: Case, outcome: Outcome) -> None:
    result = "ingested" if outcome.ingested is not None else f"refused:{case.expect_rule}"
    event(f"class={case.input_class}")
    event(f"outcome={result}")
    event(f"files={len(case.parts)} ({'+'.join(sorted({p.fmt for p in case.parts}))})")
    for part in case.parts:
        if part.fmt != "parquet":
            event(f"csv: delimiter {part.delimiter!r}" + (", BOM" if part.bom else "") + (", CRLF" if part.crlf else ""))
    COUNTS[(case.table, case.input_class, result)] += 1


def check_case(case: Case, warehouse_good: Path, snapshot) -> None:
    """The property: ingested as expected, or refused by the expected rule naming file and column, and then the
    published warehouse untouched."""
    with tempfile.TemporaryDirectory(prefix="fuzz_") as tmp:
        root = Path(tmp)
        before = snapshot(warehouse_good)
        target = warehouse_good if case.expect_rule else root / "warehouse"
        outcome = ingest(case, root, target)
        record(case, outcome)
        if case.expect_rule is None:
            assert_ingested(case, outcome)
        else:
            assert_refused(case, outcome, root / "raw")
            assert snapshot(warehouse_good) == before, "a refused table must leave the published warehouse untouched"


def counts_table() -> str:
    """Examples per table, input class and outcome (what the fuzz modules print at the end)."""
    lines = [f"{'table':<13} {'input class':<48} {'outcome':<34} {'examples':>8}"]
    for (table, cls, outcome), n in sorted(COUNTS.items()):
        lines.append(f"{table:<13} {cls:<48} {outcome:<34} {n:>8}")
    lines.append(f"{'total':<96} {sum(COUNTS.values()):>8}")
    return "\n".join(lines)


def chain(*iterables):
    return list(itertools.chain(*iterables))
