from pathlib import Path

import pytest

from customer_intel.resources import Settings, build_resources


def test_defaults_live_under_data(monkeypatch, tmp_path):
    for name in ["ENV", "DATA_DIR", "RAW_DIR", "WAREHOUSE_DIR", "PARTITIONS_START", "TRANSACTIONS_PATH", "TRANSACTIONS_COLUMNS"]:
        monkeypatch.delenv(f"CUSTOMER_INTEL_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.env == "local"
    assert settings.raw_dir == str(tmp_path / "data" / "raw")
    assert settings.warehouse_root == str(tmp_path / "data" / "warehouse")
    assert settings.partitions_start == "2024-07-01"
    assert settings.table_paths["transactions"] is None and settings.column_mappings["transactions"] == {}


def test_environment_overrides_and_column_mapping(monkeypatch, tmp_path):
    monkeypatch.setenv("CUSTOMER_INTEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMER_INTEL_CUSTOMERS_PATH", "none")
    monkeypatch.setenv("CUSTOMER_INTEL_TRANSACTIONS_COLUMNS", '{"customer_id": "Customer Key", "ts": "Date"}')
    resources = build_resources()
    source = resources["raw_data"]
    assert Path(source.raw_location) == tmp_path / "raw"
    assert source.columns("transactions") == {"customer_id": "Customer Key", "ts": "Date"}
    assert source.location("customers") is None
    assert resources["io_manager"].warehouse.location == str(tmp_path / "warehouse")
    assert resources["warehouse"].s3 is None


@pytest.mark.parametrize("value, message", [("{not json", "is not valid JSON .* it must be an object like"), ('["a"]', "must map contract column names")])
def test_bad_column_mapping_is_a_clear_error(monkeypatch, value, message):
    monkeypatch.setenv("CUSTOMER_INTEL_CAMPAIGNS_COLUMNS", value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_unknown_deployment_env_is_refused(monkeypatch):
    monkeypatch.setenv("CUSTOMER_INTEL_ENV", "moon")
    with pytest.raises(ValueError, match="CUSTOMER_INTEL_ENV='moon' is not supported; use one of local, s3"):
        Settings.from_env()


def test_s3_deployment_puts_raw_data_and_tables_in_the_bucket(monkeypatch):
    monkeypatch.setenv("CUSTOMER_INTEL_ENV", "s3")
    monkeypatch.delenv("CUSTOMER_INTEL_S3_BUCKET", raising=False)
    with pytest.raises(ValueError, match="CUSTOMER_INTEL_ENV=s3 needs CUSTOMER_INTEL_S3_BUCKET"):
        Settings.from_env()
    monkeypatch.setenv("CUSTOMER_INTEL_S3_BUCKET", "bank-ci")
    monkeypatch.setenv("CUSTOMER_INTEL_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("CUSTOMER_INTEL_S3_REGION", "eu-west-1")
    for name in ["RAW_DIR", "WAREHOUSE_DIR", "S3_PREFIX"]:
        monkeypatch.delenv(f"CUSTOMER_INTEL_{name}", raising=False)
    resources = build_resources()
    assert resources["warehouse"].location == "s3://bank-ci/warehouse"
    assert resources["raw_data"].raw_location == "s3://bank-ci/raw"
    assert resources["io_manager"].warehouse.s3_config().endpoint_url == "http://minio:9000"
    assert resources["raw_data"].s3_config().region_name == "eu-west-1"
    assert resources["warehouse"].s3_config().aws_secret_access_key is None  # credentials come from the AWS chain, never config


def test_resources_read_the_environment_when_used_not_when_built(monkeypatch, tmp_path):
    """defs can be imported before the environment is final: the values in force at run time win."""
    monkeypatch.delenv("CUSTOMER_INTEL_WAREHOUSE_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    resources = build_resources()
    monkeypatch.setenv("CUSTOMER_INTEL_DATA_DIR", str(tmp_path / "first"))
    import mlflow

    from customer_intel_tests.conftest import mlflow_pointed_at

    with mlflow_pointed_at(mlflow.get_tracking_uri()):  # leaves MLflow's global URI as it found it
        resources["model_registry"].configure()  # using the registry must not freeze its location into the environment
        assert "MLFLOW_TRACKING_URI" not in __import__("os").environ
    monkeypatch.setenv("CUSTOMER_INTEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMER_INTEL_CHAMPION_TOLERANCE", "0.05")
    monkeypatch.setenv("CUSTOMER_INTEL_DRIFT_PSI_THRESHOLD", "0.3")
    assert resources["warehouse"].location == str(tmp_path / "warehouse")
    assert resources["model_registry"].uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert Settings.from_env().mlflow_artifact_root == (tmp_path / "mlflow" / "artifacts").as_uri()
    from customer_intel.cltv.evaluation import CLTV_RULE

    assert resources["model_registry"].tolerance(CLTV_RULE) == 0.05
    monkeypatch.delenv("CUSTOMER_INTEL_CHAMPION_TOLERANCE")
    assert resources["model_registry"].tolerance(CLTV_RULE) == CLTV_RULE.tolerance == 0.02
    assert resources["drift_policy"].threshold == 0.3
    monkeypatch.setenv("CUSTOMER_INTEL_WAREHOUSE_DIR", "s3://later/tables")
    assert resources["warehouse"].location == "s3://later/tables"


def test_importing_the_definitions_reads_no_runtime_setting():
    import subprocess
    import sys

    code = ("import customer_intel.resources.settings as s\n"
            "def refuse(*a, **k): raise AssertionError('Settings.from_env() called at import')\n"
            "s.Settings.from_env = classmethod(refuse)\n"
            "from customer_intel.definitions import defs\n"
            "print(len(defs.resolve_asset_graph().get_all_asset_keys()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) >= 9


def test_raw_tables_are_discovered_by_name(tmp_path):
    from customer_intel.resources import RawDataSource

    (tmp_path / "transactions.csv").write_text("customer_id,ts,amount\n")
    (tmp_path / "campaigns").mkdir()
    source = RawDataSource(raw_dir=str(tmp_path))
    assert source.location("transactions") == str(tmp_path / "transactions.csv")
    assert source.location("campaigns") == str(tmp_path / "campaigns")
    assert source.location("customers") is None
    explicit = RawDataSource(raw_dir=str(tmp_path), customers_path="/elsewhere/customers.parquet")
    assert explicit.location("customers") == "/elsewhere/customers.parquet"
