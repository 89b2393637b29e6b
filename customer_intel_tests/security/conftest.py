"""One training run and one scoring run with fake credentials, shared by the security tests.

``customer-intel run`` runs as a process, as a user runs it, on the small bank with the light
training config: raw tables and output tables on the moto S3 server (``CUSTOMER_INTEL_ENV=s3``),
reached with fake AWS credentials that are the only ones the process can find (no HOME, no
credentials file), so the run succeeding means they were used; Dagster on a real instance in a
temporary DAGSTER_HOME (SQLite event log, run storage, compute logs on disk); MLflow on a SQLite
store with its artifacts beside it; and every other secret the project reads set to a fake value.
The export id salt is one of them, so the exports are pseudonymised.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from customer_intel_tests.conftest import upload_raw

PROJECT = Path(__file__).resolve().parents[2]
LIGHT = PROJECT / "customer_intel_tests" / "fixtures" / "light_training.yaml"
BUCKET = "ci-security-scan"


def fake_secrets() -> dict[str, str]:
    """A fresh fake value for every secret the project (code, docker-compose.yml, docs/deploy.md) reads from the environment."""
    token = secrets.token_hex
    return {
        "AWS_ACCESS_KEY_ID": f"AKIAFAKE{token(6).upper()}",
        "AWS_SECRET_ACCESS_KEY": f"fakeSecretKey{token(14)}",
        "AWS_SESSION_TOKEN": f"fakeSessionToken{token(20)}",
        "DAGSTER_POSTGRES_PASSWORD": f"fakeDagsterPg{token(10)}",
        "POSTGRES_PASSWORD": f"fakePostgres{token(10)}",
        "PGPASSWORD": f"fakePgPassword{token(10)}",
        "MINIO_ROOT_USER": f"fakeMinioAdmin{token(6)}",
        "MINIO_ROOT_PASSWORD": f"fakeMinioRoot{token(10)}",
        "MLFLOW_TRACKING_USERNAME": f"fakeMlflowUser{token(6)}",
        "MLFLOW_TRACKING_PASSWORD": f"fakeMlflowPassword{token(10)}",
        "MLFLOW_TRACKING_TOKEN": f"fakeMlflowToken{token(10)}",
        "CUSTOMER_INTEL_EXPORT_ID_SALT": f"fakeExportSalt{token(16)}",
    }


@dataclass(frozen=True)
class SecuredRun:
    secrets: dict[str, str]
    root: Path  # everything the process wrote locally: DAGSTER_HOME, the MLflow store and artifacts
    home: Path
    tracking_uri: str
    bucket: str
    client: object  # a boto3 client of the moto server (the test's own, with the same fake credentials)
    stdout: str
    stderr: str
    seconds: float

    @property
    def salt(self) -> str:
        return self.secrets["CUSTOMER_INTEL_EXPORT_ID_SALT"]


@contextlib.contextmanager
def project_env(**values: str):
    """``os.environ`` for a block without the project's, Dagster's and MLflow's variables, plus ``values``."""
    with mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_"))]:
            del os.environ[name]
        os.environ.update(values)
        yield


PERSONAL_COLUMN = "email"
EXPORTED_PROFILE = ("Avg_Credit_Limit", "Total_visits_online")  # CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS of the run


@pytest.fixture(scope="session")  # one run per worker, however the worker interleaves files (xdist)
def secured_run(tmp_path_factory, s3_endpoint, small_frames) -> SecuredRun:
    import boto3

    fake = fake_secrets()
    root = tmp_path_factory.mktemp("secured")
    home, out = root / "dagster_home", root / "data"
    home.mkdir()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=fake["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=fake["AWS_SECRET_ACCESS_KEY"], aws_session_token=fake["AWS_SESSION_TOKEN"])
    client.create_bucket(Bucket=BUCKET)
    # a bank's customers table holds more than model inputs: a personal column the exports must never carry
    customers = small_frames["customers"].assign(**{PERSONAL_COLUMN: small_frames["customers"]["customer_id"].astype(str) + "@mail.example"})
    upload_raw({**small_frames, "customers": customers}, client, BUCKET, "raw")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_", "AWS_"))}
    env.update(fake)
    env.update({
        "HOME": str(root), "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"), "AWS_CONFIG_FILE": str(root / "none"),
        "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "DAGSTER_HOME": str(home), "OMP_WAIT_POLICY": "PASSIVE",
        "CUSTOMER_INTEL_ENV": "s3", "CUSTOMER_INTEL_S3_BUCKET": BUCKET, "CUSTOMER_INTEL_S3_ENDPOINT_URL": s3_endpoint,
        "CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS": ",".join(EXPORTED_PROFILE),
    })
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("customer-intel")), "run", "--out", str(out),
                           "--training-config", str(LIGHT)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-4000:]
    return SecuredRun(secrets=fake, root=root, home=home, tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}", bucket=BUCKET,
                      client=client, stdout=done.stdout, stderr=done.stderr, seconds=seconds)
