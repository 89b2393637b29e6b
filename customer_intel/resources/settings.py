"""Deployment settings from environment variables: the one place configuration is read.

Every variable is documented in the README with its default. Resources call ``Settings.from_env()``
when they run (a field left unset in the launchpad means "from the environment"), so importing
``customer_intel.definitions`` reads nothing but the two definition-time values below, which
Dagster needs while it loads the code location: ``partitions_start()`` and
``landing_interval_seconds()``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from customer_intel.monitoring.drift import DEFAULT_DRIFT_FEATURES
from customer_intel.privacy import MIN_SALT_CHARS

ENV_PREFIX = "CUSTOMER_INTEL_"
TABLES = ("transactions", "customers", "campaigns")  # the raw tables, in ingestion order
NOT_CONFIGURED = {"", "none", "off"}  # a table path that switches the table off
DEFAULT_PARTITIONS_START = "2024-07-01"
ENVIRONMENTS = ("local", "s3")


class ConfigurationError(ValueError):
    """A setting cannot be used; the message is one line naming the variable, the value and what is expected."""


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
        raise ConfigurationError(f"{ENV_PREFIX}{name} is not valid JSON ({exc.msg} at character {exc.pos}); "
                                 f"it must be an object like '{{\"customer_id\": \"Customer Key\"}}'") from None
    return column_mapping(mapping, f"{ENV_PREFIX}{name}")


def column_mapping(mapping, where: str) -> dict[str, str]:
    """A column mapping checked: contract column name -> source column name, both strings."""
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ConfigurationError(f"{where} must map contract column names to source column names (strings), got {mapping!r}")
    return mapping


def _number(name: str, default: str) -> float:
    raw = _env(name, default)
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_PREFIX}{name}={raw!r} is not a number") from None


def _date(name: str, default: str) -> str:
    raw = _env(name, default)
    try:
        return str(date.fromisoformat(raw))
    except ValueError:
        raise ConfigurationError(f"{ENV_PREFIX}{name}={raw!r} is not a date (YYYY-MM-DD)") from None


def _location(value: str) -> str:
    """An s3:// URI as given, a local path made absolute."""
    return value.rstrip("/") if value.startswith("s3://") else str(Path(value).resolve())


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default)
    if raw not in choices:
        raise ConfigurationError(f"{ENV_PREFIX}{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def partitions_start() -> str:
    """First daily partition (definition-time: read when the code location loads)."""
    return _env("PARTITIONS_START", DEFAULT_PARTITIONS_START)


def scoring_shards() -> int:
    """How many customer shards the daily scores are split into (definition-time: read when the code location loads)."""
    raw = _env("SCORING_SHARDS", "1")
    try:
        shards = int(raw)
    except ValueError:
        shards = 0
    if shards < 1:
        raise ConfigurationError(f"{ENV_PREFIX}SCORING_SHARDS={raw!r} must be a whole number of shards, 1 or more")
    return shards


def io_retries() -> tuple[int, float]:
    """(retries, first delay in seconds) of the IO steps' Dagster ``RetryPolicy`` (definition-time: read when the code
    location loads): ``CUSTOMER_INTEL_IO_RETRIES`` (default 3) and ``CUSTOMER_INTEL_IO_RETRY_DELAY_SECONDS`` (default 10;
    exponential backoff with jitter)."""
    retries, delay = _env("IO_RETRIES", "3"), _env("IO_RETRY_DELAY_SECONDS", "10")
    try:
        parsed = int(retries), float(delay)
    except ValueError:
        parsed = (-1, -1.0)
    if parsed[0] < 0 or parsed[1] < 0:
        raise ConfigurationError(f"{ENV_PREFIX}IO_RETRIES={retries!r} and {ENV_PREFIX}IO_RETRY_DELAY_SECONDS={delay!r} must be "
                                 "a whole number of retries (0 or more) and a number of seconds (0 or more)")
    return parsed


def landing_interval_seconds() -> int:
    """How often the landing sensor lists the raw location (definition-time: read when the code location loads)."""
    return int(_env("LANDING_INTERVAL_SECONDS", "300"))


def export_id_salt() -> str | None:
    """``CUSTOMER_INTEL_EXPORT_ID_SALT``, read when an export is written (None: unset, exports carry raw customer ids).

    Deliberately not a ``Settings`` field: a dataclass prints its fields, and the salt must never
    reach a log, metadata or an error message (this one gives its length, never its value).
    """
    salt = _env("EXPORT_ID_SALT")
    if salt is not None and len(salt) < MIN_SALT_CHARS:
        raise ConfigurationError(f"{ENV_PREFIX}EXPORT_ID_SALT has {len(salt)} characters; use at least {MIN_SALT_CHARS} random ones "
                                 "(e.g. `openssl rand -hex 32`), or unset it for raw customer ids in exports")
    return salt


def export_profile_columns() -> tuple[str, ...]:
    """``CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS``, read when ``scored_customers`` is built: the columns of the bank's
    customers table the export may carry (comma-separated). Unset or empty: none. The customers table is free-form
    (any column a bank exports: names, e-mail addresses, dates of birth), so an attribute leaves the bank only
    when it is named here; the pipeline's own features and models read it from ``customer_features`` either way."""
    return tuple(dict.fromkeys(c.strip() for c in (_env("EXPORT_PROFILE_COLUMNS") or "").split(",") if c.strip()))


def redact_uri(uri: str) -> str:
    """``uri`` as it may be printed, logged or put in metadata: a password in its user info replaced by ``***``
    (``https://user:***@host``, ``postgresql://user:***@host/db``), and user info without one (it may be a token) too."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if has_password else f"***@{host}"))


def default_artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store (``<db folder>/artifacts``);
    a tracking server or a file store keeps its own (None). Never MLflow's default ``./mlruns``."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    raw_dir: str  # a local folder or s3://bucket/prefix
    warehouse_root: str  # a local folder or s3://bucket/prefix
    s3_endpoint_url: str | None
    s3_region: str | None
    partitions_start: str
    table_paths: dict[str, str | None]
    column_mappings: dict[str, dict[str, str]]
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None
    mlflow_experiment: str
    champion_tolerance_override: float | None  # None: each family's rule decides
    drift_psi_threshold: float
    drift_features: tuple[str, ...]
    landing_interval_seconds: int
    max_abs_amount: float  # amounts further from zero are refused at ingestion
    min_date: str  # timestamps before it are placeholders, refused at ingestion
    customers_duplicates: str  # refuse | keep_last

    @classmethod
    def from_env(cls) -> Settings:
        env = _env("ENV", "local")
        if env not in ENVIRONMENTS:
            raise ConfigurationError(f"{ENV_PREFIX}ENV={env!r} is not supported; use one of {', '.join(ENVIRONMENTS)}")
        data_dir = Path(_env("DATA_DIR", "data")).resolve()
        if env == "s3":
            bucket = _env("S3_BUCKET")
            if not bucket:
                raise ConfigurationError(f"{ENV_PREFIX}ENV=s3 needs {ENV_PREFIX}S3_BUCKET (the bucket for raw data and output tables)")
            prefix = _env("S3_PREFIX", "warehouse").strip("/")
            default_raw, default_warehouse = f"s3://{bucket}/raw", f"s3://{bucket}/{prefix}"
        else:
            default_raw, default_warehouse = str(data_dir / "raw"), str(data_dir / "warehouse")
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"  # MLflow's own variable wins
        return cls(
            env=env,
            data_dir=data_dir,
            raw_dir=_location(_env("RAW_DIR", default_raw)),
            warehouse_root=_location(_env("WAREHOUSE_DIR", default_warehouse)),
            s3_endpoint_url=_env("S3_ENDPOINT_URL"),
            s3_region=_env("S3_REGION", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")),
            partitions_start=partitions_start(),
            table_paths={t: _env(f"{t.upper()}_PATH") for t in TABLES},
            column_mappings={t: _json_mapping(f"{t.upper()}_COLUMNS") for t in TABLES},
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=default_artifact_root(tracking_uri),
            mlflow_experiment=_env("MLFLOW_EXPERIMENT", "customer_intel"),
            champion_tolerance_override=_number("CHAMPION_TOLERANCE", "0") if _env("CHAMPION_TOLERANCE") else None,
            drift_psi_threshold=_number("DRIFT_PSI_THRESHOLD", "0.2"),
            drift_features=tuple(f.strip() for f in _env("DRIFT_FEATURES", ",".join(DEFAULT_DRIFT_FEATURES)).split(",") if f.strip()),
            landing_interval_seconds=landing_interval_seconds(),
            max_abs_amount=_number("MAX_ABS_AMOUNT", "1e9"),
            min_date=_date("MIN_DATE", "1980-01-01"),
            customers_duplicates=_choice("CUSTOMERS_DUPLICATES", "refuse", ("refuse", "keep_last")),
        )
