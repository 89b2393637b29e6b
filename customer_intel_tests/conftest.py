"""Shared fixtures: a small synthetic bank on disk and a helper that materialises the whole graph."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from customer_intel.synthetic import generate_bank

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# the IO steps' RetryPolicy (definition-time, read when customer_intel.assets is first imported): retries after 0.1 s,
# 0.3 s and 0.7 s instead of 10, 30 and 70 s, so a test whose step fails for good does not wait minutes
os.environ.setdefault("CUSTOMER_INTEL_IO_RETRY_DELAY_SECONDS", "0.1")
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

SMALL_END_DATE = "2026-06-30"
LIGHT_TRAINING = Path(__file__).resolve().parent / "fixtures" / "light_training.yaml"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def restore_signals() -> None:
    """``preexec_fn`` of a server a test starts: a non-interactive parent leaves SIGINT/SIGTERM ignored, and
    `dagster dev` (or a daemon) would not stop on them (ARCHITECTURE.md)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def small_bank():
    """600 customers over two years: big enough for every feature, small enough for many runs."""
    return generate_bank(n_customers=600, seed=7, end_date=SMALL_END_DATE)


@pytest.fixture(scope="session")
def small_frames(small_bank) -> dict[str, pd.DataFrame]:
    return small_bank.frames()


def write_raw(frames: dict[str, pd.DataFrame], raw_dir: Path, fmt: str = "csv", tables=("transactions", "customers", "campaigns")) -> Path:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name in tables:
        frame = frames[name]
        if fmt == "csv":
            frame.to_csv(raw_dir / f"{name}.csv", index=False)
        else:
            frame.to_parquet(raw_dir / f"{name}.parquet", index=False)
    return raw_dir


def pipeline_resources(raw_dir: Path | str, warehouse: Path, warehouse_root: str | None = None, s3=None, **source) -> dict:
    """The production resources pointed at temporary folders (MLflow: a SQLite store beside the warehouse).

    ``warehouse_root`` / ``s3`` put the output tables (and an ``s3://`` ``raw_dir``) on S3 instead.
    """
    from customer_intel.resources import DriftPolicy, ParquetIOManager, RawDataSource, Warehouse

    store = Warehouse(root=warehouse_root or str(warehouse), s3=s3)
    return {
        "warehouse": store,
        "io_manager": ParquetIOManager(warehouse=store),
        "raw_data": RawDataSource(raw_dir=str(raw_dir), s3=s3, **source),
        "model_registry": model_registry_at(warehouse.parent / "mlflow"),
        "drift_policy": DriftPolicy(),
    }


@contextlib.contextmanager
def mlflow_pointed_at(uri: str):
    """MLflow's fluent API on ``uri`` for a block; afterwards its global URI and ``MLFLOW_TRACKING_URI``
    (which ``mlflow.set_tracking_uri`` exports) are what they were."""
    import mlflow

    saved_uri, saved_env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_uri)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def model_registry_at(folder: Path):
    """A ModelRegistry on a SQLite store and artifact folder under ``folder``."""
    from customer_intel.resources import ModelRegistry

    return ModelRegistry(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=(folder / "artifacts").as_uri())


def scoring_job_with(resources: dict):
    """The project's own scoring_job (all its assets and checks) bound to ``resources``."""
    from customer_intel.definitions import all_asset_checks, all_assets
    from customer_intel.jobs import scoring_job

    definitions = dg.Definitions(assets=all_assets, asset_checks=all_asset_checks, jobs=[scoring_job], resources=resources)
    return definitions.resolve_job_def("scoring_job")


def materialize_graph(raw_dir: Path, warehouse: Path, partition: str | None = SMALL_END_DATE, instance=None,
                      groups=("ingest", "features", "scoring"), run_config=None, **source):
    """Materialise the assets and checks of ``groups`` (default: what the scoring job runs)."""
    from customer_intel.definitions import all_asset_checks, all_assets

    return dg.materialize(
        [*all_assets, *all_asset_checks],
        selection=dg.AssetSelection.groups(*groups),
        resources=pipeline_resources(raw_dir, warehouse, **source),
        partition_key=partition,
        run_config=run_config,
        raise_on_error=False,
        instance=instance or dg.DagsterInstance.ephemeral(),
    )


@contextlib.contextmanager
def trained_family(frames: dict[str, pd.DataFrame], root: Path, family: str, run_config=None):
    """Train one family (its group and ingest) on ``frames`` under ``root``; yields (result, raw_dir, root) with
    MLflow's fluent API pointed at that run's store."""
    raw_dir = write_raw(frames, root / "raw", fmt="parquet")
    result = materialize_graph(raw_dir, root / "warehouse", partition=None, groups=("ingest", family), run_config=run_config)
    assert result.success, step_failures(result)
    with mlflow_pointed_at(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"):
        yield result, raw_dir, root


def good_pipeline(frames: dict[str, pd.DataFrame], root: Path, fmt: str):
    """Write the raw tables as ``fmt`` under ``root`` and materialise the graph: (result, raw_dir, warehouse)."""
    raw_dir = write_raw(frames, root / "raw", fmt=fmt)
    result = materialize_graph(raw_dir, root / "warehouse")
    assert result.success, step_failures(result)
    return result, raw_dir, root / "warehouse"


def step_failures(result) -> dict[str, str]:
    """step key -> the Failure description (or the error message and its causes) of every failed step."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            if data.user_failure_data:
                out[event.step_key] = data.user_failure_data.description
                continue
            error, messages = data.error, []
            while error is not None:
                messages.append(error.message.strip())
                error = error.cause
            out[event.step_key] = "\n".join(messages)
    return out


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``folder``: proves outputs were not touched."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's ThreadedMotoServer: a real HTTP S3 endpoint on 127.0.0.1 (a free port), stopped at the end."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh bucket on the moto server and the S3Resource that reaches it: (resource, bucket)."""
    from dagster_aws.s3 import S3Resource

    resource = S3Resource(endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = "ci-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:20]
    resource.get_client().create_bucket(Bucket=bucket)
    return resource, bucket


def upload_raw(frames: dict[str, pd.DataFrame], client, bucket: str, prefix: str = "raw", fmt: str = "parquet",
               tables=("transactions", "customers", "campaigns")) -> str:
    """Put the raw tables under ``s3://bucket/prefix/`` as a bank would drop them; returns that URI."""
    import io

    for name in tables:
        sink = io.BytesIO()
        if fmt == "csv":
            frames[name].to_csv(sink, index=False)
        else:
            frames[name].to_parquet(sink, index=False)
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}.{fmt}", Body=sink.getvalue())
    return f"s3://{bucket}/{prefix}"


def published(folder) -> Path:
    """The data file a table folder's ``_SUCCESS`` manifest points at (what any reader should open)."""
    import json

    folder = Path(folder)
    return folder / json.loads((folder / "_SUCCESS").read_text())["data_file"]


@pytest.fixture(scope="session")
def trained_registry(small_frames, tmp_path_factory):
    """Every family trained once on the small bank with the light config (once per test worker): (root, raw_dir). The registry is
    ``root/mlflow``, so ``pipeline_resources(raw, root / "<any folder>")`` scores with these champions."""
    import yaml

    from customer_intel.jobs import FAMILY_GROUPS

    root = tmp_path_factory.mktemp("trained")
    raw_dir = write_raw(small_frames, root / "raw", fmt="parquet")
    run_config = yaml.safe_load(LIGHT_TRAINING.read_text())
    result = materialize_graph(raw_dir, root / "training", partition=None, groups=("ingest", *FAMILY_GROUPS), run_config=run_config)
    assert result.success, step_failures(result)
    return root, raw_dir
