"""The engine's builder equals the pandas builder it replaced (the oracle), column by column.

Hand-computed values are in ``test_rfm``; here the two builders meet on real and synthetic logs:
the CDNOW master log (refund-free, many same-day purchases), the synthetic bank (refunds,
categories, channels) at several as-of days, and a log with transactions before 1970 and a
history longer than one purchase-day bucket (``DAY_BUCKET`` days).
"""

import numpy as np
import pandas as pd
import pytest

from customer_intel.cltv.datasets import load_cdnow_transactions
from customer_intel.features.rfm import DAY_BUCKET, holdout_targets, transactional_features
from customer_intel_tests.features.oracle import oracle_holdout_targets, oracle_transactional_features


def assert_same_features(ours: pd.DataFrame, oracle: pd.DataFrame) -> None:
    assert list(ours.index) == list(oracle.index.astype("string"))
    assert sorted(ours.columns) == sorted(oracle.columns)
    for column in oracle.columns:
        expected, got = oracle[column].to_numpy(), ours[column].to_numpy()
        if column == "top_category":
            np.testing.assert_array_equal(pd.array(got, dtype="string"), pd.array(expected, dtype="string"), err_msg=column)
        elif np.issubdtype(np.asarray(expected).dtype, np.integer):
            np.testing.assert_array_equal(got, expected, err_msg=column)
        else:
            np.testing.assert_allclose(got.astype(float), expected.astype(float), rtol=1e-9, atol=1e-9, err_msg=column)


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_transactions("master")


@pytest.mark.parametrize("as_of", ["1997-09-30", "1998-06-30"])
def test_cdnow_features_equal_the_oracle(cdnow, as_of):
    assert_same_features(transactional_features(cdnow, as_of), oracle_transactional_features(cdnow, as_of))


def test_cdnow_holdout_targets_equal_the_oracle(cdnow):
    ours = holdout_targets(cdnow, "1997-09-30", 273)
    oracle = oracle_holdout_targets(cdnow, "1997-09-30", 273)
    assert list(ours.index) == list(oracle.index.astype("string"))
    np.testing.assert_array_equal(ours["holdout_purchases"].to_numpy(), oracle["holdout_purchases"].to_numpy())
    np.testing.assert_allclose(ours["holdout_spend"].to_numpy(), oracle["holdout_spend"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("as_of", ["2025-09-30", "2026-03-31", "2026-06-30"])
def test_bank_features_equal_the_oracle(small_frames, as_of):
    transactions = small_frames["transactions"]
    assert (transactions["amount"] < 0).any() and transactions["channel"].nunique() > 1
    assert_same_features(transactional_features(transactions, as_of), oracle_transactional_features(transactions, as_of))


def test_long_histories_and_days_before_1970_equal_the_oracle():
    rng = np.random.default_rng(3)
    n = 4000
    start = pd.Timestamp("1968-03-01", tz="UTC")
    span = 3 * DAY_BUCKET + 40  # several buckets, customers crossing bucket edges
    ts = start + pd.to_timedelta(rng.integers(0, span * 86_400, n), unit="s")
    frame = pd.DataFrame({
        "customer_id": pd.array(rng.choice([f"K{i:03d}" for i in range(60)], n), dtype="string"),
        "ts": ts,
        "amount": np.round(rng.normal(40, 30, n), 2),  # about 9% refunds (negative amounts)
        "category": rng.choice(["food", "fuel", "travel"], n),
        "channel": rng.choice(["online", "in_store"], n),
    })
    for as_of in ["1969-12-31", "1970-01-01", str((start + pd.Timedelta(days=span)).date())]:
        assert_same_features(transactional_features(frame, as_of), oracle_transactional_features(frame, as_of))
