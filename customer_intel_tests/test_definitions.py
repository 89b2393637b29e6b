import dagster as dg

from customer_intel.definitions import defs


def test_definitions_load_with_every_asset_documented_grouped_and_kinded():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_transactions", "raw_customers", "raw_campaigns", "customer_features", "scored_customers",
                    "cltv_training_frame", "cltv_models", "cltv_champion"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.group_name in {"ingest", "features", "scoring", "cltv"}, key
        assert node.kinds, key


def test_scoring_job_covers_the_graph_and_is_daily_partitioned():
    job = defs.resolve_job_def("scoring_job")
    assert isinstance(job.partitions_def, dg.DailyPartitionsDefinition)
    assert job.partitions_def.timezone == "UTC"
    assert {n.name for n in job.graph.node_defs} >= {"raw_transactions", "customer_features", "scored_customers"}


def test_checks_are_blocking_and_partitioned_like_their_asset():
    graph = defs.resolve_asset_graph()
    scored = dg.AssetKey("scored_customers")
    specs = {(key.asset_key.to_user_string(), key.name): graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert all(spec.blocking for spec in specs.values())
    assert specs[("scored_customers", "one_row_per_customer")].partitions_def == graph.get(scored).partitions_def
    assert specs[("scored_customers", "valid_rfm_scores")].partitions_def == graph.get(scored).partitions_def
    raw_checks = {name for asset, name in specs if asset == "raw_transactions"}
    assert raw_checks == {
        "non_empty", "required_columns", "valid_types", "non_null_values",
        "finite_amounts", "no_duplicate_rows", "no_future_timestamps",
    }


def test_training_job_is_unpartitioned_and_gated():
    job = defs.resolve_job_def("training_job")
    assert job.partitions_def is None
    assert {n.name for n in job.graph.node_defs} >= {"raw_transactions", "cltv_training_frame", "cltv_models", "cltv_champion"}
    graph = defs.resolve_asset_graph()
    gate = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("cltv_models"), "champion_not_worse"))
    assert gate.blocking
