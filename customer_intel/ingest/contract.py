"""The raw-table contract of DATA_CONTRACT.md as data: columns, types and the rules checked at ingestion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["string", "timestamp", "float", "flag"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    required: bool = True
    nullable: bool = False
    finite: bool = False  # float columns whose values must be finite numbers
    not_in_future: bool = False  # timestamps that may not lie after the ingestion time


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[ColumnSpec, ...]
    keep_extra_columns: bool = False  # profile tables keep any attribute the bank sends
    unique_key: tuple[str, ...] = ()  # one row per key (customers)
    no_duplicate_rows: bool = False  # exact duplicate rows are an export error (transactions)
    ids_must_be_known: bool = False  # customer_id must exist in customers or transactions

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


# Rule names double as the asset-check names in the UI.
RULES: dict[str, str] = {
    "non_empty": "the file must contain at least one row",
    "required_columns": "every required column must be present (after the column mapping)",
    "valid_types": "values must parse as the column's type",
    "non_null_values": "required values must not be null",
    "finite_amounts": "amounts must be finite numbers",
    "no_duplicate_rows": "a transaction must not appear twice",
    "unique_customer_ids": "one row per customer",
    "no_future_timestamps": "timestamps must not lie in the future of the as-of time",
    "known_customer_ids": "every customer must exist in customers or transactions",
}

TRANSACTIONS = TableContract(
    name="transactions",
    columns=(
        ColumnSpec("customer_id", "string"),
        ColumnSpec("ts", "timestamp", not_in_future=True),
        ColumnSpec("amount", "float", finite=True),
        ColumnSpec("category", "string", required=False, nullable=True),
        ColumnSpec("channel", "string", required=False, nullable=True),
        # optional, but when an export has one, two identical-looking purchases are told apart by it
        ColumnSpec("transaction_id", "string", required=False, nullable=True),
    ),
    no_duplicate_rows=True,
)

CUSTOMERS = TableContract(
    name="customers",
    columns=(ColumnSpec("customer_id", "string"),),
    keep_extra_columns=True,
    unique_key=("customer_id",),
)

CAMPAIGNS = TableContract(
    name="campaigns",
    columns=(
        ColumnSpec("customer_id", "string"),
        ColumnSpec("campaign_id", "string"),
        ColumnSpec("treated", "flag"),
        ColumnSpec("sent_at", "timestamp", not_in_future=True),
        ColumnSpec("converted", "flag"),
        ColumnSpec("revenue", "float", required=False, nullable=True, finite=True),
    ),
    ids_must_be_known=True,
)

CONTRACTS: dict[str, TableContract] = {c.name: c for c in (TRANSACTIONS, CUSTOMERS, CAMPAIGNS)}


def rules_for(contract: TableContract) -> list[str]:
    """The rules that apply to a table, in the order they are evaluated."""
    rules = ["non_empty", "required_columns", "valid_types", "non_null_values"]
    if any(c.finite for c in contract.columns):
        rules.append("finite_amounts")
    if contract.no_duplicate_rows:
        rules.append("no_duplicate_rows")
    if contract.unique_key:
        rules.append("unique_customer_ids")
    if any(c.not_in_future for c in contract.columns):
        rules.append("no_future_timestamps")
    if contract.ids_must_be_known:
        rules.append("known_customer_ids")
    return rules
