"""Exports hold exactly their documented columns: docs/data_contract.md is parsed, so the doc and the code cannot drift apart."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import pytest

from customer_intel.embeddings.lookalike import AUDIENCE_COLUMNS
from customer_intel.planner.plan import empty_targets
from customer_intel.resources.exports import EXPORT_ID_COLUMNS
from customer_intel.resources.storage import S3ObjectStore
from customer_intel.resources.tables import read_manifest, read_table
from customer_intel.table_names import CAMPAIGN_TARGETS, LOOKALIKE_AUDIENCE, SCORED_CUSTOMERS
from customer_intel_tests.conftest import SMALL_END_DATE
from customer_intel_tests.security.conftest import EXPORTED_PROFILE, PERSONAL_COLUMN, PROJECT

DOC = PROJECT / "docs" / "data_contract.md"
PROFILE = "profile attributes"  # the row that stands for the customers-table columns CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS names
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def documented_columns(text: str) -> dict[str, list[str]]:
    """Table -> its documented columns in order, from the column tables under "## Output tables": a name, a
    pattern (``channel_share_*``; ``uplift_for_<offer>`` is read as ``uplift_for_*``) or ``PROFILE``."""
    section = text.split("\n## Output tables", 1)[1]
    tables: dict[str, list[str]] = {}
    for block in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        title, body = block.split("\n", 1)
        entries, in_table = [], False
        for line in body.splitlines():
            if not line.startswith("|"):
                in_table = False
                continue
            first = line.strip().strip("|").split("|")[0].strip()
            if first == "column":
                in_table = True
            elif in_table and not set(first) <= set("-: "):
                entries += [PROFILE if c.strip() == PROFILE else re.sub(r"<[^>]+>", "*", c.strip().strip("`")) for c in first.split(",")]
        if entries:
            tables[title.split()[0]] = entries
    return tables


DOCUMENTED = documented_columns(DOC.read_text())


def unexplained(columns: list[str], entries: list[str], profile: set[str]) -> tuple[list[str], list[str]]:
    """(columns the doc does not list, documented names or patterns the table does not have)."""
    names = [e for e in entries if "*" not in e and e != PROFILE]
    patterns = [e for e in entries if "*" in e]
    extra = [c for c in columns if c not in names and not any(fnmatchcase(c, p) for p in patterns)
             and not (PROFILE in entries and c in profile)]
    missing = [n for n in names if n not in columns] + [p for p in patterns if not any(fnmatchcase(c, p) for c in columns)]
    return extra, missing


def test_the_data_contract_documents_every_export_in_a_form_the_test_reads():
    assert set(EXPORT_ID_COLUMNS) <= set(DOCUMENTED), f"exports without a column table in {DOC.name}: {set(EXPORT_ID_COLUMNS) - set(DOCUMENTED)}"
    for table, entries in DOCUMENTED.items():
        bad = [e for e in entries if e != PROFILE and not NAME.match(e.replace("*", "x"))]
        assert not bad, f"{table}: entries the test cannot read as column names: {bad}"
        assert len(entries) == len(set(entries)), f"{table}: a column documented twice"
    for table, id_columns in EXPORT_ID_COLUMNS.items():
        assert set(id_columns) <= set(DOCUMENTED[table]), table
    assert len(DOCUMENTED[SCORED_CUSTOMERS]) >= 60 and DOCUMENTED[LOOKALIKE_AUDIENCE][:2] == ["customer_id", "rank"]


def test_an_empty_day_keeps_the_documented_columns():
    """campaign_targets without an uplift champion and lookalike_audience without seeds are written empty, same columns."""
    assert list(empty_targets().columns) == DOCUMENTED[CAMPAIGN_TARGETS]
    assert list(AUDIENCE_COLUMNS) == DOCUMENTED[LOOKALIKE_AUDIENCE]


@pytest.mark.e2e
@pytest.mark.parametrize("table", sorted(EXPORT_ID_COLUMNS))
def test_each_export_of_a_real_run_has_exactly_its_documented_columns(table, secured_run, small_frames):
    store = S3ObjectStore(secured_run.client, secured_run.bucket, "warehouse")
    prefix = f"{table}/date={SMALL_END_DATE}"
    columns = list(read_table(store, prefix).columns)
    assert read_manifest(store, prefix)["columns"] == columns
    entries = DOCUMENTED[table]
    extra, missing = unexplained(columns, entries, set(EXPORTED_PROFILE))
    assert not extra and not missing, f"{table}: not in {DOC.name}: {extra}; documented but not written: {missing}"
    if PROFILE in entries:  # exactly the attributes the run named; the others (a personal e-mail column among them) withheld
        assert [c for c in columns if c in (set(small_frames["customers"].columns) - {"customer_id"}) | {PERSONAL_COLUMN}] == list(EXPORTED_PROFILE)
    assert PERSONAL_COLUMN not in columns
    if all("*" not in e and e != PROFILE for e in entries):  # a fixed list: in the documented order too
        assert columns == entries
