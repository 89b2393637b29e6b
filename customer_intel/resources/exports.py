"""The export boundary: the published tables that leave the bank, and their optional pseudonymised customer ids.

``scored_customers``, ``campaign_targets``, ``customer_embeddings`` and ``lookalike_audience`` are the
tables marketing and CRMs download (docs/data_contract.md documents their columns). With
``CUSTOMER_INTEL_EXPORT_ID_SALT`` set when one is written, the published table under its usual key
carries keyed pseudonyms (``customer_intel.privacy``) in its customer-id columns, and its manifest
says so (``"customer_ids": "hmac-sha256"``, never the salt). The pipeline itself keeps joining on
the real ids: the same rows with raw ids are written first under ``_internal/<same key>``, and the
IO manager loads that copy for the assets downstream (``campaign_targets`` is built from
``scored_customers``, the lookalike audience seeds from ``raw_campaigns`` ids), so ids are hashed
once, at the boundary, and never before a join. Give consumers the export keys, not ``_internal/``.
Unset, exports carry raw ids as before and a stale internal copy is removed.
"""

from __future__ import annotations

import contextlib

import pandas as pd

from customer_intel.privacy import ID_HASH, pseudonymise
from customer_intel.resources.settings import export_id_salt
from customer_intel.resources.storage import ObjectStore
from customer_intel.resources.tables import IncompletePartitionError, read_manifest, write_table
from customer_intel.table_names import CAMPAIGN_TARGETS, CUSTOMER_EMBEDDINGS, LOOKALIKE_AUDIENCE, SCORED_CUSTOMERS

EXPORT_ID_COLUMNS: dict[str, tuple[str, ...]] = {  # export table -> its columns that hold a customer id
    SCORED_CUSTOMERS: ("customer_id",),
    CAMPAIGN_TARGETS: ("customer_id",),
    CUSTOMER_EMBEDDINGS: ("customer_id",),
    LOOKALIKE_AUDIENCE: ("customer_id", "closest_seed"),
}
INTERNAL = "_internal"  # the pipeline's raw-id copies of pseudonymised exports


def internal_prefix(prefix: str) -> str:
    """The key of an export's raw-id copy: ``_internal/<asset>/date=...``."""
    return f"{INTERNAL}/{prefix}"


def is_internal(key: str) -> bool:
    return key.startswith(INTERNAL + "/")


def write_export(store: ObjectStore, prefix: str, frame: pd.DataFrame, id_columns: tuple[str, ...], run_id: str | None = None) -> dict:
    """Publish an export table; with a salt, its ids pseudonymised and the raw-id copy beside it. Returns the export's manifest."""
    salt = export_id_salt()
    if salt is None:
        manifest = write_table(store, prefix, frame, run_id=run_id)
        with contextlib.suppress(Exception):  # a copy left by a salted write serves nothing now; the next write retries
            store.delete(internal_prefix(prefix))
        return manifest
    internal = write_table(store, internal_prefix(prefix), frame, run_id=run_id)
    return write_table(store, prefix, pseudonymise(frame, salt, id_columns), run_id=run_id,
                       extra={"customer_ids": ID_HASH, "internal_sha256": internal["sha256"]})


def pipeline_prefix(store: ObjectStore, prefix: str) -> str:
    """Where the pipeline reads an export from: its raw-id copy when the published table is pseudonymised, else the table.

    The copy must be the one written with the published table (same checksum); a copy from
    another write (an interrupted run) is refused rather than mixed with it.
    """
    manifest = read_manifest(store, prefix)
    if not manifest or manifest.get("customer_ids") != ID_HASH:
        return prefix
    copy = read_manifest(store, internal_prefix(prefix))
    if not copy or copy.get("sha256") != manifest.get("internal_sha256"):
        raise IncompletePartitionError(
            f"{store.uri(prefix)} is published with pseudonymised customer ids, but its raw-id copy "
            f"{store.uri(internal_prefix(prefix))} is {'missing' if not copy else 'from another write'}: "
            "materialise it again before the assets that read it.")
    return internal_prefix(prefix)
