"""Segmentation end to end: seven candidates tracked in MLflow, a gated champion, daily assignments by alias."""

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_intel_tests.conftest import (
    SMALL_END_DATE,
    materialize_graph,
    published,
    step_failures,
    trained_family,
)

pytestmark = pytest.mark.e2e
METHODS = {"kmeans", "gmm", "som", "spectral", "hdbscan", "dec", "clustergan"}


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    with trained_family(small_frames, tmp_path_factory.mktemp("segmentation"), "segmentation") as trained_run:
        yield trained_run


def test_every_method_is_compared_in_one_input_space_and_tracked(trained):
    result, _, root = trained
    table = pd.read_parquet(published(root / "warehouse" / "segmentation_models")).set_index("candidate")
    assert set(table.index) == METHODS
    assert table.loc[table["champion"]].index[0] in METHODS and table["champion"].sum() == 1
    assert table[["silhouette", "calinski_harabasz", "davies_bouldin", "stability", "fit_seconds"]].notna().all().all()
    assert table.loc[["dec", "clustergan"], "latent_silhouette"].notna().all() and table.loc["kmeans", "latent_silhouette"] != table.loc["kmeans", "latent_silhouette"]
    champion = table.loc[table["champion"]].iloc[0]
    assert champion["stability"] >= 0.8 and champion["smallest_share"] >= 0.03 and 3 <= champion["n_segments"] <= 8
    runs = mlflow.search_runs(experiment_names=["customer_intel"], filter_string="tags.family = 'segmentation'")
    assert set(runs["tags.candidate"].dropna()) == METHODS
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    models = {k: v.value for k, v in meta["segmentation_models"].items()}
    assert models["segment_radars"].count("data:image/png;base64,") == int(champion["n_segments"])
    profiles = [line.split("|") for line in models["segment_profiles"].splitlines()]
    header = [cell.strip() for cell in profiles[0]]
    shares = [float(row[header.index("revenue_share")]) for row in profiles[2:]]
    assert len(shares) == int(champion["n_segments"]) and sum(shares) == pytest.approx(1.0, abs=0.005)  # 3 digits each
    assert "k_selection" in models and "data:image/png;base64," in models["k_selection"]
    assert "as of 2026-06-30" in models["windows"] and "behaviour features" in runs["params.input_space"].dropna().iloc[0]
    version = MlflowClient().get_model_version_by_alias("customer_intel_segmentation", "champion")
    assert version.tags["candidate"] == champion.name


def test_the_nightly_scores_carry_named_segments_with_distances(trained, small_frames):
    _, raw_dir, root = trained
    result = materialize_graph(raw_dir, root / "warehouse", groups=("ingest", "features", "scoring"))
    assert result.success, step_failures(result)
    scored = pd.read_parquet(published(root / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert {"segment_id", "segment_name", "segment_distance", "segment_outlier", "segment_model"} <= set(scored.columns)
    assert scored["segment_id"].notna().all() and (scored["segment_distance"] >= 0).all()
    names = scored.groupby("segment_id")["segment_name"].nunique()
    assert (names == 1).all() and scored["segment_name"].nunique() == len(names)  # one unique name per segment
    assert scored["segment_outlier"].mean() < 0.1
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    segments = meta["scored_customers"]["model_segments"].value
    assert "mean_cltv" in segments and "revenue_share" in segments
    share = scored.groupby("segment_name").size() / len(scored)
    assert all(f"{name} " in segments for name in share.index)
