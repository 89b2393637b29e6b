"""Keyed pseudonyms for the customer ids of exported tables (pure: no Dagster, no IO, no environment).

``keyed_id`` is HMAC-SHA256 of the id's text (UTF-8) keyed with a secret salt, written as the full
64-character lower-case hex digest. A plain hash of a customer id is no pseudonym: ids are short
and structured, so anyone can hash every candidate id and read the table back; the salt is the key
that makes this impossible for whoever holds an export but not the salt. The full digest is kept
(no truncation) so the bank can recompute it with any standard HMAC function (Python
``hmac.new(salt, id, "sha256").hexdigest()``, PostgreSQL ``encode(hmac(id, salt, 'sha256'), 'hex')``)
and join an export back to its customers, and so collisions need no argument (2^-256 per pair).

The same salt gives the same pseudonym in every table and every run, so exports join with each
other; another salt gives unrelated pseudonyms. Null ids stay null.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

ID_HASH = "hmac-sha256"  # what a pseudonymised export's manifest says its ids are
HASH_CHARS = 2 * hashlib.sha256().digest_size  # 64 hex characters
MIN_SALT_CHARS = 16  # a short salt could be found by trying every value against a known (id, pseudonym) pair


def keyed_id(customer_id, salt: str) -> str:
    """The pseudonym of one id: HMAC-SHA256(key=salt, message=str(id)) as 64 hex characters."""
    return hmac.digest(salt.encode("utf-8"), str(customer_id).encode("utf-8"), "sha256").hex()


def pseudonymise_ids(ids: pd.Series, salt: str) -> pd.Series:
    """``ids`` with every non-null value replaced by its keyed pseudonym (each distinct id hashed once)."""
    if not salt:
        raise ValueError("a pseudonym needs a non-empty salt")
    mapping = {value: keyed_id(value, salt) for value in pd.unique(ids.dropna())}
    out = ids.map(mapping)  # a null id is in no mapping: it stays null
    return out.astype(ids.dtype if isinstance(ids.dtype, pd.StringDtype) else object)  # an empty column stays text


def pseudonymise(frame: pd.DataFrame, salt: str, id_columns: tuple[str, ...]) -> pd.DataFrame:
    """A copy of ``frame`` whose ``id_columns`` (those present) carry keyed pseudonyms instead of customer ids."""
    out = frame.copy()
    for column in id_columns:
        if column in out.columns:
            out[column] = pseudonymise_ids(out[column], salt)
    return out
