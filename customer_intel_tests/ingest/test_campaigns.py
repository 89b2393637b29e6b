"""raw_campaigns takes treated 0/1 or a treatment-arm column; a file with neither is refused by name."""

import pandas as pd

from customer_intel.ingest import CAMPAIGNS, read_raw_table, validate_raw_table

NOW = pd.Timestamp("2026-07-01", tz="UTC")


def _csv(path, rows: str) -> str:
    path.write_text(rows)
    return str(path)


def test_an_arm_column_replaces_treated(tmp_path):
    path = _csv(tmp_path / "campaigns.csv", "customer_id,campaign_id,arm,sent_at,visit\nA,C1,cashback,2026-05-02,1\nB,C1,control,2026-05-02,0\n")
    report = validate_raw_table(read_raw_table(CAMPAIGNS, path, {"converted": "visit"}), CAMPAIGNS, now=NOW)
    assert report.passed, report.violations
    assert report.frame["arm"].tolist() == ["cashback", "control"] and report.frame["converted"].tolist() == [1, 0]


def test_a_file_without_treated_or_arm_is_refused_naming_both(tmp_path):
    path = _csv(tmp_path / "campaigns.csv", "customer_id,campaign_id,sent_at,converted\nA,C1,2026-05-02,1\n")
    report = validate_raw_table(read_raw_table(CAMPAIGNS, path), CAMPAIGNS, now=NOW)
    assert not report.passed
    (violation,) = report.violations
    assert violation.rule == "required_columns" and violation.column == "treated/arm"
    text = violation.message("raw_campaigns")
    assert "one of the columns 'treated' or 'arm' is required" in text and "campaigns.csv" in text
