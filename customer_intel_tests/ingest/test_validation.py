"""Each rule of DATA_CONTRACT.md "Bad input", evaluated on small frames without Dagster."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.ingest import CAMPAIGNS, CUSTOMERS, TRANSACTIONS, RawTable, rules_for, validate_raw_table
from customer_intel.ingest.reader import SOURCE_FILE, SOURCE_ROW

NOW = pd.Timestamp("2026-07-01", tz="UTC")
FILE = "/bank/exports/transactions.csv"


def raw(frame: pd.DataFrame, name="transactions", path=FILE) -> RawTable:
    frame = frame.copy()
    frame[SOURCE_FILE] = path
    frame[SOURCE_ROW] = range(len(frame))
    return RawTable(name, path, [path], frame)


def good_transactions(n=8) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i % 3}" for i in range(n)],
            "ts": [f"2026-01-{i + 1:02d}T10:00:00Z" for i in range(n)],
            "amount": [str(10.0 + i) for i in range(n)],
            "category": ["grocery"] * n,
            "channel": ["online"] * n,
        }
    )


def failed(report, rule):
    result = next(r for r in report.results if r.rule == rule)
    assert not result.passed
    return result.violations


def test_good_table_passes_and_is_typed():
    report = validate_raw_table(raw(good_transactions()), TRANSACTIONS, now=NOW)
    assert report.passed
    assert [r.rule for r in report.results] == rules_for(TRANSACTIONS)
    assert str(report.frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert report.frame["amount"].dtype == np.float64
    assert report.frame["customer_id"].tolist()[:3] == ["C0", "C1", "C2"]


def test_non_empty():
    report = validate_raw_table(raw(good_transactions().iloc[:0]), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "non_empty")
    assert "rule 'non_empty'" in report.failure_message() and FILE in report.failure_message()
    assert "Not evaluated until the above is fixed: required_columns" in report.failure_message()
    assert report.frame.empty


def test_required_columns_names_the_missing_column_and_what_was_found():
    report = validate_raw_table(raw(good_transactions().drop(columns=["amount"])), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "required_columns")
    assert violation.column == "amount"
    message = report.failure_message()
    assert f"file {FILE}, column 'amount', rule 'required_columns'" in message
    assert "columns found: category, channel, customer_id, ts" in message


def test_required_columns_explains_a_wrong_mapping():
    table = raw(good_transactions())
    table.missing_mapped_columns = {"amount": "Txn Amount"}
    table.data = table.data.drop(columns=["amount"])
    report = validate_raw_table(table, TRANSACTIONS, now=NOW)
    assert "the column mapping points 'amount' at source column 'Txn Amount'" in report.failure_message()


def test_valid_types_shows_offending_lines_as_they_are_in_the_file():
    frame = good_transactions()
    frame.loc[3, "amount"] = "12,50"
    frame.loc[5, "ts"] = "yesterday"
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    violations = {v.column: v for v in failed(report, "valid_types")}
    assert set(violations) == {"ts", "amount"}
    assert violations["amount"].n_rows == 1
    assert violations["amount"].examples == [
        f"line 5 of {FILE}: customer_id='C0', ts='2026-01-04T10:00:00Z', amount='12,50', category='grocery', channel='online'"
    ]
    assert "values must be a float" in report.failure_message()


def test_non_null_values():
    frame = good_transactions()
    frame.loc[[1, 2], "customer_id"] = [None, "  "]
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "non_null_values")
    assert (violation.column, violation.n_rows) == ("customer_id", 2)


def test_finite_amounts():
    frame = good_transactions()
    frame.loc[6, "amount"] = "inf"
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "finite_amounts")
    assert violation.column == "amount" and "amount='inf'" in violation.examples[0]


def test_no_duplicate_rows_flags_the_repeat_not_the_original():
    frame = pd.concat([good_transactions(), good_transactions().iloc[[2]]], ignore_index=True)
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "no_duplicate_rows")
    assert violation.n_rows == 1 and violation.examples[0].startswith(f"line 10 of {FILE}")


def test_no_future_timestamps():
    frame = good_transactions()
    frame.loc[0, "ts"] = "2099-01-01T00:00:00Z"
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "no_future_timestamps")
    assert violation.column == "ts" and "2026-07-01T00:00:00+00:00" in violation.detail


def test_unique_customer_ids():
    customers = pd.DataFrame({"customer_id": ["A", "B", "A"], "Avg_Credit_Limit": [1, 2, 3]})
    report = validate_raw_table(raw(customers, "customers", "/c.csv"), CUSTOMERS, now=NOW)
    (violation,) = failed(report, "unique_customer_ids")
    assert violation.n_rows == 2
    assert "Avg_Credit_Limit" in validate_raw_table(raw(customers.iloc[:2], "customers", "/c.csv"), CUSTOMERS, now=NOW).frame


def test_known_customer_ids_and_flags():
    campaigns = pd.DataFrame(
        {
            "customer_id": ["A", "Z"],
            "campaign_id": ["X", "X"],
            "treated": ["1", "2"],
            "sent_at": ["2026-01-01", "2026-01-01"],
            "converted": ["0", "1"],
            "revenue": ["", "5.0"],
        }
    )
    report = validate_raw_table(raw(campaigns, "campaigns", "/c.csv"), CAMPAIGNS, now=NOW, known_customer_ids=pd.Index(["A"]))
    (unknown,) = failed(report, "known_customer_ids")
    assert unknown.n_rows == 1 and "customer_id='Z'" in unknown.examples[0]
    (flag,) = failed(report, "valid_types")
    assert flag.column == "treated" and "values must be 0 or 1" in report.failure_message()


def test_examples_are_capped_at_five():
    frame = good_transactions(30)
    frame["amount"] = "n/a?"
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    (violation,) = failed(report, "valid_types")
    assert violation.n_rows == 30 and len(violation.examples) == 5
    assert "30 of 30 rows violate it. First 5:" in report.failure_message()


def test_absent_table_passes_with_a_note():
    report = validate_raw_table(RawTable("customers", None), CUSTOMERS, now=NOW)
    assert report.passed
    assert all(r.note.startswith("not applicable") for r in report.results)


@pytest.mark.parametrize("value", ["2026-01-05", "2026-01-05 10:00:00", "2026-01-05T10:00:00+02:00"])
def test_timestamps_in_iso_forms_parse_to_utc(value):
    frame = good_transactions(1)
    frame["ts"] = value
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    assert report.passed and report.frame["ts"].dt.tz is not None


def test_transaction_ids_tell_identical_purchases_apart():
    frame = pd.concat([good_transactions(), good_transactions().iloc[[2]]], ignore_index=True)
    frame["transaction_id"] = [f"T{i}" for i in range(len(frame))]
    assert validate_raw_table(raw(frame), TRANSACTIONS, now=NOW).passed
    frame.loc[len(frame) - 1, "transaction_id"] = "T2"  # now it really is the same transaction twice
    report = validate_raw_table(raw(frame), TRANSACTIONS, now=NOW)
    assert failed(report, "no_duplicate_rows")[0].n_rows == 1
