"""Resources and IO: the Parquet IO manager, object stores, the raw-data source and env settings."""

from customer_intel.resources.data_source import RawDataSource
from customer_intel.resources.mlflow_tracker import MLflowTracker
from customer_intel.resources.parquet_io import IncompletePartitionError, ParquetIOManager, read_table, write_table
from customer_intel.resources.settings import Settings
from customer_intel.resources.storage import LocalObjectStore, ObjectStore


def build_resources(settings: Settings | None = None) -> dict:
    """The resources for a deployment, chosen in one place from the environment."""
    settings = settings or Settings.from_env()
    return {
        "mlflow": MLflowTracker(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
            experiment=settings.mlflow_experiment,
            champion_tolerance=settings.champion_tolerance,
        ),
        "io_manager": ParquetIOManager(root=str(settings.warehouse_dir)),
        "raw_data": RawDataSource(
            raw_dir=str(settings.raw_dir),
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
    "Settings", "build_resources", "read_table", "write_table",
]
