"""A secret scanner for everything a run leaves behind: files, S3 objects, Dagster's and MLflow's stores.

A value hidden by an encoding is still found: every piece of bytes is searched as it is and in
its decoded views (Parquet cells and schema metadata, every cell of a SQLite database, zlib and
gzip bodies such as Dagster's compressed snapshots, the members of a zip such as a torch model),
recursively. A finding names where the value was and the secret's *name*, never its value.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import sqlite3
import subprocess
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_MAGIC = b"PAR1"
MAX_DEPTH = 3
# credentials that should never be committed whatever their value (AWS key ids, private keys, an
# assigned AWS secret); the code tree is scanned for these as well as for the run's own values
CREDENTIAL_PATTERNS = {
    "an AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(rb"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "an assigned AWS secret key": re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
}


@dataclass(frozen=True)
class Finding:
    where: str  # e.g. "s3://bucket/key [parquet]" or "mlflow run 3f2c... param 'x'"
    secret: str  # the secret's name (an environment variable), never its value


def _sqlite_cells(data: bytes) -> Iterator[tuple[str, bytes]]:
    if data[18:20] == b"\x02\x02":  # a WAL-mode file: read it as a rollback-journal one (bytes 18-19 of the header)
        data = data[:18] + b"\x01\x01" + data[20:]
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(data)
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = con.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row):
                    if isinstance(value, bytes):
                        yield f"{table}.{column}", value
                    elif value is not None:
                        yield f"{table}.{column}", str(value).encode("utf-8", "surrogatepass")
    finally:
        con.close()


def _parquet_text(data: bytes) -> bytes:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(data))
    parts = [repr(parquet.schema_arrow.metadata or {}).encode()]
    table = parquet.read()
    for column in table.column_names:
        parts.append(column.encode())
        parts.extend(str(value).encode("utf-8", "surrogatepass") for value in table.column(column).to_pylist())
    return b"\n".join(parts)


def views(data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """``data`` itself, then each decoded view of it (label, bytes)."""
    yield "", data
    if depth >= MAX_DEPTH or len(data) < 4:
        return
    nested: list[tuple[str, bytes]] = []
    if data.startswith(SQLITE_MAGIC):
        nested += [(f"sqlite {where}", cell) for where, cell in _sqlite_cells(data)]
    elif data[:4] == PARQUET_MAGIC:
        nested.append(("parquet", _parquet_text(data)))
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            nested.append(("gzip", gzip.decompress(data)))
    elif data[:4] == b"PK\x03\x04":
        with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(data)) as archive:
            nested += [(f"zip member {name}", archive.read(name)) for name in archive.namelist()]
    elif data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA):  # a zlib stream (Dagster's snapshots)
        with contextlib.suppress(zlib.error):
            nested.append(("zlib", zlib.decompress(data)))
    for label, inner in nested:
        for sub, view in views(inner, depth + 1):
            yield f"{label} > {sub}" if sub else label, view


def scan_bytes(where: str, data: bytes, secrets: dict[str, str]) -> list[Finding]:
    """Every secret found in ``data`` or a decoded view of it, once per (place, secret): the place is ``where`` for the
    bytes as they are, ``where [view]`` for a decoded view (e.g. ``[sqlite params.value]``, ``[zip member x > zlib]``)."""
    needles = {name: value.encode() for name, value in secrets.items()}
    found: dict[tuple[str, str], Finding] = {}
    for label, view in views(data):
        for name, needle in needles.items():
            if needle in view:
                place = f"{where} [{label}]" if label else where
                found.setdefault((place, name), Finding(place, name))
    return list(found.values())


def scan_text(where: str, text: str, secrets: dict[str, str]) -> list[Finding]:
    return scan_bytes(where, text.encode("utf-8", "surrogatepass"), secrets)


def scan_files(root: Path, secrets: dict[str, str]) -> tuple[list[Finding], int]:
    """Every file under ``root`` (SQLite stores, Parquet, model pickles, logs...): (findings, files scanned)."""
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    findings = [f for path in files for f in scan_bytes(str(path), path.read_bytes(), secrets)]
    return findings, len(files)


def scan_s3(client, bucket: str, secrets: dict[str, str]) -> tuple[list[Finding], int]:
    """Every object of ``bucket``: (findings, objects scanned)."""
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket) for item in page.get("Contents", [])]
    findings = [f for key in keys for f in scan_bytes(f"s3://{bucket}/{key}", client.get_object(Bucket=bucket, Key=key)["Body"].read(),
                                                      secrets)]
    return findings, len(keys)


def scan_dagster(home: Path, secrets: dict[str, str]) -> tuple[list[Finding], int]:
    """Through Dagster's own API: every run (tags, config), its job snapshot and every event record (asset
    metadata, check results, step logs), and the instance's asset keys. (findings, records scanned)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import serialize_value

    findings, records = [], 0
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run in instance.get_runs():
            findings += scan_text(f"dagster run {run.run_id} (tags, config)", serialize_value(run), secrets)
            if run.job_snapshot_id:
                snapshot = instance.get_job_snapshot(run.job_snapshot_id)
                findings += scan_text(f"dagster run {run.run_id} job snapshot", serialize_value(snapshot), secrets)
            for entry in instance.all_logs(run.run_id):
                records += 1
                findings += scan_text(f"dagster run {run.run_id} event {entry.dagster_event_type or 'log'}", serialize_value(entry), secrets)
        for key in instance.get_asset_keys():
            event = instance.get_latest_materialization_event(key)
            if event is not None:
                records += 1
                findings += scan_text(f"dagster asset {key.to_user_string()} latest materialization", serialize_value(event), secrets)
    return findings, records


def scan_mlflow(tracking_uri: str, secrets: dict[str, str]) -> tuple[list[Finding], int]:
    """Through MLflow's client: every run's params, tags and metric keys, every registered model and version
    (tags, description, aliases). (findings, runs and versions scanned)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    findings, scanned = [], 0
    experiments = client.search_experiments()
    for experiment in experiments:
        findings += scan_text(f"mlflow experiment {experiment.name}", repr(experiment.tags) + experiment.artifact_location, secrets)
        for run in client.search_runs([experiment.experiment_id], max_results=10_000):
            scanned += 1
            where = f"mlflow run {run.info.run_id}"
            for kind, values in (("param", run.data.params), ("tag", run.data.tags), ("metric", run.data.metrics)):
                for key, value in values.items():
                    findings += scan_text(f"{where} {kind} {key!r}", f"{key}={value}", secrets)
    for model in client.search_registered_models():
        findings += scan_text(f"mlflow model {model.name}", repr((model.description, model.tags, model.aliases)), secrets)
        for version in client.search_model_versions(f"name = '{model.name}'"):
            scanned += 1
            findings += scan_text(f"mlflow model {model.name} v{version.version}",
                                  repr((version.description, version.tags, version.source, version.run_id)), secrets)
    return findings, scanned


def tracked_files(repo: Path) -> list[Path]:
    """The code tree: every file git tracks."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout.split(b"\0")
    return [repo / name.decode() for name in names if name and (repo / name.decode()).is_file()]


def scan_code(files: Iterable[Path], secrets: dict[str, str]) -> list[Finding]:
    """``files`` for the secret values and for credentials of any value (CREDENTIAL_PATTERNS)."""
    findings = []
    for path in files:
        data = path.read_bytes()
        findings += scan_bytes(str(path), data, secrets)
        findings += [Finding(str(path), what) for what, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(data)]
    return findings
