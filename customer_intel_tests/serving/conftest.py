"""The scoring API's test fixtures: the small bank trained and scored once, and a real uvicorn server to start and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from customer_intel_tests.conftest import SMALL_END_DATE, free_port, materialize_graph, restore_signals, step_failures

PASSWORD = "serving-test-password"  # >= 12 characters, as the service demands
USER = "crm"
START_TIMEOUT_SECONDS = 120


class ApiServer:
    """``python -m customer_intel.serving`` on a free port of 127.0.0.1, its environment pointed at a registry and a warehouse.

    ``start()`` waits until ``GET /health`` answers; ``stop()`` is SIGTERM (graceful: the audit log is flushed) and
    ``kill()`` SIGKILL (nothing flushed); either way the process is gone afterwards."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        self.session.auth = (env.get("CUSTOMER_INTEL_API_USER", USER), env.get("CUSTOMER_INTEL_API_PASSWORD", PASSWORD))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "customer_intel.serving", "--port", str(self.port)],
                                            env=self.env, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=restore_signals)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the API exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"the API did not answer /health in {START_TIMEOUT_SECONDS} s:\n{self.log.read_text()[-3000:]}")

    def post(self, path: str, body: dict, **kwargs) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def _end(self, sig: int) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM; uvicorn shuts down gracefully (lifespan end: the audit log flushed), then re-raises the signal, so a clean stop
        exits with -SIGTERM. Raises when the log does not show the graceful shutdown."""
        code = self._end(signal.SIGTERM)
        assert "Application shutdown complete" in self.log.read_text(), self.log.read_text()[-3000:]
        return code

    def kill(self) -> int:
        return self._end(signal.SIGKILL)


def api_env(root: Path, scored: Path, **overrides: str) -> dict[str, str]:
    """The server's environment: the trained registry under ``root/mlflow``, the warehouse ``scored``, an audit folder, and no
    inherited ``CUSTOMER_INTEL_*`` or ``MLFLOW_*`` setting of the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "MLFLOW_"))}
    env.update({
        "CUSTOMER_INTEL_DATA_DIR": str(root / "api_data"),
        "CUSTOMER_INTEL_WAREHOUSE_DIR": str(scored),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "CUSTOMER_INTEL_API_USER": USER,
        "CUSTOMER_INTEL_API_PASSWORD": PASSWORD,
        "CUSTOMER_INTEL_API_RATE_LIMIT": "100000/minute",
        "CUSTOMER_INTEL_API_AUDIT_DIR": str(root / "audit_local"),
        "CUSTOMER_INTEL_API_AUDIT_URI": str(root / "audit_shipped"),
        "OMP_NUM_THREADS": "1",
        **overrides,
    })
    return env


@pytest.fixture(scope="session")
def scored_day(trained_registry):
    """The trained small bank scored for its last day: (root, raw_dir, warehouse) with scored_customers, customer_features and
    customer_embeddings published for SMALL_END_DATE."""
    root, raw_dir = trained_registry
    warehouse = root / "scored"
    if not (warehouse / "scored_customers").exists():
        result = materialize_graph(raw_dir, warehouse, partition=SMALL_END_DATE)
        assert result.success, step_failures(result)
    return root, raw_dir, warehouse


def audit_lines(client, bucket: str, prefix: str) -> list[dict]:
    """Every audit line shipped under ``s3://bucket/prefix`` (one JSON object per line of each object)."""
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return [json.loads(line) for key in keys for line in client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
