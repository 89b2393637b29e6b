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


def _autograd_inference(model, bags: TokenBags) -> np.ndarray:
    """The inference as torch's autograd and Adam do it: the reference the hand-written gradient must follow."""
    import torch

    W = torch.from_numpy(model.token_vectors.astype(np.float32))
    counts = np.zeros((len(bags), len(model.vocabulary)), dtype=np.float32)
    rows = np.repeat(np.arange(len(bags)), np.diff(bags.indptr))
    counts[rows, bags.tokens] = bags.counts
    C = torch.from_numpy(counts)
    total = C.sum(dim=1, keepdim=True)
    P = torch.from_numpy(model.negative_table.astype(np.float32))
    D = torch.zeros((len(bags), W.shape[1]), requires_grad=True)
    optimiser = torch.optim.Adam([D], lr=model.config.infer_learning_rate)
    for _ in range(model.config.infer_steps):
        optimiser.zero_grad()
        logits = D @ W.T
        positive = -(C * torch.nn.functional.logsigmoid(logits)).sum(dim=1) / total.clamp(min=1.0).squeeze(1)
        negative = -model.config.negatives * (P[None, :] * torch.nn.functional.logsigmoid(-logits)).sum(dim=1)
        (positive + negative).sum().backward()
        optimiser.step()
    out = D.detach().numpy()
    out[total.squeeze(1).numpy() == 0] = 0.0
    return out


def test_inference_follows_autograd_adam_and_a_row_does_not_depend_on_the_others(bank):
    bags, _ = bank
    model = train_customer2vec(bags, CONFIG, log=lambda _: None)
    rows = np.arange(300)
    ours = model.infer(_subset(bags, rows))
    np.testing.assert_allclose(ours, _autograd_inference(model, _subset(bags, rows)), rtol=1e-4, atol=1e-5)
    # scored with other rows, or in other chunks: the same vector up to the float rounding of the matrix products
    np.testing.assert_allclose(model.infer(_subset(bags, rows[::7])), ours[::7], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.infer(_subset(bags, rows), chunk=64), ours, rtol=1e-5, atol=1e-6)


def test_bags_travel_with_the_frame_in_process_and_as_json_everywhere_else(bank):
    from customer_intel.embeddings.frames import BAGS_ATTR, bags_from_frame, with_bags

    bags, _ = bank
    ids = list(bags.customer_ids[[5, 2, 9]]) + ["NEW"]  # another order, and a customer without a bag
    taken = bags.take(ids)
    assert taken.customer_ids.tolist() == ids and taken.sizes().tolist() == [*bags.sizes()[[5, 2, 9]].tolist(), 0]
    features = pd.DataFrame({"customer_id": ids, "recency": [1.0, 2.0, 3.0, 4.0], "as_of": pd.Timestamp("2026-01-01", tz="UTC")})
    kept, encoded = with_bags(features, bags, encode=False), with_bags(features, bags)
    assert "tokens" not in kept.columns and bags_from_frame(kept) is kept.attrs[BAGS_ATTR]
    encoded.attrs.clear()
    parsed = bags_from_frame(encoded)  # the JSON path
    vocabulary = bags.vocabulary
    for i in range(len(ids)):
        kept_bag = dict(zip((vocabulary[t] for t in taken.bag(i)[0]), taken.bag(i)[1].tolist()))
        assert kept_bag == dict(zip((parsed.vocabulary[t] for t in parsed.bag(i)[0]), parsed.bag(i)[1].tolist()))
    # rows reordered after with_bags: the kept bags no longer match, so they are not used
    assert bags_from_frame(kept.iloc[::-1].assign(tokens="{}")).sizes().tolist() == [0, 0, 0, 0]
