"""Resources and IO: the Parquet IO manager, object stores, the raw-data source, the model registry, env settings."""

from customer_intel.resources.data_source import RawDataSource
from customer_intel.resources.drift_policy import DriftPolicy
from customer_intel.resources.model_registry import ModelRegistry
from customer_intel.resources.parquet_io import ParquetIOManager
from customer_intel.resources.settings import Settings
from customer_intel.resources.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from customer_intel.resources.tables import IncompletePartitionError, read_table, write_table
from customer_intel.resources.warehouse import Warehouse


def build_resources() -> dict:
    """The resources of the code location, chosen in one place.

    Nothing is read from the environment here: every field left unset resolves when the resource
    is used (``Settings.from_env()``), so ``CUSTOMER_INTEL_ENV=local`` (folders under ``data/``) or
    ``s3`` (raw data and output tables in ``CUSTOMER_INTEL_S3_BUCKET``; endpoint for MinIO;
    credentials from the standard AWS chain, never in code, config or logs) takes effect at run time.
    A value set in the launchpad overrides the environment.
    """
    warehouse = Warehouse()
    return {
        "warehouse": warehouse,
        "model_registry": ModelRegistry(),
        "io_manager": ParquetIOManager(warehouse=warehouse),
        "raw_data": RawDataSource(),
        "drift_policy": DriftPolicy(),
    }


__all__ = [
    "DriftPolicy", "IncompletePartitionError", "LocalObjectStore", "ModelRegistry", "ObjectStore", "ParquetIOManager",
    "RawDataSource", "S3ObjectStore", "Settings", "Warehouse", "build_resources", "read_table", "write_table",
]
