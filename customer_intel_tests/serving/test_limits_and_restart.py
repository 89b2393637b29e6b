"""Rate limits, reloads and the audit log across a killed server: real uvicorn processes on 127.0.0.1, audit shipped to moto S3."""

from __future__ import annotations

import shutil

import boto3
import pytest

from customer_intel_tests.conftest import SMALL_END_DATE
from customer_intel_tests.serving.conftest import ApiServer, api_env, audit_lines

BUCKET = "api-restart"


def shipped(client, prefix: str) -> list[dict]:
    return audit_lines(client, BUCKET, prefix)


def test_limit_reload_and_no_audit_line_lost_across_a_kill(scored_day, s3_endpoint, tmp_path):
    root, _, scored = scored_day
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    warehouse = tmp_path / "warehouse"  # empty at start: nothing published yet
    env = api_env(root, warehouse, CUSTOMER_INTEL_API_RATE_LIMIT="3/hour", CUSTOMER_INTEL_API_AUDIT_URI=f"s3://{BUCKET}/audit",
                  CUSTOMER_INTEL_API_AUDIT_DIR=str(tmp_path / "audit"), CUSTOMER_INTEL_API_AUDIT_BATCH_LINES="1000",
                  CUSTOMER_INTEL_API_AUDIT_INTERVAL_SECONDS="3600", CUSTOMER_INTEL_S3_ENDPOINT_URL=s3_endpoint,
                  AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    first = ApiServer(env, tmp_path / "first.log").start()
    answered = []
    try:
        health = first.get("/health").json()
        assert health["status"] == "degraded" and "no published day" in health["problems"]
        refused = first.post("/predict_churn", {"customer_id": "C0000001"})
        assert refused.status_code == 503 and "no published features" in refused.json()["detail"]
        answered.append(refused.headers["X-Request-ID"])

        shutil.copytree(scored, warehouse)  # the nightly run publishes; the running API picks it up on reload
        reloaded = first.post("/reload", {})
        assert reloaded.status_code == 200 and reloaded.json()["published_day"] == SMALL_END_DATE
        answered.append(reloaded.headers["X-Request-ID"])
        for _ in range(2):  # the limit's 2nd and 3rd calls (the 503 was the 1st)
            ok = first.post("/predict_churn", {"customer_id": "C0000001"})
            assert ok.status_code == 200, ok.text
            answered.append(ok.headers["X-Request-ID"])

        limited = first.post("/segment", {"customer_id": "C0000001"})  # every prediction endpoint shares the caller's limit
        assert limited.status_code == 429
        assert 3000 <= int(limited.headers["Retry-After"]) <= 3600  # the first of the hour's three calls leaves the window then
        assert "rate limit 3/hour (predictions) exceeded for crm@127.0.0.1" in limited.json()["detail"]
        assert first.get("/models").status_code == 200  # operations are not counted against the predictions' limit

        assert shipped(client, "audit/") == []  # 4 lines, batches of 1000 every hour: all still local
    finally:
        first.kill()  # SIGKILL: no shutdown, nothing flushed

    second = ApiServer(env, tmp_path / "second.log").start()  # start() ships what the dead process left
    try:
        lines = shipped(client, "audit/")
        assert sorted(line["request_id"] for line in lines) == sorted(answered)
        assert [line["status"] for line in sorted(lines, key=lambda x: x["time"])] == [503, 200, 200, 200]
        again = second.post("/predict_churn", {"customer_id": "C0000001"})  # a new process: a new window
        assert again.status_code == 200
        answered.append(again.headers["X-Request-ID"])
    finally:
        assert second.stop() in (0, -15)
    ids = [line["request_id"] for line in shipped(client, "audit/")]
    assert sorted(ids) == sorted(answered) and len(ids) == len(set(ids)) == 5
    assert not list((tmp_path / "audit").glob("*.jsonl")) or all(p.stat().st_size == 0 for p in (tmp_path / "audit").glob("*.jsonl"))


@pytest.mark.parametrize(("env", "message"), [
    ({}, "CUSTOMER_INTEL_API_PASSWORD is not set: the scoring API has no default password"),
    ({"CUSTOMER_INTEL_API_DEV": "1", "CUSTOMER_INTEL_API_HOST": "0.0.0.0"},
     "CUSTOMER_INTEL_API_DEV=1 without CUSTOMER_INTEL_API_PASSWORD only serves on 127.0.0.1, not 0.0.0.0"),
    ({"CUSTOMER_INTEL_API_PASSWORD": "short"}, "CUSTOMER_INTEL_API_PASSWORD is too short (5 characters): use at least 12"),
    ({"CUSTOMER_INTEL_API_PASSWORD": "long-enough-password", "CUSTOMER_INTEL_API_RATE_LIMIT": "ten a minute"},
     "CUSTOMER_INTEL_API_RATE_LIMIT='ten a minute' is not a rate limit"),
])
def test_the_service_refuses_to_start_unsafe(env, message, tmp_path):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "MLFLOW_"))}
    completed = subprocess.run([sys.executable, "-m", "customer_intel.serving", "--port", "1"], capture_output=True, text=True,
                               timeout=120, env={**clean, "CUSTOMER_INTEL_DATA_DIR": str(tmp_path), **env})
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr
    assert not (tmp_path / "audit").exists()  # refused before anything was created


def test_dev_mode_on_loopback_serves_anonymous_callers(monkeypatch, tmp_path):
    from customer_intel.serving.config import ServingSettings

    for name in ("CUSTOMER_INTEL_API_PASSWORD", "CUSTOMER_INTEL_API_HOST", "CUSTOMER_INTEL_API_RATE_LIMIT", "CUSTOMER_INTEL_API_AUDIT_URI",
                 "CUSTOMER_INTEL_WAREHOUSE_DIR", "CUSTOMER_INTEL_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUSTOMER_INTEL_API_DEV", "1")
    monkeypatch.setenv("CUSTOMER_INTEL_DATA_DIR", str(tmp_path))
    settings = ServingSettings.from_env()
    assert (settings.host, settings.password, settings.dev, settings.rate_limit) == ("127.0.0.1", None, True, "10/minute")
    assert settings.audit_location == str(tmp_path / "warehouse" / "audit_log")
