"""The README's entry points, run as a user runs them: as processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from customer_intel_tests.conftest import published

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return env


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The README's first command's entry point, as a process with a clean environment."""
    done = subprocess.run(
        [str(BIN / "customer-intel"), "demo", *args],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_demo_generates_data_and_materialises_every_asset(tmp_path):
    out = tmp_path / "data"
    done = run_demo(tmp_path, "--customers", "300", "--out", str(out))
    scored = out / "warehouse" / "scored_customers" / "date=2026-06-30"
    assert (scored / "_SUCCESS").is_file()
    scored_frame = pd.read_parquet(published(scored))
    assert len(scored_frame) == 300
    assert scored_frame["cltv_model"].str.startswith("customer_intel_cltv v1").all()  # training ran first
    assert str(published(scored)) in done.stdout
    assert "customer-intel ui" in done.stdout
    # nothing a user would read as an error: no warnings, no progress bars, no failed signature inference
    noise = [line for line in (done.stdout + done.stderr).splitlines()
             if any(word in line for word in ("WARNING", "Warning", "warning:", "Failed to infer", "Downloading artifacts", "Traceback"))]
    assert not noise, noise[:5]


def test_code_location_validates_like_dagster_dev_loads_it(tmp_path):
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")],
        cwd=PROJECT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _restore_signals():
    # `dagster dev` from a non-interactive parent inherits ignored SIGINT/SIGTERM
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


EXPECTED_ASSETS = {"raw_transactions", "raw_customers", "raw_campaigns", "customer_features", "scored_customers",
                   "cltv_training_frame", "cltv_models", "cltv_champion", "cltv_scores"}


def test_dagster_dev_serves_every_asset_with_description_group_and_kinds(tmp_path):
    port = _free_port()
    log = open(tmp_path / "dagster_dev.log", "w")  # noqa: SIM115 -- the server writes to it until the finally below closes it
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT / "workspace.yaml")],
        cwd=PROJECT, env=clean_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_restore_signals,
    )
    query = json.dumps({"query": "{ assetNodes { assetKey { path } description groupName kinds } }"}).encode()
    nodes = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    nodes = json.load(response)["data"]["assetNodes"]
                if len(nodes) == len(EXPECTED_ASSETS):
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    assert nodes is not None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
    by_name = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert set(by_name) == EXPECTED_ASSETS
    assert by_name["scored_customers"]["groupName"] == "scoring"
    assert set(by_name["raw_transactions"]["kinds"]) == {"duckdb", "parquet"}
    assert all(n["description"] for n in nodes)


def test_demo_runs_the_whole_pipeline_on_the_cdnow_sample(tmp_path):
    out = tmp_path / "cdnow"
    run_demo(tmp_path, "--dataset", "cdnow_sample", "--out", str(out))
    frame = pd.read_parquet(published(out / "warehouse" / "cltv_training_frame"))
    evaluate = frame[frame["split"] == "validation"]
    assert len(evaluate) == 2_357 and str(evaluate["as_of"].iloc[0].date()) == "1997-09-30"
    assert set(evaluate["holdout_days"]) == {273}
    scored = pd.read_parquet(published(out / "warehouse" / "scored_customers" / "date=1998-06-30"))
    assert len(scored) == 2_357 and scored["cltv_model"].str.startswith("customer_intel_cltv v1").all()
