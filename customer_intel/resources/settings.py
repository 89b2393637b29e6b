"""Deployment settings from environment variables: the one place configuration is read.

Every variable is documented in the README with its default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "CUSTOMER_INTEL_"
DEFAULT_PARTITIONS_START = "2024-07-01"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return default if value is None or value == "" else value


def _json_mapping(name: str) -> dict[str, str]:
    raw = _env(name)
    if raw is None:
        return {}
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_PREFIX}{name} must be a JSON object like '{{\"customer_id\": \"Customer Key\"}}': {exc}") from exc
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f"{ENV_PREFIX}{name} must map contract column names to source column names (strings)")
    return mapping


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    raw_dir: Path
    warehouse_dir: Path
    partitions_start: str
    table_paths: dict[str, str | None]
    column_mappings: dict[str, dict[str, str]]
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None
    mlflow_experiment: str
    champion_tolerance: float

    @classmethod
    def from_env(cls) -> "Settings":
        env = _env("ENV", "local")
        if env != "local":
            raise ValueError(f"{ENV_PREFIX}ENV={env!r} is not supported by this build; use 'local'")
        data_dir = Path(_env("DATA_DIR", "data")).resolve()
        tables = ("transactions", "customers", "campaigns")
        tracking_server = os.environ.get("MLFLOW_TRACKING_URI")  # MLflow's own variable wins; a server keeps its artifacts
        return cls(
            env=env,
            data_dir=data_dir,
            raw_dir=Path(_env("RAW_DIR", str(data_dir / "raw"))).resolve(),
            warehouse_dir=Path(_env("WAREHOUSE_DIR", str(data_dir / "warehouse"))).resolve(),
            partitions_start=_env("PARTITIONS_START", DEFAULT_PARTITIONS_START),
            table_paths={t: _env(f"{t.upper()}_PATH") for t in tables},
            column_mappings={t: _json_mapping(f"{t.upper()}_COLUMNS") for t in tables},
            mlflow_tracking_uri=tracking_server or f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
            mlflow_artifact_root=None if tracking_server else (data_dir / "mlflow" / "artifacts").as_uri(),
            mlflow_experiment=_env("MLFLOW_EXPERIMENT", "customer_intel"),
            champion_tolerance=float(_env("CHAMPION_TOLERANCE", "0.02")),
        )
