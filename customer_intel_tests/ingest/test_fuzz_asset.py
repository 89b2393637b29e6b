"""What the fuzzing's plain-call path stands for, seen once through Dagster: a broken CSV record fails the ingest
asset with the Failure the fuzz properties check (file, column, rule, line), its blocking asset check
``well_formed_rows`` fails, nothing downstream of it runs, and the published tables are untouched."""

import pytest

from customer_intel_tests.conftest import materialize_graph, snapshot, step_failures, write_raw

pytestmark = pytest.mark.e2e


def test_a_broken_csv_record_fails_the_asset_and_its_check_and_publishes_nothing(small_frames, tmp_path):
    raw_dir = write_raw(small_frames, tmp_path / "raw", fmt="csv")
    warehouse = tmp_path / "warehouse"
    good = materialize_graph(raw_dir, warehouse, partition=None, groups=("ingest",))
    assert good.success, step_failures(good)
    before = snapshot(warehouse)

    path = raw_dir / "transactions.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[41] = lines[41].rstrip("\n") + ",surplus\n"  # the 41st record (line 42) gets a field too many
    path.write_text("".join(lines))
    bad = materialize_graph(raw_dir, warehouse, partition=None, groups=("ingest",))

    assert not bad.success
    failures = step_failures(bad)
    assert list(failures) == ["raw_transactions"], failures
    message = failures["raw_transactions"]
    assert f"raw_transactions: file {path}, column '(all)', rule 'well_formed_rows'" in message, message
    assert f"line 42 of {path}: Expected Number of Columns: {len(small_frames['transactions'].columns)}" in message
    assert "Nothing was written: the last good outputs are untouched." in message
    checks = {e.check_name: e.passed for e in bad.get_asset_check_evaluations() if e.asset_key.to_user_string() == "raw_transactions"}
    assert checks["well_formed_rows"] is False and checks["non_empty"] is True
    ran = {e.step_key for e in bad.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert "raw_campaigns" not in ran and "raw_customers" in ran
    after = snapshot(warehouse)
    assert {k: v for k, v in after.items() if k.startswith("raw_transactions/")} == \
        {k: v for k, v in before.items() if k.startswith("raw_transactions/")}
    assert any(k.startswith("raw_transactions/") for k in before)
