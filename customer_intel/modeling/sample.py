"""A stable sample of customers for training at bank scale: every table cut to the same customers.

A family's training frame at a million customers costs what its candidates cost on a million
rows, several times over (each origin, each bootstrap); the lifecycle can hand it a sample of
``n`` customers instead, the same ones in every raw table, so a customer's transactions, profile
and campaign rows stay together. The sample is the ``n`` customers with the smallest key
``md5(seed:customer_id)`` (``engine.customer_key``): deterministic across runs and
machines, independent of row order, and stable as the bank grows (a new customer enters the
sample only by displacing the one with the largest key). The filter is a per-row predicate on
that key, so every table keeps its row order. Scoring never samples: it reads every customer.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from customer_intel.engine import ParquetFile, TableInput, column_types, customer_key, ident, register, session


def _key(seed: int) -> str:
    """The SQL expression of a customer's sample key (smaller keys are sampled first)."""
    return customer_key(f"{int(seed)}:")


def _to_pandas(table: TableInput) -> pd.DataFrame:
    if isinstance(table, ParquetFile):
        return table.to_pandas()
    return table if isinstance(table, pd.DataFrame) else table.to_pandas()


def sample_customers(tables: Mapping[str, TableInput | None], customers: int | None, seed: int = 0) -> dict[str, pd.DataFrame | None]:
    """Each table as pandas, cut to the same ``customers`` customers (all of them when None or when there are fewer).

    The customers are those of every table with a ``customer_id`` column (tables without one pass
    whole); ``None`` stays ``None``.
    """
    if customers is not None and customers < 1:
        raise ValueError(f"sample_customers must be a positive number of customers, got {customers}")
    present = {name: table for name, table in tables.items() if table is not None}
    if customers is None or not present:
        return {name: None if table is None else _to_pandas(table) for name, table in tables.items()}
    with session() as con:
        aliases = {name: f"t{i}" for i, name in enumerate(present)}
        keyed = []
        for name, table in present.items():
            register(con, aliases[name], table)
            if "customer_id" in column_types(con, aliases[name]):
                keyed.append(aliases[name])
        if not keyed:
            return {name: None if table is None else _to_pandas(table) for name, table in tables.items()}
        ids = " UNION ".join(f"SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM {ident(a)}" for a in keyed)
        total, threshold = con.sql(
            f"SELECT count(*), max(key) FILTER (WHERE rank <= {int(customers)}) FROM (SELECT {_key(seed)} AS key, "
            f"row_number() OVER (ORDER BY {_key(seed)}) AS rank FROM ({ids}))").fetchall()[0]
        out: dict[str, pd.DataFrame | None] = {}
        for name, table in tables.items():
            if table is None:
                out[name] = None
            elif total <= customers or aliases[name] not in keyed:
                out[name] = _to_pandas(table)
            else:
                out[name] = con.sql(f"SELECT * FROM {ident(aliases[name])} WHERE {_key(seed)} <= {int(threshold)}"
                                    ).to_arrow_table().to_pandas()
    return out
