"""Embedding evaluations: label recall of neighbours, and next-period top category from neighbours vs popularity."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.embeddings.evaluate import neighbour_label_recall, next_top_category_accuracy, top_category_between


def test_separated_groups_recall_their_label_and_predict_their_next_category():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    centres = {"a": [5, 0, 0], "b": [0, 5, 0], "c": [0, 0, 5]}
    vectors = np.array([centres[label] for label in labels], dtype=float) + rng.normal(scale=0.3, size=(120, 3))
    assert neighbour_label_recall(vectors, labels, k=5) == 1.0
    assert neighbour_label_recall(rng.normal(size=(120, 3)), labels, k=5) < 0.6
    ids = [f"C{i}" for i in range(120)]
    nxt = pd.Series({"a": "travel", "b": "grocery", "c": "fuel"}).reindex(labels).set_axis(ids)
    nxt.iloc[80:] = "grocery"  # group c buys groceries next: popularity says grocery for everyone
    result = next_top_category_accuracy(vectors, ids, nxt, k=5)
    assert result == {"neighbours": 1.0, "popularity": pytest.approx(80 / 120), "customers": 120}


def test_top_category_after_the_as_of_day_only():
    tx = pd.DataFrame({"customer_id": ["A", "A", "A", "B", "B"],
                       "ts": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-04", "2026-01-03", "2026-01-09"], utc=True),
                       "amount": [5.0, 5.0, 5.0, 9.0, 1.0], "category": ["fuel", "travel", "travel", "dining", "fuel"]})
    top = top_category_between(tx, "2026-01-01", "2026-01-05")  # (1 Jan, 5 Jan]: A's fuel on the 1st is before it, B's 9th after
    assert top.to_dict() == {"A": "travel", "B": "dining"}
