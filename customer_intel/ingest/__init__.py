"""Raw-table ingestion: the data contract, the one reader and the validation rules (no Dagster here)."""

from customer_intel.ingest.contract import CAMPAIGNS, CONTRACTS, CUSTOMERS, RULES, TRANSACTIONS, TableContract, rules_for
from customer_intel.ingest.reader import (
    RawSourceError,
    RawTable,
    SourceFiles,
    is_table_file_name,
    list_source_files,
    read_raw_table,
)
from customer_intel.ingest.validation import ValidationReport, Violation, validate_raw_table

__all__ = [
    "CAMPAIGNS", "CONTRACTS", "CUSTOMERS", "RULES", "TRANSACTIONS", "RawSourceError", "RawTable",
    "SourceFiles", "TableContract", "ValidationReport", "Violation", "is_table_file_name", "list_source_files",
    "read_raw_table",
    "rules_for", "validate_raw_table",
]
