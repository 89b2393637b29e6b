"""One test per bad-input rule: the run stops with a message naming file, column and rule, and
the broken table and everything the run materialises downstream of it keep the last good outputs
byte for byte. (Tables that do not depend on the broken one validate and refresh independently;
the nightly scores read no campaign, so a bad campaign file stops only its own ingestion.)"""

import shutil

import dagster as dg
import pandas as pd
import pytest

from customer_intel.definitions import defs
from customer_intel_tests.conftest import good_pipeline, materialize_graph, snapshot, step_failures

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def good_run(small_frames, tmp_path_factory):
    _, raw_dir, warehouse = good_pipeline(small_frames, tmp_path_factory.mktemp("good"), fmt="csv")
    return raw_dir, warehouse


def corrupt_and_run(good_run, tmp_path, table, corrupt, **source):
    raw_dir, warehouse = good_run
    bad_dir = tmp_path / "raw"
    shutil.copytree(raw_dir, bad_dir)
    path = bad_dir / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    corrupt(frame).to_csv(path, index=False)
    before = snapshot(warehouse)
    result = materialize_graph(bad_dir, warehouse, **source)
    assert not result.success
    failures = step_failures(result)
    assert list(failures) == [f"raw_{table}"], failures
    guarded = downstream_in_run(f"raw_{table}")
    assert_untouched(before, snapshot(warehouse), guarded)
    executed = {e.step_key.split("_check")[0] for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert not {step for step in executed if any(step.startswith(asset) for asset in guarded)}
    return failures[f"raw_{table}"], str(path), result


def downstream_in_run(asset: str, groups=("ingest", "features", "scoring")) -> set[str]:
    """The asset and what depends on it through assets the run materialises (the scoring job's groups by default):
    e.g. raw_campaigns feeds uplift training, which a scoring run does not run, so its scores do not wait on it."""
    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.groups(*groups).resolve(graph)
    found, todo = {dg.AssetKey(asset)}, [dg.AssetKey(asset)]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child in selected and child not in found:
                found.add(child)
                todo.append(child)
    return {key.to_user_string() for key in found}


def downstream_of(asset: str) -> set[str]:
    """The asset and everything that depends on it, from the real asset graph."""
    selection = dg.AssetSelection.assets(asset).downstream()
    return {key.to_user_string() for key in selection.resolve(defs.resolve_asset_graph())}


def assert_untouched(before: dict, after: dict, assets: set[str]) -> None:
    guarded = {path for path in before if path.split("/")[0] in assets}
    assert guarded, "the good run must have written the guarded assets"
    changed = {path for path in guarded if after.get(path) != before[path]}
    assert not changed, f"a failed run must leave the last good outputs untouched: {changed}"


def test_downstream_sets_follow_the_graph():
    assert downstream_of("raw_transactions") == {
        "raw_transactions", "raw_campaigns", "customer_features", "scored_customers",
        "cltv_training_frame", "cltv_models", "cltv_champion", "cltv_scores",
        "segmentation_training_frame", "segmentation_models", "segmentation_champion", "segment_assignments",
        "churn_training_frame", "churn_models", "churn_champion", "churn_scores",
        "uplift_training_frame", "uplift_models", "uplift_champion", "uplift_scores", "campaign_targets",
        "embeddings_training_frame", "embeddings_models", "embeddings_champion", "customer_embeddings", "lookalike_audience",
    }
    # the embeddings judge lookalikes on a past campaign, so their training reads it too
    assert downstream_of("raw_campaigns") == {"raw_campaigns", "uplift_training_frame", "uplift_models", "uplift_champion", "uplift_scores",
                                              "scored_customers", "campaign_targets", "lookalike_audience", "embeddings_training_frame",
                                              "embeddings_models", "embeddings_champion", "customer_embeddings"}
    # the nightly run reads campaigns only for the lookalike seeds: a bad campaign file fails its ingestion and the lookalike,
    # and the day's scores come from the registry
    assert downstream_in_run("raw_campaigns") == {"raw_campaigns", "lookalike_audience"}
    assert downstream_in_run("raw_transactions") == {"raw_transactions", "raw_campaigns", "customer_features", "cltv_scores",
                                                     "segment_assignments", "churn_scores", "uplift_scores", "scored_customers",
                                                     "campaign_targets", "customer_embeddings", "lookalike_audience"}


def assert_names(message, path, column, rule):
    assert f"file {path}, column '{column}', rule '{rule}'" in message, message
    assert "the last good outputs are untouched" in message


def set_value(row, column, value):
    def corrupt(frame):
        frame.loc[row, column] = value
        return frame

    return corrupt


def test_non_empty(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "transactions", lambda f: f.iloc[:0])
    assert_names(message, path, "(all)", "non_empty")


def test_required_columns(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "transactions", lambda f: f.drop(columns=["amount"]))
    assert_names(message, path, "amount", "required_columns")


def test_required_columns_through_a_wrong_mapping(good_run, tmp_path):
    message, path, _ = corrupt_and_run(
        good_run, tmp_path, "transactions", lambda f: f, transactions_columns={"amount": "Txn Amount"}
    )
    assert_names(message, path, "amount", "required_columns")
    assert "the column mapping points 'amount' at source column 'Txn Amount'" in message


def test_valid_types(good_run, tmp_path):
    message, path, result = corrupt_and_run(good_run, tmp_path, "transactions", set_value(10, "amount", "12,50"))
    assert_names(message, path, "amount", "valid_types")
    assert f"line 12 of {path}:" in message and "amount='12,50'" in message
    failed_checks = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed_checks == {"valid_types"}


def test_non_null_values(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "transactions", set_value(3, "customer_id", ""))
    assert_names(message, path, "customer_id", "non_null_values")


def test_finite_amounts(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "transactions", set_value(7, "amount", "inf"))
    assert_names(message, path, "amount", "finite_amounts")
    assert "amount='inf'" in message


def test_no_duplicate_rows(good_run, tmp_path):
    message, path, _ = corrupt_and_run(
        good_run, tmp_path, "transactions", lambda f: pd.concat([f, f.iloc[[5, 6]]], ignore_index=True)
    )
    assert_names(message, path, "(all)", "no_duplicate_rows")
    assert "2 of" in message


def test_no_future_timestamps(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "transactions", set_value(0, "ts", "2099-01-01T00:00:00Z"))
    assert_names(message, path, "ts", "no_future_timestamps")
    assert "ts='2099-01-01T00:00:00Z'" in message


def test_unique_customer_ids(good_run, tmp_path):
    message, path, _ = corrupt_and_run(
        good_run, tmp_path, "customers", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True)
    )
    assert_names(message, path, "customer_id", "unique_customer_ids")


def test_known_customer_ids(good_run, tmp_path):
    message, path, _ = corrupt_and_run(good_run, tmp_path, "campaigns", set_value(2, "customer_id", "C9999999"))
    assert_names(message, path, "customer_id", "known_customer_ids")
    assert "customer_id='C9999999'" in message


def test_missing_configured_file_is_a_clear_error(good_run, tmp_path):
    raw_dir, warehouse = good_run
    before = snapshot(warehouse)
    result = materialize_graph(raw_dir, warehouse, customers_path=str(tmp_path / "customers_export.csv"))
    assert not result.success
    assert_untouched(before, snapshot(warehouse), downstream_of("raw_customers"))
    message = step_failures(result)["raw_customers"]
    assert f"{tmp_path / 'customers_export.csv'}: no such file or folder" in message


def test_a_table_ingested_before_and_missing_now_fails_before_anything_is_overwritten(good_run, tmp_path):
    raw_dir, warehouse = good_run
    bad_dir = tmp_path / "raw"
    shutil.copytree(raw_dir, bad_dir)
    (bad_dir / "transactions.csv").unlink()  # the export job failed upstream: no file today
    before = snapshot(warehouse)
    result = materialize_graph(bad_dir, warehouse)
    assert not result.success
    failures = step_failures(result)
    assert list(failures) == ["raw_transactions"], failures
    message = failures["raw_transactions"]
    assert "transactions was ingested before" in message and f"is not found now under {bad_dir}" in message, message
    assert "CUSTOMER_INTEL_TRANSACTIONS_PATH=none" in message and "the last good outputs are untouched" in message
    # without the refusal, profile mode would have overwritten the day's scored partition
    assert_untouched(before, snapshot(warehouse), downstream_of("raw_transactions"))
