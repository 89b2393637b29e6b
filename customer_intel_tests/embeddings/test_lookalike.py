"""Lookalike audiences: k non-seed customers, each with its closest seed; seed queries that say what is wrong."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.embeddings.lookalike import LookalikeInputError, SeedQuery, lookalike_audience, seed_customers


def _two_groups(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    group = np.arange(n) % 2
    centres = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    vectors = (centres[group] + 0.2 * rng.normal(size=(n, 4))).astype(np.float32)
    return vectors, np.array([f"C{i:04d}" for i in range(n)]), group


def test_the_audience_has_k_non_seed_customers_most_like_their_closest_seed():
    vectors, ids, group = _two_groups()
    seeds = ["C0000", "C0002", "C0004"]  # group 0
    audience = lookalike_audience(vectors, ids, seeds, k=40)
    assert len(audience) == 40 and audience["customer_id"].is_unique and not set(audience["customer_id"]) & set(seeds)
    assert audience["rank"].tolist() == list(range(1, 41)) and audience["similarity"].is_monotonic_decreasing
    chosen = pd.Index(ids).get_indexer(audience["customer_id"])
    assert (group[chosen] == 0).mean() >= 0.95  # lookalikes of group-0 seeds are group 0
    # the closest seed really is the closest: recompute exactly
    X = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    seed_rows = pd.Index(ids).get_indexer(seeds)
    best = np.asarray(seeds)[np.argmax(X[chosen] @ X[seed_rows].T, axis=1)]
    assert (audience["closest_seed"].to_numpy() == best).all()
    assert np.allclose(audience["similarity"], np.max(X[chosen] @ X[seed_rows].T, axis=1), atol=1e-5)


def test_two_seed_personas_each_find_their_own_lookalikes():
    vectors, ids, group = _two_groups()
    audience = lookalike_audience(vectors, ids, ["C0000", "C0001"], k=100)
    chosen = pd.Index(ids).get_indexer(audience["customer_id"])
    closest = pd.Index(ids).get_indexer(audience["closest_seed"])
    assert (group[chosen] == group[closest]).mean() >= 0.95 and set(group[chosen]) == {0, 1}


def test_excluded_and_vectorless_customers_are_never_chosen_and_fewer_rows_when_few_qualify():
    vectors, ids, _ = _two_groups(20)
    vectors[5] = 0.0  # no purchase yet: no vector
    audience = lookalike_audience(vectors, ids, ["C0000"], k=50, exclude=["C0002", "C0004"])
    assert set(audience["customer_id"]).isdisjoint({"C0000", "C0002", "C0004", "C0005"}) and len(audience) == 16


def test_seeds_without_a_vector_or_a_bad_k_are_refused():
    vectors, ids, _ = _two_groups(20)
    with pytest.raises(LookalikeInputError, match="none of the 2 seeds has a vector today"):
        lookalike_audience(vectors, ids, ["X1", "X2"], k=5)
    with pytest.raises(LookalikeInputError, match="k must be at least 1"):
        lookalike_audience(vectors, ids, ["C0000"], k=0)


def test_seed_queries_campaign_best_responders_segment_top_cltv_and_ids():
    campaigns = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E"], "campaign_id": ["c1"] * 4 + ["c2"],
                              "treated": [1, 1, 0, 1, 1], "converted": [1, 1, 1, 0, 1], "revenue": [10.0, 50.0, 99.0, 0.0, 5.0]})
    assert seed_customers(SeedQuery(campaign="c1"), campaigns) == ["B", "A"]  # treated converters, by revenue; C was control
    assert seed_customers(SeedQuery(campaign="c1", seed_size=1), campaigns) == ["B"]
    scored = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "segment_name": ["vip", "vip", "vip", "new"], "cltv": [5.0, 9.0, 1.0, 50.0]})
    assert seed_customers(SeedQuery(segment="vip", seed_size=2), scored=scored) == ["B", "A"]
    assert seed_customers(SeedQuery(ids=("Z", "Y", "Z"))) == ["Z", "Y"]
    with pytest.raises(LookalikeInputError, match="seed campaign 'c9' is not in raw_campaigns \\(campaigns: c1, c2\\)"):
        seed_customers(SeedQuery(campaign="c9"), campaigns)
    with pytest.raises(LookalikeInputError, match="seed segment 'gold' is not among the day's segments \\(new, vip\\)"):
        seed_customers(SeedQuery(segment="gold"), scored=scored)
    with pytest.raises(LookalikeInputError, match="exactly one of campaign, segment or ids"):
        SeedQuery(campaign="c1", segment="vip")
    with pytest.raises(LookalikeInputError, match="no treated customer who converted"):
        seed_customers(SeedQuery(campaign="c1"), campaigns.assign(converted=0))
