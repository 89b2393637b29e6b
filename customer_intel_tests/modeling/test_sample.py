"""The stable customer sample the training frames may be built on."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_intel.engine import ParquetFile
from customer_intel.modeling.sample import sample_customers


def _tables(n: int = 500):
    rng = np.random.default_rng(0)
    ids = [f"C{i:05d}" for i in range(n)]
    transactions = pd.DataFrame({"customer_id": rng.choice(ids, 5 * n), "amount": rng.gamma(2.0, 10.0, 5 * n)})
    customers = pd.DataFrame({"customer_id": ids, "limit": rng.integers(1, 100, n)})
    campaigns = pd.DataFrame({"customer_id": ids[: n // 2], "treated": rng.integers(0, 2, n // 2)})
    return transactions, customers, campaigns


def test_every_table_keeps_the_same_customers_and_its_row_order(tmp_path):
    transactions, customers, campaigns = _tables()
    path = tmp_path / "transactions.parquet"
    pq.write_table(pa.Table.from_pandas(transactions, preserve_index=False), path)
    out = sample_customers({"tx": ParquetFile(str(path)), "customers": customers, "campaigns": campaigns, "absent": None}, 100)
    assert out["absent"] is None
    assert out["customers"]["customer_id"].nunique() == 100 == len(out["customers"])
    chosen = set(out["customers"]["customer_id"])
    assert set(out["tx"]["customer_id"]) <= chosen and set(out["campaigns"]["customer_id"]) <= chosen
    # every row of a chosen customer is kept, in the table's own order
    expected = transactions.loc[transactions["customer_id"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(out["tx"], expected)
    assert len(out["campaigns"]) == campaigns["customer_id"].isin(chosen).sum() > 0


def test_the_sample_is_deterministic_seeded_and_stable_as_the_bank_grows():
    transactions, customers, campaigns = _tables()
    first = set(sample_customers({"c": customers}, 50)["c"]["customer_id"])
    assert first == set(sample_customers({"c": customers.sample(frac=1.0, random_state=1)}, 50)["c"]["customer_id"])
    assert first != set(sample_customers({"c": customers}, 50, seed=1)["c"]["customer_id"])
    # 10% more customers: most of the sample stays (a new one enters only by displacing the largest key)
    grown = pd.concat([customers, pd.DataFrame({"customer_id": [f"N{i}" for i in range(50)], "limit": 1})], ignore_index=True)
    assert len(first & set(sample_customers({"c": grown}, 50)["c"]["customer_id"])) >= 40


def test_no_sample_or_a_sample_larger_than_the_bank_returns_every_row():
    transactions, customers, _ = _tables(50)
    for size in (None, 50, 1000):
        out = sample_customers({"tx": transactions, "c": customers}, size)
        pd.testing.assert_frame_equal(out["tx"], transactions)
    with pytest.raises(ValueError, match="positive number of customers"):
        sample_customers({"c": customers}, 0)
