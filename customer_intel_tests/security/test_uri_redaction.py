"""A password in the MLflow tracking URI (``https://user:pw@host``, ``postgresql://user:pw@host/db``) is never shown.

The URI is used as given to connect; what the CLI prints, what goes into asset metadata (the MLflow
run link, the note of a family without a champion) and logs is its redacted form.
"""

from __future__ import annotations

import pytest

from customer_intel import cli
from customer_intel.resources import ModelRegistry
from customer_intel.resources.settings import redact_uri
from customer_intel_tests.conftest import write_raw
from customer_intel_tests.security.conftest import project_env

PASSWORD = "pw-in-the-uri-7f3a9c"


@pytest.mark.parametrize(("uri", "shown"), [
    (f"https://alice:{PASSWORD}@mlflow.example.com/", "https://alice:***@mlflow.example.com/"),
    (f"postgresql+psycopg2://mlflow:{PASSWORD}@db.internal:5432/mlflow", "postgresql+psycopg2://mlflow:***@db.internal:5432/mlflow"),
    (f"https://{PASSWORD}@mlflow.example.com", "https://***@mlflow.example.com"),  # a bare token as user info
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:////data/mlflow/mlflow.db", "sqlite:////data/mlflow/mlflow.db"),
])
def test_a_uri_is_shown_without_its_password(uri, shown):
    assert redact_uri(uri) == shown


def test_the_registry_link_and_display_uri_hide_the_password_the_connection_uses():
    registry = ModelRegistry(tracking_uri=f"postgresql://mlflow:{PASSWORD}@127.0.0.1:1/mlflow")
    assert PASSWORD in registry.uri  # what MLflow connects with
    assert registry.display_uri == "postgresql://mlflow:***@127.0.0.1:1/mlflow"
    link = registry.run_link("0123abcd")
    assert PASSWORD not in link and "postgresql://mlflow:***@127.0.0.1:1/mlflow" in link


def test_the_cli_plan_prints_the_tracking_uri_without_its_password(tmp_path, monkeypatch, capsys, small_frames):
    raw = write_raw(small_frames, tmp_path / "raw", fmt="parquet")
    monkeypatch.chdir(tmp_path)
    with project_env(MLFLOW_TRACKING_URI=f"https://alice:{PASSWORD}@mlflow.example.com"):
        assert cli.main(["run", "--raw", str(raw), "--out", str(tmp_path / "data"), "--check"]) == 0
    captured = capsys.readouterr()
    assert "(MLflow: https://alice:***@mlflow.example.com)" in captured.out
    assert PASSWORD not in captured.out + captured.err
