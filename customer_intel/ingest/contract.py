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
    finite: bool = False  # float columns whose values must be finite numbers within the plausible bound
    not_in_future: bool = False  # timestamps that may not lie after the ingestion time, nor before the date floor


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[ColumnSpec, ...]
    keep_extra_columns: bool = False  # profile tables keep any attribute the bank sends
    unique_key: tuple[str, ...] = ()  # one row per key (customers)
    no_duplicate_rows: bool = False  # exact duplicate rows are an export error (transactions)
    ids_must_be_known: bool = False  # customer_id must exist in customers or transactions
    validity_column: str | None = None  # with it, a key may repeat once per version (valid_from)
    one_of: tuple[tuple[str, ...], ...] = ()  # groups of optional columns of which a file must hold at least one

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


# Rule names double as the asset-check names in the UI.
RULES: dict[str, str] = {
    "non_empty": "the file must contain at least one row",
    "well_formed_rows": "every row must parse under a header that names each column once (balanced quotes, one value per column, UTF-8)",
    "required_columns": "every required column must be present (after the column mapping)",
    "valid_types": "values must parse as the column's type",
    "non_null_values": "required values must not be null",
    "finite_amounts": "amounts must be finite numbers",
    "plausible_amounts": "amounts must lie within the plausible bound (CUSTOMER_INTEL_MAX_ABS_AMOUNT)",
    "no_duplicate_rows": "a transaction must not appear twice",
    "unique_customer_ids": "one row per customer",
    "no_future_timestamps": "timestamps must not lie in the future of the as-of time",
    "no_placeholder_dates": "timestamps must not lie before the date floor (CUSTOMER_INTEL_MIN_DATE)",
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
    columns=(
        ColumnSpec("customer_id", "string"),
        # optional: when present, each row is a version of the profile valid from that time on,
        # and features as of a date take the version valid then (else the table is a snapshot)
        ColumnSpec("valid_from", "timestamp", required=False, not_in_future=True),
    ),
    keep_extra_columns=True,
    unique_key=("customer_id",),
    validity_column="valid_from",
)

CAMPAIGNS = TableContract(
    name="campaigns",
    columns=(
        ColumnSpec("customer_id", "string"),
        ColumnSpec("campaign_id", "string"),
        # the assignment: treated 0/1, or a treatment-arm label per row (several offers against one control,
        # whose label the uplift training frame is configured with); a file holds at least one of them
        ColumnSpec("treated", "flag", required=False),
        ColumnSpec("arm", "string", required=False),
        ColumnSpec("sent_at", "timestamp", not_in_future=True),
        ColumnSpec("converted", "flag"),
        ColumnSpec("revenue", "float", required=False, nullable=True, finite=True),
    ),
    ids_must_be_known=True,
    one_of=(("treated", "arm"),),
)

CONTRACTS: dict[str, TableContract] = {c.name: c for c in (TRANSACTIONS, CUSTOMERS, CAMPAIGNS)}


def rules_for(contract: TableContract) -> list[str]:
    """The rules that apply to a table, in the order they are evaluated."""
    rules = ["non_empty", "well_formed_rows", "required_columns", "valid_types", "non_null_values"]
    if any(c.finite for c in contract.columns):
        rules += ["finite_amounts", "plausible_amounts"]
    if contract.no_duplicate_rows:
        rules.append("no_duplicate_rows")
    if contract.unique_key:
        rules.append("unique_customer_ids")
    if any(c.not_in_future for c in contract.columns):
        rules += ["no_future_timestamps", "no_placeholder_dates"]
    if contract.ids_must_be_known:
        rules.append("known_customer_ids")
    return rules


DUPLICATE_KEY_POLICIES = ("refuse", "keep_last")


@dataclass(frozen=True)
class IngestLimits:
    """The configurable bounds of the contract's rules (README: CUSTOMER_INTEL_MAX_ABS_AMOUNT, _MIN_DATE, _CUSTOMERS_DUPLICATES).

    ``max_abs_amount``: an amount further from zero is an export error (e.g. 1.7e308 overflows every
    sum to inf). ``min_date``: an earlier timestamp is a placeholder (1900-01-01, 1970-01-01 epoch
    zero), not a purchase. ``duplicate_keys``: ``refuse`` a repeated customer key, or ``keep_last``
    (the last row of each key in file order, as profile exports that append updates need).
    """

    max_abs_amount: float = 1e9
    min_date: str = "1980-01-01"
    duplicate_keys: str = "refuse"

    def __post_init__(self):
        if not self.max_abs_amount > 0:
            raise ValueError(f"the plausible amount bound must be positive, got {self.max_abs_amount!r}")
        if self.duplicate_keys not in DUPLICATE_KEY_POLICIES:
            raise ValueError(f"duplicate_keys must be one of {', '.join(DUPLICATE_KEY_POLICIES)}, got {self.duplicate_keys!r}")
