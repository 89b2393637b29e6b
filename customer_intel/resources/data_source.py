"""The raw-data source resource: where the bank's three tables are and what their columns are called."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from customer_intel.ingest import RawTable, TableContract, read_raw_table
from customer_intel.ingest.reader import TABLE_SUFFIXES

NOT_CONFIGURED = {"", "none", "off"}


class RawDataSource(dg.ConfigurableResource):
    """Locates and reads the raw tables.

    A table is found by name in ``raw_dir`` (``transactions.parquet``, ``transactions.csv`` or a
    ``transactions/`` folder of such files) unless ``<table>_path`` names a file or folder
    explicitly; an explicit path that does not exist is an error, a table that is neither
    configured nor found is absent and its features are switched off. Set a path to ``none`` to
    switch a table off. ``<table>_columns`` maps contract names to the export's names, e.g.
    ``{"customer_id": "Customer Key"}``.
    """

    raw_dir: str
    transactions_path: str | None = None
    customers_path: str | None = None
    campaigns_path: str | None = None
    transactions_columns: dict[str, str] = {}
    customers_columns: dict[str, str] = {}
    campaigns_columns: dict[str, str] = {}

    def location(self, table: str) -> str | None:
        explicit = getattr(self, f"{table}_path")
        if explicit is not None:
            return None if explicit.strip().lower() in NOT_CONFIGURED else explicit
        root = Path(self.raw_dir)
        for candidate in [root / f"{table}{suffix}" for suffix in TABLE_SUFFIXES] + [root / table]:
            if candidate.exists():
                return str(candidate)
        return None

    def read(self, contract: TableContract) -> RawTable:
        return read_raw_table(contract, self.location(contract.name), getattr(self, f"{contract.name}_columns"))
