import pandas as pd
import pytest

from customer_intel.ingest import TRANSACTIONS, RawSourceError, read_raw_table, validate_raw_table
from customer_intel.ingest.reader import SOURCE_FILE, SOURCE_ROW

ROWS = pd.DataFrame(
    {"Customer Key": ["A", "B", "C"], "ts": ["2025-01-01", "2025-01-02", "2025-01-03"], "amount": ["1.5", "2", "-1"]}
)


def test_csv_is_read_as_text_with_source_positions(tmp_path):
    ROWS.rename(columns={"Customer Key": "customer_id"}).to_csv(tmp_path / "t.csv", index=False)
    raw = read_raw_table(TRANSACTIONS, str(tmp_path / "t.csv"))
    assert raw.files == [str(tmp_path / "t.csv")]
    assert raw.frame["amount"].tolist() == ["1.5", "2", "-1"]
    assert raw.frame[SOURCE_ROW].tolist() == [0, 1, 2]


def test_column_mapping_renames_export_columns(tmp_path):
    ROWS.to_parquet(tmp_path / "t.parquet")
    raw = read_raw_table(TRANSACTIONS, str(tmp_path / "t.parquet"), {"customer_id": "Customer Key"})
    assert "customer_id" in raw.frame and "Customer Key" not in raw.frame
    assert raw.missing_mapped_columns == {}


def test_mapping_to_a_missing_source_column_is_remembered(tmp_path):
    ROWS.to_csv(tmp_path / "t.csv", index=False)
    raw = read_raw_table(TRANSACTIONS, str(tmp_path / "t.csv"), {"customer_id": "Client Number"})
    assert raw.missing_mapped_columns == {"customer_id": "Client Number"}


def test_folder_of_files_is_one_table_and_each_row_keeps_its_file(tmp_path):
    folder = tmp_path / "transactions"
    folder.mkdir()
    ROWS.iloc[:2].to_csv(folder / "2025-01.csv", index=False)
    ROWS.iloc[2:].to_parquet(folder / "2025-02.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / "notes.txt").write_text("ignored")
    raw = read_raw_table(TRANSACTIONS, str(folder), {"customer_id": "Customer Key"})
    assert len(raw.files) == 2
    assert raw.frame[SOURCE_FILE].map(lambda p: p.rsplit("/", 1)[-1]).tolist() == ["2025-01.csv", "2025-01.csv", "2025-02.parquet"]
    assert raw.describe_source() == f"{folder} (2 files)"


def test_missing_location_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(RawSourceError, match="no such file or folder"):
        read_raw_table(TRANSACTIONS, str(tmp_path / "nope.csv"))
    with pytest.raises(RawSourceError, match="holds no CSV or Parquet files"):
        read_raw_table(TRANSACTIONS, str(tmp_path))


def test_unreadable_file_names_the_file(tmp_path):
    (tmp_path / "t.parquet").write_text("this is not parquet")
    raw = read_raw_table(TRANSACTIONS, str(tmp_path / "t.parquet"))
    report = validate_raw_table(raw, TRANSACTIONS, now=pd.Timestamp("2026-07-01", tz="UTC"))
    (violation,) = report.violations
    assert (violation.rule, violation.column, violation.files) == ("well_formed_rows", "(all)", [str(tmp_path / "t.parquet")])
    assert violation.detail.startswith("the file cannot be read as Parquet")


def test_not_configured_table_is_absent():
    raw = read_raw_table(TRANSACTIONS, None)
    assert raw.absent and raw.frame.empty and raw.describe_source() == "(not configured)"
