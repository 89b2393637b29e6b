"""One plain test per bug the ingest fuzzing (test_fuzz_ingest.py) found, each on the smallest file that showed it.

Before the fixes: a stray quote was ingested as part of an id, a row with a field too many made the dialect
sniffer read the whole file as one column (and blame required_columns), a repeated or reserved column name
silently lost or overwrote values, a non-UTF-8 byte failed the read with no column or rule, a boolean Parquet
column passed as amounts 0/1, a float id column gave ids '7.0', profile parts that disagree on a column's type
raised a raw engine ConversionException, and CSV line numbers were off after a quoted line break or a blank line.
"""

from pathlib import Path

import pandas as pd
import pytest

from customer_intel.ingest import CAMPAIGNS, CUSTOMERS, TRANSACTIONS, read_raw_table, validate_raw_table
from customer_intel.ingest.reader import SOURCE_FILE

NOW = pd.Timestamp("2026-07-01", tz="UTC")


def _validate(contract, path: Path | str, **kwargs):
    return validate_raw_table(read_raw_table(contract, str(path)), contract, now=NOW, **kwargs)


def _only(report, rule):
    assert not report.passed and {v.rule for v in report.violations} == {rule}, report.failure_message()
    return report.violations


def test_an_unterminated_quote_is_refused_at_its_line_not_ingested_into_the_id(tmp_path):
    path = tmp_path / "transactions.csv"
    path.write_text('customer_id,ts,amount\nA,2026-01-01,1\n"B,2026-01-02,2\nC,2026-01-03,3\n')
    (violation,) = _only(_validate(TRANSACTIONS, path), "well_formed_rows")
    assert (violation.column, violation.files) == ("customer_id", [str(path)])
    assert violation.examples[0].startswith(f"line 3 of {path}: Value with unterminated quote found.")
    # a quote in the very first record used to stop the dialect sniffer: a read error with no column or rule
    path.write_text('customer_id,ts,amount\n"A,2026-01-01,1\n')
    assert _only(_validate(TRANSACTIONS, path), "well_formed_rows")[0].examples[0].startswith(f"line 2 of {path}")


@pytest.mark.parametrize(("row", "column", "found"), [("B,2026-01-02,2,9", "(all)", "Found: 4"), ("B,2026-01-02", "amount", "Found: 2"),
                                                       ("B;2026-01-02;2", "ts", "Found: 1")])
def test_a_row_with_too_many_or_too_few_fields_is_named_by_line(tmp_path, row, column, found):
    path = tmp_path / "transactions.csv"
    path.write_text(f"customer_id,ts,amount\nA,2026-01-01,1\n{row}\nC,2026-01-03,3\n")
    report = _validate(TRANSACTIONS, path)
    (violation,) = _only(report, "well_formed_rows")
    assert violation.column == column and violation.n_rows == 1 and found in violation.detail
    assert violation.examples == [f"line 3 of {path}: Expected Number of Columns: 3 {found}: {row!r}"]
    assert f"file {path}, column '{column}', rule 'well_formed_rows'" in report.failure_message()
    assert "Not evaluated until the above is fixed: required_columns" in report.failure_message()


def test_the_delimiter_comes_from_the_header_line(tmp_path):
    path = tmp_path / "transactions.csv"
    path.write_text("customer_id;ts;amount\nA;2026-01-01;1.5\nB;2026-01-02;2\n")
    report = _validate(TRANSACTIONS, path)
    assert report.passed and report.frame["amount"].tolist() == [1.5, 2.0]


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,Avg_Credit_Limit\nA,1\nJos\xe9,2\n".encode("latin-1"))
    (violation,) = _only(_validate(CUSTOMERS, path), "well_formed_rows")
    assert violation.column == "customer_id" and violation.examples[0].startswith(f"line 3 of {path}: Invalid unicode")


@pytest.mark.parametrize(("header", "column"), [("customer_id,ts,amount,amount", "amount"), ("customer_id,ts,amount,AMOUNT", "AMOUNT")])
def test_a_column_named_twice_is_refused_not_silently_dropped(tmp_path, header, column):
    path = tmp_path / "transactions.csv"
    path.write_text(f"{header}\nA,2026-01-01,1,2\n")
    (violation,) = _only(_validate(TRANSACTIONS, path), "well_formed_rows")
    assert violation.column == column and "names the column 'amount' twice" in violation.detail


def test_a_reserved_column_name_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(f"customer_id,{SOURCE_FILE}\nA,from the bank\n")
    (violation,) = _only(_validate(CUSTOMERS, path), "well_formed_rows")
    assert violation.column == SOURCE_FILE and "reserved" in violation.detail


def test_a_boolean_amount_column_is_a_type_error_but_a_boolean_flag_is_0_or_1(tmp_path):
    pd.DataFrame({"customer_id": ["A"], "ts": ["2026-01-01"], "amount": [True]}).to_parquet(tmp_path / "t.parquet")
    (violation,) = _only(_validate(TRANSACTIONS, tmp_path / "t.parquet"), "valid_types")
    assert violation.column == "amount" and violation.examples == [f"row 1 of {tmp_path / 't.parquet'}: customer_id='A', ts='2026-01-01', amount=True"]
    pd.DataFrame({"customer_id": ["A"], "campaign_id": ["C"], "treated": [True], "sent_at": ["2026-01-01"],
                  "converted": [False]}).to_parquet(tmp_path / "c.parquet")
    report = _validate(CAMPAIGNS, tmp_path / "c.parquet")
    assert report.passed and report.frame[["treated", "converted"]].values.tolist() == [[1, 0]]


def test_ids_in_a_float_column_are_the_integers_they_hold(tmp_path):
    pd.DataFrame({"customer_id": [7.0, 1234567.0, -0.0], "Avg_Credit_Limit": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "c.parquet")
    report = _validate(CUSTOMERS, tmp_path / "c.parquet")
    assert report.passed and report.frame["customer_id"].tolist() == ["7", "1234567", "0"]
    pd.DataFrame({"customer_id": [7.5, 2.0**60], "Avg_Credit_Limit": [1.0, 2.0]}).to_parquet(tmp_path / "c.parquet")
    (violation,) = _only(_validate(CUSTOMERS, tmp_path / "c.parquet"), "valid_types")
    assert violation.column == "customer_id" and violation.n_rows == 2


def test_profile_parts_that_disagree_on_a_type_are_kept_as_text_not_a_raw_engine_error(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    pd.DataFrame({"customer_id": ["A"], "joined": [pd.Timestamp("2026-01-01")], "tags": [[1, 2]]}).to_parquet(folder / "a.parquet")
    (folder / "b.csv").write_text("customer_id,joined,tags\nB,5,hello\n")
    report = _validate(CUSTOMERS, folder)
    assert report.passed, report.failure_message()
    frame = report.frame.set_index("customer_id")
    assert frame.loc["B", "joined"] == "5.0" and frame.loc["A", "joined"].startswith("2026-01-01")
    assert frame.loc["A", "tags"] == "[1, 2]" and frame.loc["B", "tags"] == "hello"


def test_csv_line_numbers_count_quoted_line_breaks_and_blank_lines(tmp_path):
    path = tmp_path / "transactions.csv"
    path.write_text('customer_id,ts,amount,category\nA,2026-01-01,1,"two\nlines"\n\nB,2026-01-02,abc,x\nB,2026-01-02,2,x\nB,2026-01-02,2,x\n')
    report = _validate(TRANSACTIONS, path)
    (bad,) = [v for v in report.violations if v.rule == "valid_types"]
    assert bad.examples[0].startswith(f"line 5 of {path}: customer_id='B'")
    (repeat,) = [v for v in report.violations if v.rule == "no_duplicate_rows"]
    assert repeat.examples[0].startswith(f"line 7 of {path}:")
    # the engine's own line number of a rejected record ignores the quoted line break: it is counted in the file
    path.write_bytes(b'customer_id,ts,amount,category\r\nA,2026-01-01,1,"two\r\nlines"\r\nB,2026-01-02,2,x,surplus\r\n')
    (broken,) = _only(_validate(TRANSACTIONS, path), "well_formed_rows")
    assert broken.examples[0].startswith(f"line 4 of {path}:")


def test_csv_gz_is_read_with_its_header_dialect(tmp_path):
    import gzip

    path = tmp_path / "transactions.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfcustomer_id|ts|amount\r\nA|2026-01-01T10:00:00+02:00|1e3\r\n"))
    report = _validate(TRANSACTIONS, path)
    assert report.passed and report.frame["ts"].tolist() == [pd.Timestamp("2026-01-01 08:00", tz="UTC")]
    assert report.frame["amount"].tolist() == [1000.0]


def test_what_the_engine_sniffer_got_right_still_holds(tmp_path):
    """Header names padded with spaces, values quoted with ', a trailing delimiter on data rows: read as before."""
    path = tmp_path / "transactions.csv"
    path.write_text("customer_id, ts, amount\n'A, Inc', 2026-01-01, 1\n'B',2026-01-02,2,\n")
    report = _validate(TRANSACTIONS, path)
    assert report.passed, report.failure_message()
    assert report.frame["customer_id"].tolist() == ["A, Inc", "B"] and report.frame["amount"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", ["part-1.parquet", "part-1.csv.gz"])
def test_a_part_cut_short_is_refused_by_rule_naming_the_part(tmp_path, name):
    """A truncated Parquet or gzip part used to fail the read with a bare error (no rule, no asset check)."""
    import gzip
    import io

    folder = tmp_path / "transactions"
    folder.mkdir()
    (folder / "part-0.csv").write_text("customer_id,ts,amount\nA,2026-01-01,1\n")
    frame = pd.DataFrame({"customer_id": [f"B{i}" for i in range(50)], "ts": "2026-01-02", "amount": 2.0})
    sink = io.BytesIO()
    frame.to_parquet(sink) if name.endswith(".parquet") else sink.write(gzip.compress(frame.to_csv(index=False).encode()))
    (folder / name).write_bytes(sink.getvalue()[: len(sink.getvalue()) // 2])
    report = _validate(TRANSACTIONS, folder)
    (violation,) = _only(report, "well_formed_rows")
    assert (violation.column, violation.files) == ("(all)", [str(folder / name)])
    assert violation.detail.startswith(f"the file cannot be read as {'Parquet' if name.endswith('.parquet') else 'CSV'}")
    assert "non_empty" not in {v.rule for v in report.violations}


def test_records_lists_and_times_are_type_errors_in_any_contract_column(tmp_path):
    """A struct or list id used to be ingested as its text ("{'a': 1}"), a time of day was tried as a timestamp."""
    import datetime as dt

    frame = pd.DataFrame({"customer_id": [{"a": 1}], "ts": [dt.time(10, 30)], "amount": [[1.0]]})
    frame.to_parquet(tmp_path / "t.parquet")
    violations = _only(_validate(TRANSACTIONS, tmp_path / "t.parquet"), "valid_types")
    assert sorted(v.column for v in violations) == ["amount", "customer_id", "ts"]


def test_an_unterminated_quote_in_a_crlf_file_with_a_quoted_lf_is_named_at_its_own_line(tmp_path):
    """The engine attributes this unterminated quote to the record before (line 2, with that line's text)."""
    path = tmp_path / "transactions.csv"
    path.write_bytes(b'customer_id,ts,amount,category\r\nA,2026-01-01,1,\r\n"B,2026-01-02,2,\r\nC,2026-01-03,3,"x\nline two"\r\n')
    violation = _only(_validate(TRANSACTIONS, path), "well_formed_rows")[0]
    assert violation.examples[0] == f"line 3 of {path}: Value with unterminated quote found.: '\"B,2026-01-02,2,'"
