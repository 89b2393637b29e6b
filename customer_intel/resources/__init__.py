"""Resources and IO: the Parquet IO manager, object stores, the raw-data source and env settings."""

from dagster_aws.s3 import S3Resource

from customer_intel.resources.data_source import RawDataSource
from customer_intel.resources.mlflow_tracker import MLflowTracker
from customer_intel.resources.parquet_io import ParquetIOManager
from customer_intel.resources.settings import Settings
from customer_intel.resources.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from customer_intel.resources.tables import IncompletePartitionError, read_table, write_table
from customer_intel.resources.warehouse import Warehouse


def build_resources(settings: Settings | None = None) -> dict:
    """The resources for a deployment, chosen in one place from the environment.

    ``CUSTOMER_INTEL_ENV=local`` (default): folders under ``data/``. ``s3``: raw data and output
    tables in ``CUSTOMER_INTEL_S3_BUCKET`` through one boto3 client configuration (endpoint for
    MinIO, credentials from the standard AWS chain: never in code, config or logs).
    """
    settings = settings or Settings.from_env()
    s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region) if settings.env == "s3" else None
    warehouse = Warehouse(root=settings.warehouse_root, s3=s3)
    return {
        "warehouse": warehouse,
        "mlflow": MLflowTracker(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
            experiment=settings.mlflow_experiment,
            champion_tolerance=settings.champion_tolerance,
        ),
        "io_manager": ParquetIOManager(warehouse=warehouse),
        "raw_data": RawDataSource(
            raw_dir=settings.raw_dir,
            s3=s3,
            transactions_path=settings.table_paths["transactions"],
            customers_path=settings.table_paths["customers"],
            campaigns_path=settings.table_paths["campaigns"],
            transactions_columns=settings.column_mappings["transactions"],
            customers_columns=settings.column_mappings["customers"],
            campaigns_columns=settings.column_mappings["campaigns"],
        ),
    }


__all__ = [
    "IncompletePartitionError", "MLflowTracker", "LocalObjectStore", "ObjectStore", "ParquetIOManager", "RawDataSource",
    "S3ObjectStore", "Settings", "Warehouse", "build_resources", "read_table", "write_table",
]
