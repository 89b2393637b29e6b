"""The deep clusterers (DEC, ClusterGAN): recovery of separated blobs, new-row assignment, input-space
distances, latent shapes, seeded determinism and the compact ids after a cluster empties."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from customer_intel.segmentation.base import Clusterer, centres_of
from customer_intel.segmentation.deep import DEC, ClusterGAN

METHODS = {"dec": DEC, "clustergan": ClusterGAN}


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated 6-d blobs: 2,000 training rows and 2,000 unseen ones, standardised on the training rows."""
    X, truth = make_blobs(n_samples=4000, centers=4, n_features=6, cluster_std=0.8, random_state=0)
    scaler = StandardScaler().fit(X[:2000])
    return scaler.transform(X[:2000]), truth[:2000], scaler.transform(X[2000:]), truth[2000:]


@pytest.fixture(scope="module")
def fitted(blobs):
    X = blobs[0]
    return {name: cls(n_clusters=4, seed=0).fit(X) for name, cls in METHODS.items()}


@pytest.mark.parametrize("method", list(METHODS))
def test_each_deep_method_recovers_separated_blobs_and_assigns_new_rows(blobs, fitted, method):
    X, truth, X_new, truth_new = blobs
    model = fitted[method]
    assert isinstance(model, Clusterer) and model.name == method and model.kind == "deep"
    labels = model.predict(X)
    assert labels.dtype == np.int64 and labels.shape == (len(X),)
    assert model.n_clusters_ == 4 and set(np.unique(labels)) == {0, 1, 2, 3}
    assert adjusted_rand_score(truth, labels) >= 0.9
    assert adjusted_rand_score(truth_new, model.predict(X_new)) >= 0.9
    sizes = np.bincount(labels, minlength=4)
    assert (np.diff(sizes) <= 0).all()  # ids by size, the largest first
    assert model.predict(X[:0]).shape == (0,)


@pytest.mark.parametrize("method", list(METHODS))
def test_transform_is_the_input_space_distance_to_the_assigned_rows_means(blobs, fitted, method):
    X, _, X_new, _ = blobs
    model = fitted[method]
    D = model.transform(X_new)
    assert D.shape == (len(X_new), model.n_clusters_) and np.isfinite(D).all() and (D >= 0).all()
    centres = centres_of(X, model.predict(X), model.n_clusters_)
    np.testing.assert_allclose(D, np.sqrt(((X_new[:, None, :] - centres[None]) ** 2).sum(axis=2)), atol=1e-6)


def test_latent_shapes_are_the_documented_ones(blobs, fitted):
    X = blobs[0][:100]
    dec, gan = fitted["dec"], fitted["clustergan"]
    assert dec.latent(X).shape == (100, dec.latent_dim)
    z = gan.latent(X)
    assert z.shape == (100, gan.latent_dim + gan.n_clusters) and np.isfinite(z).all()
    np.testing.assert_allclose(z[:, gan.latent_dim:].sum(axis=1), 1.0, atol=1e-5)  # the softmax of the one-hot logits
    assert dec.latent(X[:0]).shape == (0, dec.latent_dim)


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_repeats_exactly_and_leaves_torch_global_state_alone(blobs, method):
    X = blobs[0][:600]
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    first = METHODS[method](n_clusters=4, seed=3).fit(X)
    assert torch.equal(state, torch.get_rng_state()) and torch.get_num_threads() == threads
    second = METHODS[method](n_clusters=4, seed=3).fit(X)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    np.testing.assert_array_equal(first.latent(X), second.latent(X))
    assert first.info() == second.info()
    other = METHODS[method](n_clusters=4, seed=4).fit(X)  # another seed may differ, but is a valid segmentation
    labels = other.predict(X)
    assert labels.min() == 0 and labels.max() == other.n_clusters_ - 1


@pytest.mark.parametrize("method", list(METHODS))
def test_info_is_flat_with_epochs_losses_and_the_stopping_reason(fitted, method):
    info = fitted[method].info()
    for value in info.values():
        assert value is None or isinstance(value, (bool, int, float, str)) or all(isinstance(v, (int, float)) for v in value)
    assert info["method"] == method and info["n_clusters_found"] == 4 and info["epochs_run"] >= 1
    assert sum(info["cluster_sizes"]) == 2000
    if method == "dec":
        assert info["pretrain_stop"] in {"early_stopping", "max_epochs"} and info["stop_reason"] in {"tol", "max_epochs"}
        assert 1 <= info["pretrain_epochs_run"] <= info["pretrain_epochs"] and np.isfinite(info["final_kl"])
    else:
        assert info["stop_reason"] in {"stable", "max_epochs"} and info["generator_steps"] >= 1
        assert np.isfinite(info["final_critic_loss"]) and np.isfinite(info["final_zc_loss"])
    assert "n_clusters_found" not in METHODS[method]().info()  # unfitted: hyperparameters only


def test_an_empty_cluster_is_dropped_and_the_ids_stay_compact(blobs, fitted):
    X, truth, X_new, _ = blobs
    model = copy.deepcopy(fitted["dec"])
    with torch.no_grad():
        model.mu_[int(model.kept_[0])] = 1e6  # the largest segment's centre far away: its rows go elsewhere
    model._finish(X)
    labels = model.predict(X)
    assert model.n_clusters_ == 3 and set(np.unique(labels)) == {0, 1, 2}
    assert set(np.unique(model.predict(X_new))) <= {0, 1, 2} and model.transform(X_new).shape == (len(X_new), 3)
    assert adjusted_rand_score(truth, labels) < 0.9  # two blobs now share a segment


def test_bad_input_and_unfitted_use_raise():
    with pytest.raises(RuntimeError, match="not fitted"):
        DEC().predict(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        ClusterGAN().latent(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        DEC().fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="n_clusters"):
        ClusterGAN(n_clusters=5).fit(np.zeros((3, 2)))
