"""Customer2Vec: token bags as of a date, seeded training, and inference for customers it never saw."""

import faiss
import numpy as np
import pandas as pd
import pytest

from customer_intel.embeddings.customer2vec import Customer2VecConfig, train_customer2vec
from customer_intel.embeddings.tokens import TokenBags, token_bags
from customer_intel.synthetic import generate_bank


def test_token_bags_count_each_purchase_and_see_nothing_after_the_as_of_day():
    tx = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "A"],
        "ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-04 09:00", "2026-01-04 18:00", "2026-01-02 00:00", "2026-01-09 00:00"], utc=True),
        "amount": [12.0, 70.0, -5.0, 600.0, 20.0],  # A's refund is not a purchase; A's 9 January is after the as-of day
        "category": ["grocery", "travel", "travel", "fuel", "grocery"],
        "channel": ["online", "in_store", "in_store", "atm", "online"],
    })
    bags = token_bags(tx, "2026-01-05")
    assert bags.customer_ids.tolist() == ["A", "B"]
    a = dict(zip((bags.vocabulary[t] for t in bags.bag(0)[0]), bags.bag(0)[1]))
    assert a == {"cat=grocery": 1, "cat=travel": 1, "ch=online": 1, "ch=in_store": 1, "cat_ch=grocery|online": 1,
                 "cat_ch=travel|in_store": 1, "amt=1": 1, "amt=4": 1, "gap=2": 1}  # 12 in [5, 15), 70 in [60, 120); 3 days in [3, 7)
    b = dict(zip((bags.vocabulary[t] for t in bags.bag(1)[0]), bags.bag(1)[1]))
    assert b == {"cat=fuel": 1, "ch=atm": 1, "cat_ch=fuel|atm": 1, "amt=7": 1}
    restricted = bags.restricted(("amt=1", "cat=fuel"))
    assert restricted.bag(0)[0].tolist() == [0] and restricted.bag(1)[0].tolist() == [1]


@pytest.fixture(scope="module")
def bank():
    frames = generate_bank(n_customers=2500, seed=3).frames()
    bags = token_bags(frames["transactions"], frames["transactions"]["ts"].max())
    persona = frames["truth"].set_index("customer_id")["persona"].reindex(bags.customer_ids).to_numpy()
    return bags, persona


def _subset(bags: TokenBags, rows: np.ndarray) -> TokenBags:
    pieces = [bags.bag(i) for i in rows]
    lengths = [len(t) for t, _ in pieces]
    return TokenBags(bags.customer_ids[rows], np.r_[0, np.cumsum(lengths)].astype(np.int64),
                     np.concatenate([t for t, _ in pieces]), np.concatenate([c for _, c in pieces]), bags.vocabulary, bags.as_of)


CONFIG = Customer2VecConfig(dim=16, epochs=4, learning_rate=0.01, seed=5)


def test_training_is_deterministic_per_seed(bank):
    bags, _ = bank
    one, two = train_customer2vec(bags, CONFIG, log=lambda _: None), train_customer2vec(bags, CONFIG, log=lambda _: None)
    np.testing.assert_array_equal(one.vectors, two.vectors)
    other = train_customer2vec(bags, Customer2VecConfig(**{**CONFIG.__dict__, "seed": 6}), log=lambda _: None)
    assert not np.allclose(one.vectors, other.vectors)


def test_an_unseen_customer_is_inferred_near_the_training_customers_like_it(bank):
    bags, persona = bank
    rng = np.random.default_rng(0)
    unseen = rng.choice(len(bags), 200, replace=False)
    seen = np.setdiff1d(np.arange(len(bags)), unseen)
    model = train_customer2vec(_subset(bags, seen), CONFIG, log=lambda _: None)
    inferred = model.infer(_subset(bags, unseen))
    np.testing.assert_array_equal(inferred, model.infer(_subset(bags, unseen)))  # deterministic
    train = np.ascontiguousarray(model.vectors.copy())
    faiss.normalize_L2(train)
    query = np.ascontiguousarray(inferred.copy())
    faiss.normalize_L2(query)
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(train)
    _, neighbours = index.search(query, 10)
    same = (persona[seen][neighbours] == persona[unseen][:, None]).mean()
    base = pd.Series(persona).value_counts(normalize=True).pow(2).sum()  # a random neighbour's chance of the same persona
    assert same > base + 0.25, (same, base)
