"""The bad-input probe's findings (issue 17): each was silent corruption or an unclear error before the engine rewrite."""

import pandas as pd
import pytest

from customer_intel.cltv.ml import FeatureMatrix
from customer_intel.features import FeatureInputError, build_customer_features
from customer_intel.ingest import CUSTOMERS, TRANSACTIONS, RawSourceError, read_raw_table, validate_raw_table
from customer_intel.ingest.contract import IngestLimits
from customer_intel.resources import RawDataSource

NOW = pd.Timestamp("2026-07-01", tz="UTC")


def _csv(path, rows: str):
    path.write_text(rows)
    return str(path)


def test_naive_and_offset_timestamps_in_one_column_are_each_read_as_utc(tmp_path):
    path = _csv(tmp_path / "transactions.csv", "customer_id,ts,amount\nA,2026-01-05 10:00:00,1\nB,2026-01-05T10:00:00+05:30,2\n")
    report = validate_raw_table(read_raw_table(TRANSACTIONS, path), TRANSACTIONS, now=NOW)
    assert report.passed
    assert report.frame["ts"].tolist() == [pd.Timestamp("2026-01-05 10:00", tz="UTC"), pd.Timestamp("2026-01-05 04:30", tz="UTC")]


def test_absurd_amounts_are_refused_before_they_overflow_every_sum(tmp_path):
    path = _csv(tmp_path / "transactions.csv", "customer_id,ts,amount\nA,2026-01-05,1.7e308\nA,2026-01-06,1.7e308\nB,2026-01-06,5\n")
    report = validate_raw_table(read_raw_table(TRANSACTIONS, path), TRANSACTIONS, now=NOW)
    (violation,) = next(r for r in report.results if r.rule == "plausible_amounts").violations
    assert violation.n_rows == 2 and "amount='1.7e308'" in violation.examples[0] and "line 2 of" in violation.examples[0]
    loose = validate_raw_table(read_raw_table(TRANSACTIONS, path), TRANSACTIONS, now=NOW, limits=IngestLimits(max_abs_amount=1e309))
    assert loose.passed  # the bound is configurable (CUSTOMER_INTEL_MAX_ABS_AMOUNT)


def test_placeholder_dates_before_the_floor_are_refused(tmp_path):
    path = _csv(tmp_path / "transactions.csv", "customer_id,ts,amount\nA,1900-01-01,1\nB,2026-01-06,5\n")
    report = validate_raw_table(read_raw_table(TRANSACTIONS, path), TRANSACTIONS, now=NOW)
    (violation,) = next(r for r in report.results if r.rule == "no_placeholder_dates").violations
    assert violation.column == "ts" and "before the date floor 1980-01-01" in violation.detail and "ts='1900-01-01'" in violation.examples[0]


def test_a_part_whose_header_differs_is_named_not_read_as_nulls(tmp_path):
    folder = tmp_path / "transactions"
    folder.mkdir()
    _csv(folder / "a.csv", "customer_id,ts,amount\nA,2026-01-05,1\n")
    _csv(folder / "b.csv", "customer_id,ts,amt\nB,2026-01-05,2\n")
    report = validate_raw_table(read_raw_table(TRANSACTIONS, str(folder)), TRANSACTIONS, now=NOW)
    (violation,) = next(r for r in report.results if r.rule == "required_columns").violations
    assert violation.files == [str(folder / "b.csv")] and "required column 'amount' is missing (columns found: amt, customer_id, ts)" in violation.detail
    assert not any(v.rule == "non_null_values" for v in report.violations)


def test_repeated_customer_keys_name_the_setting_that_resolves_them_and_keep_last_works(tmp_path):
    path = _csv(tmp_path / "customers.csv", "customer_id,Avg_Credit_Limit\nA,100\nB,200\nA,300\n")
    refused = validate_raw_table(read_raw_table(CUSTOMERS, path), CUSTOMERS, now=NOW)
    assert "CUSTOMER_INTEL_CUSTOMERS_DUPLICATES=keep_last" in refused.failure_message()
    kept = validate_raw_table(read_raw_table(CUSTOMERS, path), CUSTOMERS, now=NOW, limits=IngestLimits(duplicate_keys="keep_last"))
    assert kept.passed and kept.frame.set_index("customer_id")["Avg_Credit_Limit"].to_dict() == {"A": 300.0, "B": 200.0}
    assert "kept the last row of each" in kept.notes[0]


def test_ids_as_padded_text_and_as_integers_are_refused_not_joined_to_nothing():
    transactions = pd.DataFrame({"customer_id": ["0000007", "0000008"], "ts": pd.to_datetime(["2026-01-05", "2026-01-06"], utc=True),
                                 "amount": [1.0, 2.0]})
    customers = pd.DataFrame({"customer_id": [7, 8], "Avg_Credit_Limit": [1.0, 2.0]})
    with pytest.raises(FeatureInputError, match="do not match: 0 of 2 profile rows .* would match if leading zeros were ignored"):
        build_customer_features(transactions, customers, "2026-01-31")


def test_a_table_in_two_forms_and_a_missing_raw_folder_are_refused_by_path(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _csv(raw / "transactions.csv", "customer_id,ts,amount\nA,2026-01-05,1\n")
    pd.DataFrame({"customer_id": ["A"]}).to_parquet(raw / "transactions.parquet")
    with pytest.raises(RawSourceError, match=f"transactions is there in 2 forms: {raw / 'transactions.parquet'}, {raw / 'transactions.csv'}"):
        RawDataSource(raw_dir=str(raw)).location("transactions")
    with pytest.raises(RawSourceError, match=f"the raw folder {tmp_path / 'gone'} does not exist"):
        RawDataSource(raw_dir=str(tmp_path / "gone")).location("transactions")


TX = pd.DataFrame({
    "customer_id": ["A", "A", "B", "B"],
    "ts": pd.to_datetime(["2026-01-05", "2026-02-05", "2026-01-10", "2026-03-20"], utc=True),
    "amount": [10.0, 20.0, 5.0, 7.0],
    "channel": ["online", "online", "branch", "atm"],  # atm appears only after the as-of day
})


def test_profile_attributes_are_the_version_valid_on_the_as_of_day():
    versions = pd.DataFrame({"customer_id": ["A", "A", "B"], "valid_from": pd.to_datetime(["2025-01-01", "2026-03-01", "2025-06-01"], utc=True),
                             "Avg_Credit_Limit": [1000.0, 9000.0, 500.0]})
    feb = build_customer_features(TX, versions, "2026-02-28")
    assert feb.profile_basis == "valid_from" and feb.frame.set_index("customer_id")["Avg_Credit_Limit"].to_dict() == {"A": 1000.0, "B": 500.0}
    later = build_customer_features(TX, versions, "2026-03-31").frame.set_index("customer_id")
    assert later.loc["A", "Avg_Credit_Limit"] == 9000.0


def test_a_snapshot_profile_can_be_kept_out_and_says_so():
    snapshot = pd.DataFrame({"customer_id": ["A", "B"], "Avg_Credit_Limit": [1.0, 2.0]})
    kept = build_customer_features(TX, snapshot, "2026-02-28")
    out = build_customer_features(TX, snapshot, "2026-02-28", snapshot_profile=False)
    assert kept.profile_basis == "snapshot" and "Avg_Credit_Limit" in kept.frame
    assert out.profile_basis == "snapshot_excluded" and "Avg_Credit_Limit" not in out.frame and "postdate" in out.notes[0]
    assert out.frame["profile_basis"].eq("snapshot_excluded").all()


def test_channel_vocabulary_comes_from_data_up_to_the_as_of_day_or_is_fixed_by_the_caller():
    feb = build_customer_features(TX, None, "2026-02-28")
    assert feb.channels == ("branch", "online") and "channel_share_atm" not in feb.frame
    fixed = build_customer_features(TX, None, "2026-02-28", channels=("atm", "branch", "online"))
    assert fixed.frame["channel_share_atm"].eq(0.0).all()


def test_population_relative_rfm_scores_are_not_model_inputs():
    frame = build_customer_features(TX, None, "2026-03-31").frame
    matrix = FeatureMatrix.fit(frame)
    assert not {"r_score", "f_score", "m_score"} & set(matrix.columns) and "recency" in matrix.columns
    # a customer's inputs do not depend on who else is scored with them
    alone = matrix.transform(frame.iloc[[0]])
    together = matrix.transform(frame)[[0]]
    assert (alone == together).all()
    # a channel of the training vocabulary that no one used by the scoring date has share 0
    assert matrix.transform(frame.drop(columns=["channel_share_atm"]))[:, matrix.columns.index("channel_share_atm")].tolist() == [0.0, 0.0]
