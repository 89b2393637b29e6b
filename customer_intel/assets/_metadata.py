"""Dagster metadata helpers shared by the asset modules."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from customer_intel.features.rfm import COLUMN_DESCRIPTIONS
from customer_intel.reporting import markdown_table

_TYPE_NAMES = {"i": "int", "u": "int", "f": "float", "b": "bool", "M": "timestamp"}


def md(text: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(text)


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """Column names, types and (for known columns) descriptions, shown in the asset's UI page."""
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = _TYPE_NAMES.get(getattr(dtype, "kind", "O"), "string")
        columns.append(dg.TableColumn(name=str(name), type=kind, description=COLUMN_DESCRIPTIONS.get(str(name))))
    return dg.TableSchema(columns=columns)


def preview(frame: pd.DataFrame, rows: int = 5) -> str:
    return markdown_table(frame.head(rows), index=False)
