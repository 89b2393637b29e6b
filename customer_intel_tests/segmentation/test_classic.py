"""The five classical clusterers: recovery of separated blobs, out-of-sample assignment, the protocol, noise, determinism."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from customer_intel.segmentation.base import Clusterer
from customer_intel.segmentation.classic import (
    GaussianMixtureSegments,
    HDBSCANSegments,
    KMeansSegments,
    SOMSegments,
    SpectralSegments,
    kneedle_k,
    silhouettes,
)

METHODS = {
    "kmeans": (KMeansSegments, "centroid"),
    "gmm": (GaussianMixtureSegments, "mixture"),
    "hdbscan": (HDBSCANSegments, "density"),
    "spectral": (SpectralSegments, "graph"),
    "som": (SOMSegments, "som"),
}
K_RANGING = ("kmeans", "gmm", "spectral", "som")
SIZES = [700, 550, 450, 300]  # unequal, so segment 0 must be the largest


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated blobs in 6 dimensions, standardised on the fit rows; 2,000 to fit, 500 unseen."""
    X, y = make_blobs(n_samples=[s + s // 4 for s in SIZES], centers=None, n_features=6, cluster_std=1.0, random_state=0)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    fit = np.concatenate([np.flatnonzero(y == j)[:s] for j, s in enumerate(SIZES)])
    unseen = np.setdiff1d(np.arange(len(X)), fit)
    scaler = StandardScaler().fit(X[fit])
    return scaler.transform(X[fit]), y[fit], scaler.transform(X[unseen]), y[unseen]


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _, _, _ = blobs
    return {name: cls().fit(X) for name, (cls, _) in METHODS.items()}


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_recovers_separated_blobs_and_assigns_unseen_points(name, blobs, fitted):
    X, y, X_new, y_new = blobs
    model = fitted[name]
    assert isinstance(model, Clusterer) and model.name == name and model.kind == METHODS[name][1]
    assert model.n_clusters_ == 4
    labels = model.predict(X)
    assert adjusted_rand_score(y, labels) >= 0.9
    assert adjusted_rand_score(y_new, model.predict(X_new)) >= 0.9
    sizes = np.bincount(labels, minlength=model.n_clusters_)
    assert (np.diff(sizes) <= 0).all(), f"segments not numbered from the largest down: {sizes}"
    if name in K_RANGING:
        assert model.info()["k_chosen"] == 4


@pytest.mark.parametrize("name", list(METHODS))
def test_every_row_gets_a_segment_and_finite_distances_even_far_outliers(name, blobs, fitted):
    _, _, X_new, _ = blobs
    model = fitted[name]
    far = np.vstack([np.full(6, 50.0), np.full(6, -1e3), np.r_[1e4, np.zeros(5)]])
    X = np.vstack([X_new, far])
    labels = model.predict(X)
    assert labels.dtype == np.int64 and labels.shape == (len(X),)
    assert labels.min() >= 0 and labels.max() < model.n_clusters_
    distances = model.transform(X)
    assert distances.shape == (len(X), model.n_clusters_)
    assert np.isfinite(distances).all() and (distances >= 0).all()
    assert model.predict(X[:0]).shape == (0,)


@pytest.mark.parametrize("name", list(METHODS))
def test_info_is_flat_scalars_or_short_lists(name, fitted):
    info = fitted[name].info()
    assert info["method"] == name and info["n_clusters"] == 4
    for key, value in info.items():
        assert value is None or isinstance(value, (bool, int, float, str, list)), key
        if isinstance(value, list):
            assert len(value) <= 20 and all(isinstance(v, (int, float)) for v in value), key


@pytest.mark.parametrize("name", list(METHODS))
def test_same_seed_gives_identical_labels(name, blobs, fitted):
    X, _, X_new, _ = blobs
    again = METHODS[name][0](seed=0).fit(X)
    np.testing.assert_array_equal(again.predict(X), fitted[name].predict(X))
    np.testing.assert_array_equal(again.predict(X_new), fitted[name].predict(X_new))
    np.testing.assert_allclose(again.transform(X_new), fitted[name].transform(X_new))


def test_kmeans_keeps_its_curves_and_reports_the_elbow(fitted):
    info = fitted["kmeans"].info()
    assert info["k_values"] == [3, 4, 5, 6, 7, 8]
    assert len(info["inertia_by_k"]) == 6 and len(info["silhouette_by_k"]) == 6
    assert np.all(np.diff(info["inertia_by_k"]) < 0)
    assert info["elbow_k"] == 4 and int(np.argmax(info["silhouette_by_k"])) == 1


def test_kmeans_predicts_the_nearest_centre_and_a_fixed_k_is_used(blobs, fitted):
    X, _, X_new, _ = blobs
    model = fitted["kmeans"]
    np.testing.assert_array_equal(model.predict(X_new), model.transform(X_new).argmin(axis=1))
    fixed = KMeansSegments(k=6).fit(X)
    assert fixed.n_clusters_ == 6 and fixed.info()["k_values"] == [6]


def test_gmm_chooses_k_by_the_lowest_bic_and_centres_are_the_means(blobs, fitted):
    _, _, X_new, _ = blobs
    model = fitted["gmm"]
    info = model.info()
    assert info["k_values"][int(np.argmin(info["bic_by_k"]))] == 4
    np.testing.assert_allclose(model.centres_, model.model_.means_[model.components_])
    proba = model.predict_proba(X_new)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(X_new))


def test_hdbscan_flags_a_far_outlier_as_noise_and_still_assigns_it(blobs, fitted):
    _, _, X_new, _ = blobs
    model = fitted["hdbscan"]
    assert 0 <= model.noise_share_ < 0.1 and model.info()["noise_share"] == model.noise_share_
    far = np.full((1, 6), 20.0)
    assert model.is_noise(far).tolist() == [True]
    assert 0 <= model.predict(far)[0] < model.n_clusters_
    flags = model.is_noise(X_new)
    assert flags.dtype == bool and flags.mean() < 0.1  # points from the blobs are mostly not noise


def test_hdbscan_raises_when_it_finds_fewer_than_two_clusters():
    X = np.random.default_rng(0).normal(size=(600, 4))  # one Gaussian: no density structure to split
    with pytest.raises(ValueError, match="HDBSCAN found"):
        HDBSCANSegments().fit(X)


def test_hdbscan_fits_a_seeded_subsample_when_rows_exceed_max_fit_rows(blobs):
    X, y, _, _ = blobs
    model = HDBSCANSegments(max_fit_rows=800, seed=3).fit(X)
    assert model.info()["fit_rows"] == 800 and model.info()["min_cluster_size_used"] == 25
    assert adjusted_rand_score(y, model.predict(X)) >= 0.9


def test_spectral_and_som_record_their_structure(fitted):
    spectral, som = fitted["spectral"].info(), fitted["som"].info()
    assert spectral["fit_rows"] == 2000 and spectral["graph_components"] >= 1
    assert som["grid_used"] == [10, 10] and som["iterations_used"] == 30_000 and len(som["silhouette_by_k"]) == 6
    assert fitted["som"].codebook_.shape == (100, 6) and fitted["som"].node_segment_.min() >= 0


def test_som_sizes_its_grid_from_the_rows(blobs):
    X, y, _, _ = blobs
    model = SOMSegments(grid=None, iterations=5000).fit(X)
    assert model.info()["grid_used"] == [15, 15]  # ceil(sqrt(5 * sqrt(2000)))
    assert adjusted_rand_score(y, model.predict(X)) >= 0.9


def test_the_k_range_must_be_valid_and_fit_the_rows():
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="too few"):
        KMeansSegments(k_range=(6, 8)).fit(X)
    with pytest.raises(ValueError, match="2 <= k_min <= k_max"):
        KMeansSegments(k_range=(5, 3)).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        KMeansSegments().fit(np.full((20, 3), np.nan))


def test_silhouettes_match_scikit_learn_and_kneedle_finds_the_elbow():
    X, y = make_blobs(n_samples=300, centers=3, n_features=4, random_state=1)
    labels = [y, np.arange(300) % 5, np.r_[0, np.ones(299, dtype=int)]]  # the last has a singleton segment
    ours = silhouettes(X, labels, chunk=64)
    np.testing.assert_allclose(ours, [silhouette_score(X, lab) for lab in labels], rtol=1e-9, atol=1e-12)
    assert np.isnan(silhouettes(X, [np.zeros(300, dtype=int)])[0])
    assert kneedle_k([2, 3, 4, 5, 6, 7], [100, 30, 25, 21, 18, 16]) == 3
    assert kneedle_k([3, 4], [10, 5]) == 3


@pytest.mark.parametrize("name", list(METHODS))
def test_a_fitted_model_survives_pickling(name, blobs, fitted):
    import pickle

    _, _, X_new, _ = blobs
    copy = pickle.loads(pickle.dumps(fitted[name]))
    np.testing.assert_array_equal(copy.predict(X_new), fitted[name].predict(X_new))


def test_hdbscan_searches_its_density_settings_on_the_training_rows_unless_they_are_fixed(blobs):
    X, y, _, _ = blobs
    model = HDBSCANSegments(max_fit_rows=800, seed=3).fit(X)
    tried, info = model.settings_tried_, model.info()
    assert [(t["min_samples"], t["method"]) for t in tried] == [(None, "eom"), (10, "eom"), (5, "eom"), (None, "leaf"), (10, "leaf"), (5, "leaf")]
    kept = max((t for t in tried if 3 <= t["clusters"] <= 8), key=lambda t: t["silhouette"])
    assert (info["min_samples_used"], info["cluster_selection_method_used"]) == (kept["min_samples"], kept["method"])
    assert info["settings_tried"].count("min_samples=") == 6 and "min_samples=10/leaf: " in info["settings_tried"]
    fixed = HDBSCANSegments(max_fit_rows=800, seed=3, min_samples=5, cluster_selection_method="leaf").fit(X)
    assert len(fixed.settings_tried_) == 1 and fixed.info()["min_samples_used"] == 5
