"""No secret in code, logs, asset metadata, MLflow params/tags/artifacts or exported files, after a real run with fake credentials.

The scan is shown able to fail: a value planted in each store (an S3 table, Dagster's event log,
a run tag and a compute log, an MLflow param, tag and compressed artifact, a file of the code
tree, a log line) is found in each, while the run's own secrets are found nowhere.
"""

from __future__ import annotations

import gzip
import secrets

import dagster as dg
import pandas as pd
import pytest

from customer_intel.resources.storage import S3ObjectStore
from customer_intel.resources.tables import write_table
from customer_intel_tests.security.conftest import PROJECT
from customer_intel_tests.security.scan import (
    CREDENTIAL_PATTERNS,
    scan_code,
    scan_dagster,
    scan_files,
    scan_mlflow,
    scan_s3,
    scan_text,
    tracked_files,
)

pytestmark = pytest.mark.e2e


def _everything(run, values: dict[str, str]) -> tuple[list, dict[str, int]]:
    findings, counts = [], {}
    for name, (found, scanned) in {
        "local files (Dagster home: SQLite run and event storage, compute logs; MLflow: SQLite store, artifacts)":
            scan_files(run.root, values),
        "S3 objects (raw, every output table and manifest)": scan_s3(run.client, run.bucket, values),
        "Dagster records (runs, tags, config, job snapshots, events with asset metadata)": scan_dagster(run.home, values),
        "MLflow runs and model versions (params, tags, metrics)": scan_mlflow(run.tracking_uri, values),
    }.items():
        findings += found
        counts[name] = scanned
    findings += scan_text("the run's stdout", run.stdout, values) + scan_text("the run's stderr", run.stderr, values)
    return findings, counts


IDENTITY = "MLFLOW_TRACKING_USERNAME"


OWNER_FIELDS = ("tags.value", "runs.user_id", "logged_model_tags.tag_value")  # MLflow's store: the mlflow.user tags and the run owner


def _run_owner(finding, run) -> bool:
    """MLflow records who a run belongs to (the ``mlflow.user`` tag of runs and logged models, ``runs.user_id``) from
    MLFLOW_TRACKING_USERNAME when it is set: the account a tracking server authenticates. That is the audit trail's
    identity, not a credential (the password is): the username is allowed in those owner fields only."""
    store = run.tracking_uri.removeprefix("sqlite:///")
    return finding.secret == IDENTITY and (finding.where.endswith(" tag 'mlflow.user'")
                                           or finding.where in (store, *(f"{store} [sqlite {field}]" for field in OWNER_FIELDS)))


def test_no_secret_appears_anywhere_after_training_and_scoring(secured_run):
    findings, counts = _everything(secured_run, secured_run.secrets)
    code = tracked_files(PROJECT)
    findings += scan_code(code, secured_run.secrets)
    print(f"run: {secured_run.seconds:.1f} s; scanned: {counts}, {len(code)} tracked files")
    owners = [f for f in findings if _run_owner(f, secured_run)]
    leaks = [f for f in findings if not _run_owner(f, secured_run)]
    assert not leaks, "\n".join(f"{f.secret} in {f.where}" for f in leaks)
    owned_runs = {f.where.split()[2] for f in owners if f.where.startswith("mlflow run ")}
    assert len(owned_runs) >= 10, owners  # the allowance is not vacuous: MLflow did read the variable
    # not vacuous: the stores hold what a training and a scoring run write
    local, s3, dagster_records, mlflow_runs = counts.values()
    assert local >= 100 and s3 >= 40 and dagster_records >= 300 and mlflow_runs >= 10 and len(code) >= 200, counts
    assert list(secured_run.home.glob("storage/*/compute_logs/*.err")), "no compute log was captured"
    assert "scored_customers/date=2026-06-30/" in secured_run.stdout


def test_the_scan_finds_a_value_planted_in_each_store(secured_run, tmp_path):
    from dagster._core.instance.ref import InstanceRef
    from mlflow import MlflowClient

    value = f"planted{secrets.token_hex(12)}"
    planted = {"PLANTED": value}
    # S3: a zstd-compressed Parquet table, as the pipeline writes its exports
    write_table(S3ObjectStore(secured_run.client, secured_run.bucket, "planted"), "table", pd.DataFrame({"note": [value] * 3}))
    # Dagster: asset metadata in the event log, a tag on the run, a line in a compute log
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(secured_run.home))) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("planted_asset", metadata={"note": value}))
        run_id = instance.get_runs(limit=1)[0].run_id
        instance.add_run_tags(run_id, {"planted": value})
    compute_log = next(secured_run.home.glob("storage/*/compute_logs/*.err"))
    compute_log.write_text(compute_log.read_text() + f"\nplanted {value}\n")
    # MLflow: a param, a tag and a gzip-compressed artifact in a new run of the same store
    client = MlflowClient(tracking_uri=secured_run.tracking_uri)
    experiment = client.get_experiment_by_name("customer_intel")
    mlflow_run = client.create_run(experiment.experiment_id)
    client.log_param(mlflow_run.info.run_id, "planted_param", value)
    client.set_tag(mlflow_run.info.run_id, "planted_tag", value)
    artifact = tmp_path / "planted.txt.gz"
    artifact.write_bytes(gzip.compress(f"a line with {value}".encode()))
    assert value.encode() not in artifact.read_bytes()
    client.log_artifact(mlflow_run.info.run_id, str(artifact))
    client.set_terminated(mlflow_run.info.run_id)

    findings, _ = _everything(secured_run, planted)
    places = {f.where for f in findings}
    print("\n".join(sorted(places)))
    expected = {
        "S3 Parquet cell": lambda p: p.startswith(f"s3://{secured_run.bucket}/planted/table/part-") and "[parquet]" in p,
        "Dagster asset metadata (API)": lambda p: p == "dagster asset planted_asset latest materialization",
        "Dagster event log (SQLite file)": lambda p: "history/runs/index.db" in p,
        "Dagster run tag (API)": lambda p: p == f"dagster run {run_id} (tags, config)",
        "Dagster run tag (SQLite file)": lambda p: p.endswith("history/runs.db [sqlite run_tags row 0]") or "history/runs.db" in p,
        "compute log": lambda p: p == str(compute_log),
        "MLflow param (API)": lambda p: p == f"mlflow run {mlflow_run.info.run_id} param 'planted_param'",
        "MLflow tag (API)": lambda p: p == f"mlflow run {mlflow_run.info.run_id} tag 'planted_tag'",
        "MLflow store (SQLite file)": lambda p: p.endswith("mlflow.db") or "mlflow.db [" in p,
        "MLflow artifact (gzip)": lambda p: p.endswith("planted.txt.gz [gzip]"),
    }
    missed = [name for name, match in expected.items() if not any(match(p) for p in places)]
    assert not missed, f"the scan missed the planted value in: {missed}; it found it in: {sorted(places)}"
    assert all(f.secret == "PLANTED" for f in findings) and value not in "".join(places)

    # the code scan: the planted value, and a credential-shaped string whatever its value
    leaked = tmp_path / "settings.py"
    leaked.write_text(f'TOKEN = "{value}"\nKEY = "AKIA{"Q" * 16}"\n')
    assert {f.secret for f in scan_code([leaked], planted)} == {"PLANTED", "an AWS access key id"}
    assert set(CREDENTIAL_PATTERNS) >= {"an AWS access key id"}
    # and a log line
    assert [f.secret for f in scan_text("a log", f"connecting with {value}", planted)] == ["PLANTED"]
