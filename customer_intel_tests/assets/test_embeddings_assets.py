"""Embeddings end to end: candidates tracked in MLflow, a gated champion with its FAISS index, daily vectors and the lookalike list."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_intel.embeddings.lookalike import AUDIENCE_COLUMNS
from customer_intel_tests.conftest import (
    SMALL_END_DATE,
    materialize_graph,
    mlflow_pointed_at,
    model_registry_at,
    published,
    step_failures,
    write_raw,
)

pytestmark = pytest.mark.e2e
TRAIN_CONFIG = {"ops": {"embeddings_models": {"config": {"include": ["rfm_behaviour", "customer2vec"], "dim": 16, "epochs": 3}}}}
SEEDS = ["C0000010", "C0000020", "C0000030"]
LOOKALIKE = {"ops": {"lookalike_audience": {"config": {"seed_ids": SEEDS, "k": 25}}}}


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    raw_dir = write_raw(small_frames, root / "raw", fmt="parquet")
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=("ingest", "embeddings"), run_config=TRAIN_CONFIG)
    assert result.success, step_failures(result)
    with mlflow_pointed_at(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"):
        yield result, raw_dir, root


def test_candidates_are_judged_on_next_period_categories_and_the_champion_carries_its_index(trained):
    result, _, root = trained
    table = pd.read_parquet(published(root / "warehouse" / "embeddings_models")).set_index("candidate")
    assert set(table.index) == {"random", "rfm_behaviour", "customer2vec"} and table["champion"].sum() == 1
    assert table.loc[table["champion"]].index[0] != "random"
    for column in ("next_category_accuracy", "popularity_accuracy", "lift_over_popularity", "test_next_category_accuracy"):
        assert table[column].between(0 if column != "lift_over_popularity" else -1, 1).all(), column
    frame = pd.read_parquet(published(root / "warehouse" / "embeddings_training_frame"))
    assert set(frame["split"]) == {"fit", "validation", "test", "refit"} and frame["tokens"].str.startswith("{").all()
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert "data:image/png;base64," in meta["embeddings_models"]["projection_by_rfm_segment"].value
    assert "neighbour" in meta["embeddings_models"]["neighbour_examples"].value
    runs = mlflow.search_runs(experiment_names=["customer_intel"], filter_string="tags.family = 'embeddings'")
    assert set(runs["tags.candidate"].dropna()) >= {"rfm_behaviour", "customer2vec"}
    version = MlflowClient().get_model_version_by_alias("customer_intel_embeddings", "champion")
    assert version.tags["candidate"] == table.loc[table["champion"]].index[0]
    scorer = model_registry_at(root / "mlflow").load_champion("embeddings").scorer
    index = scorer.index()  # the index travels with the model: a customer's nearest neighbour in the exact index is itself
    assert index.kind == "flat" and len(index.ids) == len(frame.loc[frame["split"] == "test"])
    vectors = np.vstack([index.index.reconstruct(i) for i in range(5)])
    _, found = index.search(vectors, 1)
    assert found[:, 0].tolist() == list(range(5))


def test_the_nightly_vectors_and_a_lookalike_list_that_excludes_its_seeds(trained):
    _, raw_dir, root = trained
    result = materialize_graph(raw_dir, root / "warehouse", groups=("ingest", "features", "scoring"), run_config=LOOKALIKE)
    assert result.success, step_failures(result)
    vectors = pd.read_parquet(published(root / "warehouse" / "customer_embeddings" / f"date={SMALL_END_DATE}"))
    assert list(vectors.columns) == ["customer_id", "embedding_vector", "embedding_tokens", "embedding_model"]
    with_tokens = vectors.loc[vectors["embedding_tokens"] > 0, "embedding_vector"]
    assert len(with_tokens) > 500 and np.allclose([np.linalg.norm(v) for v in with_tokens], 1.0, atol=1e-4)
    scored = pd.read_parquet(published(root / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert not [c for c in scored.columns if c.startswith("embedding_")]  # vectors stay in their own table
    audience = pd.read_parquet(root / "warehouse" / "lookalike_audience" / f"date={SMALL_END_DATE}")
    assert list(audience.columns) == list(AUDIENCE_COLUMNS) and len(audience) == 25
    assert not set(audience["customer_id"]) & set(SEEDS) and set(audience["closest_seed"]) <= set(SEEDS)
    assert audience["rank"].tolist() == list(range(1, 26)) and audience["similarity"].is_monotonic_decreasing
    assert audience["customer_id"].is_unique and (audience["seed_query"] == "3 listed customers").all()
