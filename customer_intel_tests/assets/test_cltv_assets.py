"""CLTV end to end: candidates tracked in MLflow, a gated champion, scoring by alias."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_intel.cltv.evaluation import poisson_deviance
from customer_intel.features import build_customer_features
from customer_intel.modeling import TimeSplit
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
TRAIN = ("ingest", "cltv")


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    root = tmp_path_factory.mktemp("cltv")
    raw_dir = write_raw(small_frames, root / "raw", fmt="parquet")
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN)
    assert result.success, step_failures(result)
    with mlflow_pointed_at(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"):
        yield result, raw_dir, root


def test_every_candidate_has_an_mlflow_run_with_metrics_and_a_model(trained):
    _, _, root = trained
    runs = mlflow.search_runs(experiment_names=["customer_intel"])
    candidates = runs[runs["tags.candidate"].notna()]
    assert set(candidates["tags.candidate"]) == {
        "baseline_zero", "baseline_rate", "bgnbd", "pareto_nbd", "mbgnbd", "hist_gradient_boosting",
        "extra_trees", "xgboost", "lightgbm", "ngboost", "ridge", "lasso",
    }
    assert candidates["metrics.fit_seconds"].notna().all()
    # a candidate without predictions for some customers (lifetimes' Pareto/NBD overflows for heavy
    # buyers) has no metrics, says how many it missed, and cannot be champion
    complete = candidates["metrics.customers_without_prediction"] == 0
    assert candidates.loc[complete, "metrics.rmse"].notna().all()
    assert candidates.loc[~complete, "tags.candidate"].isin(["pareto_nbd"]).all()
    assert candidates["tags.dagster_run_id"].nunique() == 1
    parent = runs[runs["tags.mlflow.runName"] == "cltv_models"].iloc[0]
    artifacts = {a.path for a in MlflowClient().list_artifacts(parent["run_id"])}
    assert {"comparison.md", "calibration.md"} <= artifacts
    bgnbd = candidates[candidates["tags.candidate"] == "bgnbd"].iloc[0]
    assert float(bgnbd["params.param_r"]) > 0


def test_champion_is_registered_with_alias_and_metadata_links_mlflow(trained):
    result, _, _ = trained
    version = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    assert int(version.version) == 1
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert meta["cltv_models"]["champion"].value == version.tags["candidate"]
    assert "mlflow ui --backend-store-uri sqlite:///" in meta["cltv_models"]["mlflow_run"].value
    assert "| bgnbd" in meta["cltv_models"]["comparison"].value
    assert meta["cltv_models"]["calibration"].value.startswith("![holdout calibration](data:image/png;base64,")
    assert meta["cltv_champion"]["version"].value == 1
    assert meta["cltv_training_frame"]["cutoff"].value == "2026-04-01"  # last day 2026-06-30 minus 90 days


def test_a_worse_candidate_does_not_move_the_alias(trained):
    _, raw_dir, root = trained
    worse = {"ops": {"cltv_models": {"config": {"regressors": ["ridge"], "candidates": ["ridge"]}}}}
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN, run_config=worse)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["cltv_champion_not_worse"]
    assert not gate.passed and "is worse than champion v1" in gate.description
    materialized = {m.materialization.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "cltv_models" in materialized and "cltv_champion" not in materialized
    assert int(MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion").version) == 1


def test_an_unknown_regressor_is_a_clear_failure(trained):
    _, raw_dir, root = trained
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN,
                               run_config={"ops": {"cltv_models": {"config": {"regressors": ["xgbost"]}}}})
    assert step_failures(result)["cltv_models"].startswith("cltv_models: unknown regressors ['xgbost']; choose from ['extra_trees',")


def test_scoring_loads_the_champion_by_alias(trained):
    _, raw_dir, root = trained
    result = materialize_graph(raw_dir, root / "warehouse")
    assert result.success, step_failures(result)
    scored = pd.read_parquet(published(root / "warehouse" / "scored_customers" / f"date={SMALL_END_DATE}"))
    assert scored["cltv_model"].str.startswith("customer_intel_cltv v1").all()
    assert scored["cltv_p_alive"].between(0, 1).all()
    assert (scored["cltv_purchases_low"] <= scored["cltv_expected_purchases"] + 1).all()
    assert (scored["cltv_purchases_high"] >= scored["cltv_purchases_low"]).all()
    assert scored["cltv"].ge(0).all() and scored["cltv_horizon_days"].eq(90).all()
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not steps & {"cltv_models", "cltv_training_frame"}  # scoring never retrains


def test_registered_models_carry_signature_input_example_and_lineage(trained, small_frames):
    _, _, root = trained
    version = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    assert version.tags["scorer_cutoff"] == "2026-04-01" and version.tags["scorer_horizon_days"] == "90"
    info = mlflow.models.get_model_info(f"models:/customer_intel_cltv/{version.version}")
    inputs = {c.name for c in info.signature.inputs.inputs}
    assert {"frequency", "t_x", "T", "monetary_value"} <= inputs and not inputs & {"holdout_purchases", "holdout_spend"}
    assert [c.name for c in info.signature.outputs.inputs][:2] == ["p_alive", "expected_purchases"]
    assert info.saved_input_example_info is not None
    # through MLflow's own schema check, on the feature builder's output (UTC as_of and all), as a serving client would
    features = build_customer_features(small_frames["transactions"], small_frames["customers"], SMALL_END_DATE).frame
    model = mlflow.pyfunc.load_model(f"models:/customer_intel_cltv/{version.version}")
    served = model.predict(features)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), model.unwrap_python_model().scorer.score(features).reset_index(drop=True))
    run = MlflowClient().get_run(version.run_id)
    manifest = json.loads((root / "warehouse" / "cltv_training_frame" / "_SUCCESS").read_text())
    assert run.data.tags["training_frame_sha256"] == manifest["sha256"]
    assert model_registry_at(root / "mlflow").champion_training_frame_sha256("cltv") == manifest["sha256"]  # what the drift sensor asks
    assert run.data.tags["git_commit"].startswith(("git:", "customer_intel=="))
    split = json.loads(run.data.tags["split"])
    assert split["cutoff"] == "2026-04-01" and split["parts"]["validation"]["rows"] == 600
    ridge = mlflow.search_runs(experiment_names=["customer_intel"], filter_string="tags.candidate = 'ridge'").iloc[0]
    assert ridge["params.estimator.ridge__alpha"] == "1.0" and ridge["params.training_window_days"] == "90"


def test_the_gate_scores_the_incumbent_on_this_runs_horizon(trained):
    """A 30-day run is judged against the 90-day champion forecasting 30 days, not its own 90."""
    _, raw_dir, root = trained
    incumbent = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    shorter = {"ops": {"cltv_training_frame": {"config": {"horizon_days": 30}},
                       "cltv_models": {"config": {"regressors": ["ridge"]}}}}
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN, run_config=shorter)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["cltv_champion_not_worse"]
    meta = {k: v.value for k, v in gate.metadata.items()}
    assert meta["horizon_days"] == 30 and meta["current_horizon_days"] == 90
    assert meta["current_version"] == int(incumbent.version) and meta["cutoff"] == "2026-05-31"
    split = TimeSplit.from_frame(pd.read_parquet(published(root / "warehouse" / "cltv_training_frame")))
    scorer = mlflow.pyfunc.load_model(f"models:/customer_intel_cltv/{incumbent.version}").unwrap_python_model().scorer
    actual = split.validation["holdout_purchases"]
    at_30 = poisson_deviance(actual, scorer.at_horizon(30).score(split.validation)["expected_purchases"])
    at_90 = poisson_deviance(actual, scorer.score(split.validation)["expected_purchases"])
    assert meta["current_poisson_deviance"] == pytest.approx(at_30, rel=1e-9)
    assert at_90 > 1.5 * at_30  # what the gate compared before: a 90-day forecast against 30-day actuals
    # the new 30-day champion (fitted up to 2026-05-31) is within the tolerance: it replaces v1, and says what it forecasts
    assert gate.passed and gate.description.endswith(f"is within the tolerance of champion v{incumbent.version} "
                                                     f"({meta['current_poisson_deviance']:.4f}; limit {meta['limit']:.4f})")
    promoted = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    assert int(promoted.version) == int(incumbent.version) + 1
    assert promoted.tags["scorer_horizon_days"] == "30" and promoted.tags["scorer_cutoff"] == "2026-05-31"
