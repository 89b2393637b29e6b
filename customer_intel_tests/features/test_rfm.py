import numpy as np
import pandas as pd
import pytest

from customer_intel.features import FeatureInputError, build_customer_features, calibration_holdout_frame, holdout_targets
from customer_intel.features.rfm import profile_features, transactional_features


def tx(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount", "category", "channel"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    frame["customer_id"] = frame["customer_id"].astype("string")
    return frame


HAND = tx(
    [
        ("A", "2024-01-01 09:00", 10.0, "grocery", "online"),
        ("A", "2024-01-01 18:00", 5.0, "grocery", "in_store"),  # same day: one purchase day worth 15
        ("A", "2024-01-05 12:00", 20.0, "travel", "online"),
        ("A", "2024-01-10 12:00", 30.0, "travel", "online"),
        ("A", "2024-01-12 12:00", -10.0, "travel", "online"),  # refund on a day without purchase
        ("B", "2024-01-15 08:00", 100.0, "dining", "in_store"),
        ("C", "2024-01-21 00:00", 50.0, "dining", "online"),  # the day after as_of: ignored
        ("D", "2024-01-20 23:59:59", 7.0, "fuel", "atm"),  # last second of the as_of day: counted
    ]
)


def test_rfm_matches_hand_computed_values():
    f = transactional_features(HAND, "2024-01-20")
    assert list(f.index) == ["A", "B", "D"]
    a, b, d = f.loc["A"], f.loc["B"], f.loc["D"]
    # A: purchase days 01-01 (15), 01-05 (20), 01-10 (30); refund -10 on 01-12; as_of 01-20
    assert (a["frequency"], a["t_x"], a["T"], a["recency"]) == (2, 9, 19, 10)
    assert a["monetary"] == pytest.approx(55 / 3)
    assert a["monetary_value"] == pytest.approx((55 - 15) / 2)
    assert a["total_spend"] == pytest.approx(55.0)
    assert a["refund_share"] == pytest.approx(1 / 5)
    assert a["avg_ticket"] == pytest.approx(65 / 4)
    assert a["channel_share_online"] == pytest.approx(4 / 5)
    assert a["top_category"] == "grocery" or a["top_category"] == "travel"  # 2 vs 2 purchases: a tie
    assert a["category_entropy"] == pytest.approx(1.0)
    assert (b["frequency"], b["t_x"], b["T"], b["recency"], b["monetary"], b["monetary_value"]) == (0, 0, 5, 5, 100.0, 0.0)
    assert (d["frequency"], d["T"], d["recency"]) == (0, 0, 0)
    assert a["spend_90d"] == pytest.approx(55.0) and a["spend_trend"] == pytest.approx(1.0)


def test_matches_lifetimes_summary_on_purchases(small_frames):
    from lifetimes.utils import summary_data_from_transaction_data

    purchases = small_frames["transactions"].query("amount > 0")
    as_of = pd.Timestamp("2026-03-31", tz="UTC")
    ours = transactional_features(purchases, as_of)
    theirs = summary_data_from_transaction_data(
        purchases.assign(ts=purchases["ts"].dt.tz_localize(None)), "customer_id", "ts",
        monetary_value_col="amount", observation_period_end=as_of.tz_localize(None), freq="D",
    )
    theirs.index = theirs.index.astype("string")
    theirs = theirs.loc[ours.index]
    np.testing.assert_array_equal(ours["frequency"], theirs["frequency"])
    np.testing.assert_array_equal(ours["t_x"], theirs["recency"])
    np.testing.assert_array_equal(ours["T"], theirs["T"])
    np.testing.assert_allclose(ours["monetary_value"], theirs["monetary_value"], rtol=1e-9)


def test_features_ignore_everything_after_as_of_and_targets_everything_before(small_frames):
    transactions, customers = small_frames["transactions"], small_frames["customers"]
    cutoff = pd.Timestamp("2026-01-31", tz="UTC")
    after = transactions["ts"] >= cutoff + pd.Timedelta(days=1)
    scrambled_future = transactions.copy()
    scrambled_future.loc[after, "amount"] *= 3
    scrambled_past = transactions.copy()
    scrambled_past.loc[~after, "amount"] *= 3
    base = calibration_holdout_frame(transactions, customers, cutoff, horizon_days=90)
    future = calibration_holdout_frame(scrambled_future, customers, cutoff, horizon_days=90)
    past = calibration_holdout_frame(scrambled_past, customers, cutoff, horizon_days=90)
    target_cols = ["holdout_purchases", "holdout_spend"]
    pd.testing.assert_frame_equal(base.drop(columns=target_cols), future.drop(columns=target_cols))
    pd.testing.assert_frame_equal(base[target_cols], past[target_cols])
    assert not np.allclose(base["holdout_spend"], future["holdout_spend"])
    assert base["holdout_purchases"].sum() > 0


def test_holdout_targets_count_purchase_days_in_the_window():
    targets = holdout_targets(HAND, "2024-01-04", horizon_days=7)  # window 01-05 .. 01-11
    assert targets.loc["A", "holdout_purchases"] == 2
    assert targets.loc["A", "holdout_spend"] == pytest.approx(50.0)
    assert "B" not in targets.index


def test_profile_attributes_join_and_unbought_customers_are_noted():
    customers = pd.DataFrame({"customer_id": ["A", "B", "Z"], "Avg_Credit_Limit": [1000, 2000, 3000]})
    features = build_customer_features(HAND, customers, "2024-01-20")
    frame = features.frame.set_index("customer_id")
    assert frame.loc["A", "Avg_Credit_Limit"] == 1000 and pd.isna(frame.loc["D", "Avg_Credit_Limit"])
    assert features.notes == ("1 customers in raw_customers have no purchase by 2024-01-20 and are not scored",)
    assert set(frame["feature_mode"]) == {"transactional"}


def test_profile_mode_uses_seed_style_proxies():
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "Avg_Credit_Limit": [10_000, 50_000, 100_000],
            "Total_Credit_Cards": [2, 4, 8],
            "Total_visits_bank": [1, 5, 0],
            "Total_visits_online": [0, 1, 12],
            "Total_calls_made": [9, 3, 0],
        }
    )
    features = build_customer_features(None, customers, "2026-06-30")
    frame = features.frame.set_index("customer_id")
    assert features.mode == "profile" and "skipped" in features.notes[0]
    # Recency = minmax(1 / (calls + 1)): 1/10, 1/4, 1/1
    np.testing.assert_allclose(frame["recency"], [0.0, (0.25 - 0.1) / 0.9, 1.0])
    np.testing.assert_allclose(frame["frequency"], [0.0, 5 / 11, 1.0])
    np.testing.assert_allclose(frame["monetary"], [0.0, 40 / 90, 1.0])
    assert frame.loc["A", "r_score"] == 5  # most calls = most recent contact


def test_profile_mode_names_missing_profile_columns():
    with pytest.raises(FeatureInputError, match="lacks Total_visits_online, Total_calls_made"):
        profile_features(pd.DataFrame({"customer_id": ["A"], "Avg_Credit_Limit": [1], "Total_visits_bank": [1]}))


def test_no_input_at_all_is_a_clear_error():
    with pytest.raises(FeatureInputError, match="neither raw_transactions nor raw_customers"):
        build_customer_features(pd.DataFrame(), None, "2026-01-01")
    with pytest.raises(FeatureInputError, match="no purchases on or before 2020-01-01"):
        build_customer_features(HAND, None, "2020-01-01")


def test_shards_partition_the_customers_and_build_each_row_as_the_whole_bank_does(small_frames):
    from customer_intel.features.rfm import DISPLAY_ONLY_COLUMNS

    whole = build_customer_features(small_frames["transactions"], small_frames["customers"], SHARD_DAY).frame
    parts = [build_customer_features(small_frames["transactions"], small_frames["customers"], SHARD_DAY, shard=(s, 3)) for s in range(3)]
    sizes = [len(p.frame) for p in parts]
    assert sum(sizes) == len(whole) and min(sizes) > 0.25 * len(whole)  # every customer in exactly one shard, shards of similar size
    assert {p.channels for p in parts} == {tuple(sorted(small_frames["transactions"]["channel"].dropna().unique()))}
    merged = pd.concat([p.frame for p in parts]).sort_values("customer_id").reset_index(drop=True)
    assert not merged["customer_id"].duplicated().any()
    # the quintile scores rank within the frame built; every other column is the customer's own
    compared = [c for c in whole.columns if c not in DISPLAY_ONLY_COLUMNS]
    pd.testing.assert_frame_equal(merged[compared], whole.sort_values("customer_id").reset_index(drop=True)[compared])
    with pytest.raises(ValueError, match="shard 3 is not one of 0..2"):
        build_customer_features(small_frames["transactions"], None, SHARD_DAY, shard=(3, 3))


SHARD_DAY = "2026-03-31"
