"""Optional keyed pseudonyms of customer ids in the exports (CUSTOMER_INTEL_EXPORT_ID_SALT).

The function (HMAC-SHA256, 64 hex characters), the IO layer that applies it at the export
boundary while downstream assets keep joining on raw ids, and the real run's four exports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import dagster as dg
import pandas as pd
import pytest

from customer_intel import cli
from customer_intel.privacy import HASH_CHARS, ID_HASH, keyed_id, pseudonymise, pseudonymise_ids
from customer_intel.resources import ParquetIOManager, Warehouse
from customer_intel.resources.exports import EXPORT_ID_COLUMNS, INTERNAL, internal_prefix
from customer_intel.resources.settings import ConfigurationError, export_id_salt
from customer_intel.resources.storage import LocalObjectStore, S3ObjectStore
from customer_intel.resources.tables import read_manifest, read_table, write_table
from customer_intel.table_names import CAMPAIGN_TARGETS, CUSTOMER_EMBEDDINGS, LOOKALIKE_AUDIENCE, SCORED_CUSTOMERS
from customer_intel_tests.conftest import SMALL_END_DATE, step_failures, write_raw
from customer_intel_tests.security.conftest import project_env

SALT_ENV = "CUSTOMER_INTEL_EXPORT_ID_SALT"
SALT = "unit-test-salt-0123456789abcdef"
OTHER_SALT = "another-salt-fedcba9876543210"


def reference(customer_id, salt: str) -> str:
    """The documented recipe, written with nothing but the standard library."""
    return hmac.new(salt.encode(), str(customer_id).encode(), hashlib.sha256).hexdigest()


# --- the function ---------------------------------------------------------------------------------


def test_a_pseudonym_is_the_hmac_sha256_hex_of_the_id_keyed_by_the_salt():
    assert keyed_id("C0000001", SALT) == reference("C0000001", SALT)
    assert len(keyed_id("C0000001", SALT)) == HASH_CHARS == 64
    assert keyed_id(42, SALT) == keyed_id("42", SALT)  # the id's text, whatever its type
    assert keyed_id("Müller-7", SALT) == reference("Müller-7", SALT)  # UTF-8
    assert keyed_id("C0000001", SALT) != hashlib.sha256(b"C0000001").hexdigest()  # keyed, not a plain hash anyone can redo


def test_same_salt_same_pseudonym_in_every_table_other_salt_unrelated_nulls_stay_null():
    ids = pd.Series(["C1", "C2", None, "C1"], dtype=object)
    targets = pd.DataFrame({"customer_id": ["C2", "C1"], "rank": [1, 2]})
    audience = pd.DataFrame({"customer_id": ["C1"], "closest_seed": ["C2"], "similarity": [0.9]})
    hashed = pseudonymise_ids(ids, SALT)
    assert hashed.tolist()[:2] == [reference("C1", SALT), reference("C2", SALT)] and pd.isna(hashed[2]) and hashed[3] == hashed[0]
    assert pseudonymise(targets, SALT, ("customer_id",))["customer_id"].tolist() == [hashed[1], hashed[0]]
    assert pseudonymise(audience, SALT, ("customer_id", "closest_seed")).iloc[0][["customer_id", "closest_seed"]].tolist() == [hashed[0], hashed[1]]
    other = pseudonymise_ids(ids, OTHER_SALT)
    assert set(other.dropna()).isdisjoint(hashed.dropna())
    assert pseudonymise_ids(pd.Series([], dtype=object), SALT).dtype == object
    assert pseudonymise_ids(ids.astype("string"), SALT).dtype == "string"
    assert targets["customer_id"].tolist() == ["C2", "C1"]  # the input is not modified
    with pytest.raises(ValueError):
        pseudonymise_ids(ids, "")


def test_the_salt_is_read_at_run_time_and_a_short_one_is_refused_without_printing_it(monkeypatch):
    monkeypatch.delenv(SALT_ENV, raising=False)
    assert export_id_salt() is None
    monkeypatch.setenv(SALT_ENV, "")
    assert export_id_salt() is None
    monkeypatch.setenv(SALT_ENV, SALT)
    assert export_id_salt() == SALT
    monkeypatch.setenv(SALT_ENV, "short-salt")
    with pytest.raises(ConfigurationError) as error:
        export_id_salt()
    assert str(error.value).startswith(f"{SALT_ENV} has 10 characters; use at least 16") and "short-salt" not in str(error.value)


# --- the IO layer: hashed at the export boundary, joined on raw ids ------------------------------

RAW = pd.DataFrame({"customer_id": [f"C{i:07d}" for i in range(1, 9)], "cltv": [float(i) for i in range(1, 9)]})
CONTACT = {"C0000002", "C0000005", "C0000007"}  # a raw-id list the downstream asset joins with (like raw_campaigns)


@dg.asset(name=SCORED_CUSTOMERS)
def scored() -> pd.DataFrame:
    return RAW


@dg.asset(name=CAMPAIGN_TARGETS, ins={"scored": dg.AssetIn(SCORED_CUSTOMERS)})
def targets(scored: pd.DataFrame) -> pd.DataFrame:
    assert scored["customer_id"].str.fullmatch(r"C\d{7}").all(), "a downstream asset received pseudonyms instead of raw ids"
    return scored.loc[scored["customer_id"].isin(CONTACT)].reset_index(drop=True)


def _materialize(warehouse, selection=None):
    store = Warehouse(root=str(warehouse))
    return dg.materialize([scored, targets], selection=selection, resources={"io_manager": ParquetIOManager(warehouse=store)},
                          raise_on_error=False)


def _exported(warehouse, table: str) -> pd.DataFrame:
    return read_table(LocalObjectStore(warehouse), table)


def test_exports_are_pseudonymised_at_the_boundary_and_downstream_assets_join_on_raw_ids(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv(SALT_ENV, SALT)
    result = _materialize(warehouse)
    assert result.success, step_failures(result)
    store = LocalObjectStore(warehouse)
    hashed = {raw: reference(raw, SALT) for raw in RAW["customer_id"]}
    assert _exported(warehouse, SCORED_CUSTOMERS)["customer_id"].tolist() == [hashed[r] for r in RAW["customer_id"]]
    # built from the raw ids (the join with CONTACT matched) and hashed once, at its own boundary
    assert sorted(_exported(warehouse, CAMPAIGN_TARGETS)["customer_id"]) == sorted(hashed[r] for r in CONTACT)
    assert _exported(warehouse, CAMPAIGN_TARGETS)["cltv"].tolist() == [2.0, 5.0, 7.0]
    for table in (SCORED_CUSTOMERS, CAMPAIGN_TARGETS):
        manifest = read_manifest(store, table)
        assert manifest["customer_ids"] == ID_HASH
        assert read_manifest(store, internal_prefix(table))["sha256"] == manifest["internal_sha256"]
        assert read_table(store, internal_prefix(table))["customer_id"].str.startswith("C").all()  # the pipeline's raw-id copy
    text = "".join(p.read_text(errors="replace") for p in warehouse.rglob("_SUCCESS"))
    text += json.dumps([str(e.event_specific_data) for e in result.all_events])
    assert SALT not in text
    metadata = result.asset_materializations_for_node(SCORED_CUSTOMERS)[0].metadata
    assert metadata["customer_ids"].value == "hmac-sha256, keyed by CUSTOMER_INTEL_EXPORT_ID_SALT"

    # the same salt in another run: the same pseudonyms; another salt: none of them
    first = _exported(warehouse, SCORED_CUSTOMERS)["customer_id"].tolist()
    assert _materialize(warehouse).success and _exported(warehouse, SCORED_CUSTOMERS)["customer_id"].tolist() == first
    monkeypatch.setenv(SALT_ENV, OTHER_SALT)
    assert _materialize(warehouse).success
    assert set(_exported(warehouse, SCORED_CUSTOMERS)["customer_id"]).isdisjoint(first)

    # unset: raw ids as before, and the raw-id copies are gone
    monkeypatch.delenv(SALT_ENV)
    assert _materialize(warehouse).success
    assert _exported(warehouse, SCORED_CUSTOMERS)["customer_id"].tolist() == RAW["customer_id"].tolist()
    assert sorted(_exported(warehouse, CAMPAIGN_TARGETS)["customer_id"]) == sorted(CONTACT)
    assert "customer_ids" not in read_manifest(store, SCORED_CUSTOMERS)
    assert not [p for p in (warehouse / INTERNAL).rglob("*") if p.is_file()]


def test_a_raw_id_copy_from_another_write_is_refused_not_mixed(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv(SALT_ENV, SALT)
    assert _materialize(warehouse).success
    write_table(LocalObjectStore(warehouse), internal_prefix(SCORED_CUSTOMERS), RAW.head(2))  # e.g. a run that died between the writes
    result = _materialize(warehouse, selection=[CAMPAIGN_TARGETS])
    assert not result.success
    (message,) = step_failures(result).values()
    assert "is published with pseudonymised customer ids, but its raw-id copy" in message and "is from another write" in message


def test_a_short_salt_fails_the_export_step_naming_the_variable_not_the_value(tmp_path, monkeypatch):
    monkeypatch.setenv(SALT_ENV, "too-short")
    result = _materialize(tmp_path / "warehouse", selection=[SCORED_CUSTOMERS])
    assert not result.success
    (message,) = step_failures(result).values()
    assert message.startswith(f"{SCORED_CUSTOMERS}: {SALT_ENV} has 9 characters") and "too-short" not in message
    assert not (tmp_path / "warehouse" / SCORED_CUSTOMERS).exists()


def test_the_cli_refuses_a_short_salt_before_anything_runs(tmp_path, monkeypatch, capsys, small_frames):
    raw = write_raw(small_frames, tmp_path / "raw", fmt="parquet")
    monkeypatch.chdir(tmp_path)
    with project_env(**{SALT_ENV: "tiny-salt"}):
        assert cli.main(["run", "--raw", str(raw), "--out", str(tmp_path / "data"), "--check"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"customer-intel run: {SALT_ENV} has 9 characters") and "tiny-salt" not in err
        os.environ[SALT_ENV] = SALT
        assert cli.main(["run", "--raw", str(raw), "--out", str(tmp_path / "data"), "--check"]) == 0
        out = capsys.readouterr().out
        assert f"exports: customer ids replaced by keyed pseudonyms ({SALT_ENV} is set)" in out and SALT not in out
    assert not (tmp_path / "data" / "warehouse").exists()


# --- the real run's exports ----------------------------------------------------------------------


@pytest.mark.e2e
def test_the_runs_exports_carry_only_pseudonyms_that_join_across_tables(secured_run, small_frames):
    salt = secured_run.salt
    store = S3ObjectStore(secured_run.client, secured_run.bucket, "warehouse")
    raw_ids = set(small_frames["customers"]["customer_id"]) | set(small_frames["transactions"]["customer_id"])
    pseudonym_of = {raw: reference(raw, salt) for raw in raw_ids}
    real = {v: k for k, v in pseudonym_of.items()}
    exports = {}
    for table, id_columns in EXPORT_ID_COLUMNS.items():
        prefix = f"{table}/date={SMALL_END_DATE}"
        manifest = read_manifest(store, prefix)
        assert manifest["customer_ids"] == ID_HASH and salt not in json.dumps(manifest), table
        frame = exports[table] = read_table(store, prefix)
        assert len(frame) > 0, table
        for column in id_columns:  # every id is the documented HMAC of a real customer id: same salt, same pseudonym everywhere
            assert frame[column].map(real).notna().all(), (table, column)
        cells = "\n".join(frame.astype(str).to_numpy().ravel()) + json.dumps(manifest)
        leaked = [raw for raw in raw_ids if raw in cells]
        assert not leaked, f"{table}: raw customer ids in the export: {leaked[:5]}"
        assert salt not in cells
        internal = read_table(store, internal_prefix(prefix))  # the pipeline's working copy keeps the raw ids
        assert internal["customer_id"].map(pseudonym_of).tolist() == frame["customer_id"].tolist()
    scored, targets = exports[SCORED_CUSTOMERS], exports[CAMPAIGN_TARGETS]
    assert set(exports[CUSTOMER_EMBEDDINGS]["customer_id"]) == set(scored["customer_id"]) and len(scored) == 600
    # campaign_targets was built from scored_customers on raw ids: its rows carry the same customer's numbers
    joined = targets.merge(scored[["customer_id", "cltv", "segment_name"]], on="customer_id", suffixes=("", "_scored"), validate="one_to_one")
    assert len(joined) == len(targets) and (joined["cltv"] == joined["cltv_scored"]).all()
    assert (joined["segment_name"] == joined["segment_name_scored"]).all()
    # the lookalike seeds came from raw_campaigns' raw ids (the campaign's treated converters)
    campaigns = small_frames["campaigns"]
    responders = {pseudonym_of[c] for c in campaigns.loc[(campaigns["treated"] == 1) & (campaigns["converted"] == 1), "customer_id"]}
    audience = exports[LOOKALIKE_AUDIENCE]
    assert set(audience["closest_seed"]) <= responders and set(audience["customer_id"]).isdisjoint(responders)
    assert INTERNAL not in secured_run.stdout  # the CLI lists the exports, not the working copies
    assert f"exports: customer ids replaced by keyed pseudonyms ({SALT_ENV} is set)" in secured_run.stdout
