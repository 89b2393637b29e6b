"""Property-based fuzzing of the raw-table reader and every contract rule, for all three raw tables (issue 24.2).

Each example is a generated raw location (CSV, CSV.gz or Parquet; one file or a folder of parts) driven through
the ingest asset's own path as a plain call (``fuzz_support.ingest``: the ``raw_data`` resource's read, the
contract validation into a typed Parquet copy, the IO manager's publish). The property: a valid table ingests
with exactly the typed rows the generator meant (values as Python reads the text written), and a table with one
injected fault is refused by the rule that fault breaks, in the asset's message format naming the file, the
column and the rule, with nothing published. Any other exception is a failure of the property.

One property per table and input class, so every class runs for every table. Deterministic (derandomised, no
example database, no deadline). ``CUSTOMER_INTEL_FUZZ_EXAMPLES`` sets the examples per property: 2 by default
(CI: the whole fuzz suite in under a minute on a busy 2-core box); a deeper run, e.g. 25, takes minutes.
``CUSTOMER_INTEL_FUZZ_SHRINK=0`` skips shrinking while debugging. Counts per input class and outcome:
``pytest customer_intel_tests/ingest/test_fuzz_ingest.py -q --hypothesis-show-statistics`` (hypothesis' events per
property) and the table this module prints at its end.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from customer_intel.ingest import CONTRACTS, rules_for
from customer_intel.resources.storage import LocalObjectStore
from customer_intel.resources.tables import partition_prefix, write_table
from customer_intel_tests.conftest import snapshot
from customer_intel_tests.ingest.fuzz_cases import FAULTS, GOOD_CLASSES, TABLES, fault_cases, good_cases
from customer_intel_tests.ingest.fuzz_support import check_case, counts_table

EXAMPLES = int(os.environ.get("CUSTOMER_INTEL_FUZZ_EXAMPLES", "2"))
PHASES = tuple(Phase) if os.environ.get("CUSTOMER_INTEL_FUZZ_SHRINK", "1") != "0" else (Phase.explicit, Phase.generate)
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES, print_blob=True, phases=PHASES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def published(tmp_path_factory, request):
    """A warehouse with a last good copy of each raw table: a refused example must leave it byte for byte."""
    root = tmp_path_factory.mktemp("fuzz_warehouse")
    store = LocalObjectStore(root)
    for table in TABLES:
        write_table(store, partition_prefix([f"raw_{table}"], None), pd.DataFrame({"customer_id": ["GOOD-1"]}), run_id="good")
    yield root
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\nfuzz cases (table, input class, outcome):\n" + counts_table())


@pytest.mark.parametrize(("table", "input_class"), [(t, c) for t in TABLES for c in GOOD_CLASSES])
@FUZZ
@given(data=st.data())
def test_a_valid_table_in_any_rendering_ingests_as_typed(table, input_class, published, data):
    check_case(data.draw(good_cases(table, input_class), label="case"), published, snapshot)


@pytest.mark.parametrize(("table", "fault"), [(t, f) for t in TABLES for f in FAULTS[t]])
@FUZZ
@given(data=st.data())
def test_one_fault_is_refused_by_its_rule_naming_file_and_column(table, fault, published, data):
    check_case(data.draw(fault_cases(table, fault), label="case"), published, snapshot)


def test_the_fault_classes_reach_every_rule_of_every_table():
    """Each rule of each table is what some fault class expects (so no rule goes unfuzzed)."""
    expected = {"missing_column": "required_columns", "missing_mapped_column": "required_columns", "empty_file": "non_empty",
                "null_required": "non_null_values", "non_finite": "finite_amounts", "huge_value": "plausible_amounts",
                "bad_type": "valid_types", "future_timestamp": "no_future_timestamps", "placeholder_date": "no_placeholder_dates",
                "unknown_customer": "known_customer_ids", "broken_csv_row": "well_formed_rows", "bad_header": "well_formed_rows",
                "corrupt_file": "well_formed_rows"}
    for table, contract in CONTRACTS.items():
        reached = {expected[f] for f in FAULTS[table] if f != "duplicate_rows_or_keys"}
        if "duplicate_rows_or_keys" in FAULTS[table]:
            reached.add("no_duplicate_rows" if contract.no_duplicate_rows else "unique_customer_ids")
        assert reached == set(rules_for(contract)), (table, set(rules_for(contract)) ^ reached)
