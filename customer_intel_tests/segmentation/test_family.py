"""Segmentation's domain code: the input space, metrics, names, the split and the comparison on the lifecycle."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from customer_intel.modeling import Prediction
from customer_intel.segmentation.metrics import input_space_metrics, silhouette_rows, stability
from customer_intel.segmentation.naming import profile_segments
from customer_intel.segmentation.space import PROFILE_ATTRIBUTES, InputSpace, SegmentationInputError


def test_the_input_space_logs_skewed_columns_standardises_and_clips():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.poisson(3, 1000).astype(float) for c in PROFILE_ATTRIBUTES})
    frame["Avg_Credit_Limit"] = np.exp(rng.normal(10, 1, 1000))  # heavy-tailed, as real exports are
    frame.loc[0, "Total_calls_made"] = np.nan
    space = InputSpace.fit(frame, "profile")
    assert "Avg_Credit_Limit" in space.logged and "Total_visits_bank" not in space.logged
    X = space.transform(frame)
    assert X.shape == (1000, 5) and np.isfinite(X).all() and np.abs(X).max() <= 5
    np.testing.assert_allclose(X[:, 0].mean(), 0, atol=1e-6)
    far = space.transform(frame.assign(Total_visits_bank=1e9).head(1))
    assert far[0, list(space.columns).index("Total_visits_bank")] == 5  # clipped
    assert "log1p on the columns skewed beyond 1 (Avg_Credit_Limit" in space.describe()
    with pytest.raises(SegmentationInputError, match="the profile feature set needs Total_calls_made"):
        InputSpace.fit(frame.drop(columns=["Total_calls_made"]), "profile")
    with pytest.raises(SegmentationInputError, match="unknown feature set 'rfm'"):
        InputSpace.fit(frame, "rfm")


def test_metrics_near_perfect_on_separated_blobs_and_near_zero_on_uniform_noise():
    X, truth = make_blobs(n_samples=1200, centers=4, n_features=5, cluster_std=0.4, random_state=0)
    blobs = input_space_metrics(X, truth)
    assert blobs["silhouette"] > 0.8 and blobs["davies_bouldin"] < 0.4 and blobs["calinski_harabasz"] > 5000
    assert blobs["n_segments"] == 4 and blobs["largest_share"] == pytest.approx(0.25) and blobs["smallest_share"] == pytest.approx(0.25)
    from sklearn.cluster import KMeans

    noise = np.random.default_rng(0).uniform(size=(1200, 5))
    labels = KMeans(4, n_init=4, random_state=0).fit_predict(noise)
    assert input_space_metrics(noise, labels)["silhouette"] < 0.2  # k-means always cuts noise; the silhouette says it is weak
    assert stability([truth, truth, truth]) == 1.0
    assert stability([truth, np.random.default_rng(1).permutation(truth)]) < 0.05
    assert len(silhouette_rows(20_000)) == 5000 and (silhouette_rows(20_000) == silhouette_rows(20_000)).all()


def _profiled(seed=0):
    rng = np.random.default_rng(seed)
    groups = [(120_000, 10, 1, 1), (12_000, 2, 1, 8), (35_000, 1, 5, 2)]  # digital affluent, callers, branch
    rows = []
    for g, (limit, online, bank, calls) in enumerate(groups):
        for _ in range(300):
            rows.append({"Avg_Credit_Limit": limit * np.exp(rng.normal(0, 0.2)), "Total_Credit_Cards": rng.poisson(4),
                         "Total_visits_bank": rng.poisson(bank), "Total_visits_online": rng.poisson(online),
                         "Total_calls_made": rng.poisson(calls), "g": g})
    frame = pd.DataFrame(rows)
    space = InputSpace.fit(frame, "profile")
    return frame, space.transform(frame), frame.pop("g").to_numpy()


def test_segments_get_unique_readable_names_stable_for_a_seed():
    frame, Z, labels = _profiled()
    profiles = profile_segments(frame[list(PROFILE_ATTRIBUTES)], Z, labels)
    names = [p.name for p in profiles]
    assert names == ["High-limit digital", "Low-limit callers", "Mid-limit branch users"]
    assert profiles[0].description.startswith("300 customers (33%): ")
    assert names == [p.name for p in profile_segments(frame[list(PROFILE_ATTRIBUTES)], Z, labels)]
    # two segments alike: the smaller one adds its next word, then a number; names stay unique
    twin = np.where(labels == 0, np.where(np.arange(len(labels)) % 3 == 0, 3, 0), labels)
    again = [p.name for p in profile_segments(frame[list(PROFILE_ATTRIBUTES)], Z, twin)]
    assert len(set(again)) == 4 and sum(name.startswith("High-limit digital") for name in again) == 2


def test_latent_space_numbers_never_land_in_the_input_space_columns():
    from customer_intel.modeling import FIT, VALIDATION, TimeSplit
    from customer_intel.segmentation.family import segmentation_metrics
    from customer_intel.segmentation.space import FEATURE_SET_COLUMN

    frame, Z, labels = _profiled()
    frame[FEATURE_SET_COLUMN] = "profile"
    split = TimeSplit("2026-06-30", 0, {FIT: frame.iloc[::2].reset_index(drop=True), VALIDATION: frame.iloc[1::2].reset_index(drop=True)})
    held = labels[1::2]
    metrics = segmentation_metrics(split, Prediction(held, diagnostics={"latent_silhouette": 0.99, "stability": 0.9}))
    expected = input_space_metrics(InputSpace.fit(split.fit, "profile").transform(split.validation), held)
    assert metrics["silhouette"] == pytest.approx(expected["silhouette"]) and metrics["silhouette"] < 0.9
    assert metrics["latent_silhouette"] == 0.99 and metrics["stability"] == 0.9 and np.isnan(metrics["noise_share"])
