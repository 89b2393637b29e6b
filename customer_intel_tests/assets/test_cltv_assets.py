"""CLTV end to end: candidates tracked in MLflow, a gated champion, scoring by alias."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_intel.features import build_customer_features
from customer_intel.modeling import TimeSplit
from customer_intel_tests.conftest import (
    SMALL_END_DATE,
    materialize_graph,
    model_registry_at,
    published,
    step_failures,
    trained_family,
)

pytestmark = pytest.mark.e2e
TRAIN = ("ingest", "cltv")


@pytest.fixture(scope="module")
def trained(small_frames, tmp_path_factory):
    with trained_family(small_frames, tmp_path_factory.mktemp("cltv"), "cltv") as trained_run:
        yield trained_run


def test_every_candidate_has_an_mlflow_run_with_metrics_and_a_model(trained):
    _, _, root = trained
    runs = mlflow.search_runs(experiment_names=["customer_intel"])
    refits = runs[runs["tags.mlflow.runName"].str.endswith("_production_refit")]
    candidates = runs[runs["tags.candidate"].notna()].drop(index=refits.index)
    assert set(candidates["tags.candidate"]) == {
        "baseline_zero", "baseline_rate", "bgnbd", "mbgnbd", "hist_gradient_boosting",
        "extra_trees", "xgboost", "lightgbm", "ngboost", "ridge", "lasso", "ensemble",
    }
    assert candidates["metrics.fit_seconds"].notna().all()
    # chosen on validation, reported on test: both sets of metrics on every candidate's run
    assert candidates["metrics.poisson_deviance"].notna().all() and candidates["metrics.test_poisson_deviance"].notna().all()
    # their params and models are the fits at the test origin (the cutoff), and the run says so
    assert set(candidates["tags.params_origin"]) == {"test"} and set(candidates["tags.params_cutoff"]) == {"2026-04-01"}
    ensemble = candidates[candidates["tags.candidate"] == "ensemble"].iloc[0]
    weights = {k.removeprefix("params.weight_"): float(v) for k, v in ensemble.items() if str(k).startswith("params.weight_") and v == v}
    assert weights and all(w > 0 for w in weights.values())
    assert len(refits) == 1  # the champion's recipe refitted on all the data
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
    frame = {k: v.value for k, v in meta["cltv_training_frame"].items()}
    assert frame["test_as_of"] == "2026-04-01"  # the cutoff: last day 2026-06-30 minus 90 days
    assert (frame["validation_as_of"], frame["fit_as_of"], frame["refit_as_of"]) == ("2026-01-01", "2025-10-03", "2026-06-30")
    assert "(every choice is made here)" in meta["cltv_models"]["windows"].value and "(only reports)" in meta["cltv_models"]["windows"].value


def test_a_worse_candidate_does_not_move_the_alias(trained):
    _, raw_dir, root = trained
    worse = {"ops": {"cltv_models": {"config": {"regressors": ["ridge"], "candidates": ["ridge"]}}}}
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN, run_config=worse)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["cltv_champion_not_worse"]
    assert not gate.passed and "is worse than the recipe of champion v1" in gate.description
    assert gate.description.endswith("both refitted on this run's data and judged on its validation window")
    materialized = {m.materialization.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "cltv_models" in materialized and "cltv_champion" not in materialized
    assert int(MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion").version) == 1
    # the refusal is on this run's model card, with the numbers the gate compared
    card = gate.metadata["model_card"].value
    assert "The blocking check `cltv_champion_not_worse` **refused**: nothing is registered" in card and gate.description in card
    assert "| limit " in card and f"{gate.metadata['limit'].value:.4g}" in card
    parent = pd.read_parquet(published(root / "warehouse" / "cltv_models"))["mlflow_parent_run_id"].iloc[0]
    assert mlflow.artifacts.load_text(f"runs:/{parent}/model_card.md") == card


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
    # the published interval contains the published point, whichever candidate is champion (no slack)
    assert (scored["cltv_purchases_low"] <= scored["cltv_expected_purchases"]).all()
    assert (scored["cltv_expected_purchases"] <= scored["cltv_purchases_high"]).all()
    assert scored["cltv"].ge(0).all() and scored["cltv_horizon_days"].eq(90).all()
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not steps & {"cltv_models", "cltv_training_frame"}  # scoring never retrains


def test_registered_models_carry_signature_input_example_and_lineage(trained, small_frames):
    _, _, root = trained
    version = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    # the registered model is the champion's recipe refitted on all the data, with lineage to the run that evaluated it
    assert version.tags["scorer_cutoff"] == "2026-06-30" and version.tags["scorer_horizon_days"] == "90"
    refit_run = MlflowClient().get_run(version.run_id)
    evaluated = MlflowClient().get_run(version.tags["evaluated_run_id"])
    assert refit_run.data.tags["refit_of_run"] == evaluated.info.run_id and refit_run.info.run_name.endswith("_production_refit")
    assert evaluated.data.tags["candidate"] == version.tags["candidate"] == refit_run.data.tags["candidate"]
    assert refit_run.data.metrics["expected_poisson_deviance"] == pytest.approx(evaluated.data.metrics["test_poisson_deviance"])
    assert version.tags["refit_policy"].startswith("refit on all data") and "refit on all data" in version.description
    info = mlflow.models.get_model_info(f"models:/customer_intel_cltv/{version.version}")
    inputs = {c.name for c in info.signature.inputs.inputs}
    assert {"frequency", "t_x", "T", "monetary_value"} <= inputs and not inputs & {"holdout_purchases", "holdout_spend"}
    assert [c.name for c in info.signature.outputs.inputs][:2] == ["p_alive", "expected_purchases"]
    assert info.saved_input_example_info is not None
    # through MLflow's own schema check, on the feature builder's output (UTC as_of and all), as a serving client would
    features = build_customer_features(small_frames["transactions"], small_frames["customers"], SMALL_END_DATE).frame
    model = mlflow.pyfunc.load_model(f"models:/customer_intel_cltv/{version.version}")
    served = model.predict(features)
    # the example logged beside the model names no real customer
    example = model.input_example
    assert list(example["customer_id"]) == [f"example-{i}" for i in range(1, len(example) + 1)] and len(example) >= 1
    pd.testing.assert_frame_equal(served.reset_index(drop=True), model.unwrap_python_model().scorer.score(features).reset_index(drop=True))
    manifest = json.loads((root / "warehouse" / "cltv_training_frame" / "_SUCCESS").read_text())
    assert refit_run.data.tags["training_frame_sha256"] == manifest["sha256"]
    assert model_registry_at(root / "mlflow").champion_training_frame_sha256("cltv") == manifest["sha256"]  # what the drift sensor asks
    assert refit_run.data.tags["git_commit"].startswith(("git:", "customer_intel=="))
    split = json.loads(refit_run.data.tags["split"])
    assert split["cutoff"] == "2026-01-01" and split["parts"]["test"]["rows"] == 600 and split["parts"]["test"]["as_of"] == "2026-04-01"
    ridge = mlflow.search_runs(experiment_names=["customer_intel"], filter_string="tags.candidate = 'ridge'").iloc[0]
    assert ridge["params.estimator.ridge__alpha"] == "1.0" and ridge["params.training_window_days"] == "90"
    assert ridge["params.horizon_scaling"] == "bgnbd_ratio" and float(ridge["params.conformal_q_high"]) > 0


def test_the_gate_compares_recipes_refitted_on_this_runs_data(trained):
    """With a production refit the registered model has seen every window of a new run: the gate compares
    the incumbent's recipe, refitted on this run's data, with the new champion on this run's validation window."""
    _, raw_dir, root = trained
    incumbent = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    shorter = {"ops": {"cltv_training_frame": {"config": {"horizon_days": 30}},
                       "cltv_models": {"config": {"regressors": ["ridge"]}}}}
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN, run_config=shorter)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["cltv_champion_not_worse"]
    meta = {k: v.value for k, v in gate.metadata.items()}
    assert meta["compared"].startswith("recipes") and meta["current_candidate"] == incumbent.tags["candidate"]
    assert meta["horizon_days"] == 30 and meta["current_version"] == int(incumbent.version)
    table = pd.read_parquet(published(root / "warehouse" / "cltv_models")).set_index("candidate")
    assert meta["current_poisson_deviance"] == pytest.approx(table.loc[incumbent.tags["candidate"], "poisson_deviance"], rel=1e-12)
    assert gate.passed, gate.description
    promoted = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    assert int(promoted.version) == int(incumbent.version) + 1
    assert promoted.tags["scorer_horizon_days"] == "30" and promoted.tags["scorer_cutoff"] == "2026-06-30"
    split = TimeSplit.from_frame(pd.read_parquet(published(root / "warehouse" / "cltv_training_frame")))
    assert split.horizon_of("test") == 30 and str(split.cutoff_of("test").date()) == "2026-05-31"


def test_the_gate_blocks_when_the_incumbents_recipe_is_not_in_this_run(trained):
    """The registered refit has seen every window of a new run, so only its recipe can be compared; a run
    that leaves that recipe out cannot judge the new champion and says how to fix it."""
    _, raw_dir, root = trained
    incumbent = MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion")
    other = "mbgnbd" if incumbent.tags["candidate"] == "bgnbd" else "bgnbd"  # one model: no ensemble, no regressors
    without = {"ops": {"cltv_models": {"config": {"include_ml": False, "transaction_models": [other]}}}}
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=TRAIN, run_config=without)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["cltv_champion_not_worse"]
    assert not gate.passed
    assert gate.description.startswith(f"the recipe of champion v{incumbent.version} ({incumbent.tags['candidate']}) is not among "
                                       f"this run's candidates, so the new champion {other} cannot be compared")
    assert f"Add {incumbent.tags['candidate']} to this run's candidates" in gate.description
    assert gate.metadata["compared"].value == "nothing: the incumbent's recipe is missing"
    assert MlflowClient().get_model_version_by_alias("customer_intel_cltv", "champion").version == incumbent.version
