"""The columnar engine: DuckDB connections with bounded memory, UTC time and the machine's threads.

Ingestion checks, the feature builder and the holdout targets run as DuckDB queries over the
tables where they are (a Parquet file, or an in-memory pandas/Arrow table for small inputs and
tests) and hand back one pandas row per customer. Nothing here imports Dagster.

DuckDB spills to ``temp_directory`` when a query needs more than ``memory_limit``, so memory
stays bounded at bank scale. ``CUSTOMER_INTEL_ENGINE_MEMORY_LIMIT`` (default ``3GB``),
``CUSTOMER_INTEL_ENGINE_THREADS`` (default: all cores) and ``CUSTOMER_INTEL_ENGINE_TEMP_DIR``
(default: DuckDB's own ``.tmp`` beside the process) are read when a connection is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

DEFAULT_MEMORY_LIMIT = "3GB"


@dataclass(frozen=True)
class ParquetFile:
    """A table stored as one local Parquet file: what the engine reads without loading it into pandas."""

    path: str
    rows: int | None = None

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        import pyarrow.parquet as pq

        return pq.read_table(self.path, columns=columns).to_pandas()


TableInput = pd.DataFrame | pa.Table | ParquetFile


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection: UTC session time zone, bounded memory, source order kept."""
    config: dict[str, str | int | bool] = {
        "memory_limit": os.environ.get("CUSTOMER_INTEL_ENGINE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT,
        "preserve_insertion_order": True,
    }
    threads = os.environ.get("CUSTOMER_INTEL_ENGINE_THREADS")
    if threads:
        config["threads"] = int(threads)
    temp_dir = os.environ.get("CUSTOMER_INTEL_ENGINE_TEMP_DIR")
    if temp_dir:
        config["temp_directory"] = temp_dir
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # logs, not a terminal
    return con


@contextmanager
def session(con: duckdb.DuckDBPyConnection | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Use ``con``, or open a connection for the block and close it after."""
    if con is not None:
        yield con
        return
    own = connect()
    try:
        yield own
    finally:
        own.close()


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def customer_key(salt: str = "") -> str:
    """The SQL expression of a customer's stable 64-bit key: ``md5(salt || customer_id)``'s upper half.

    The same on every machine, run and DuckDB version (md5, not DuckDB's own ``hash``), and
    independent of row order: the training sample takes the smallest keys (salted with its seed)
    and a scoring shard is a set of the unsalted key's blocks (``CUSTOMER_BLOCKS``).
    """
    return f"md5_number_upper({quote(salt)} || CAST(customer_id AS VARCHAR))"


CUSTOMER_BLOCKS = 65_536
"""Customers fall into this many blocks by key (``customer_key() % CUSTOMER_BLOCKS``); a scoring shard is a set of whole
blocks (``block % shards``), so whatever the number of shards, a block's customers are scored together, and what is
drawn at random per block (posterior simulation) is the same in every layout."""


def customer_block() -> str:
    """The SQL expression of a customer's block (see ``CUSTOMER_BLOCKS``)."""
    return f"CAST({customer_key()} % {CUSTOMER_BLOCKS} AS BIGINT)"


def shard_predicate(shard: int, shards: int) -> str:
    """The SQL predicate of customers in ``shard`` of ``shards`` (their block modulo ``shards``); TRUE for one shard."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    if shards > CUSTOMER_BLOCKS:
        raise ValueError(f"at most {CUSTOMER_BLOCKS:,} shards (a shard is a set of customer blocks); got {shards:,}")
    return "TRUE" if shards == 1 else f"{customer_block()} % {int(shards)} = {int(shard)}"


def customer_blocks(customer_ids) -> np.ndarray:
    """The block of every id, in order (the same md5 key the SQL uses)."""
    ids = pd.DataFrame({"customer_id": pd.Series(customer_ids).astype(str).to_numpy(dtype=object)})
    with session() as con:
        con.register("block_ids", ids)
        blocks = con.execute(f"SELECT {customer_block()} AS block FROM block_ids").fetchnumpy()["block"]
    return np.asarray(blocks, dtype=np.int64)


def ident(name: str) -> str:
    """A SQL identifier, quoted (export columns may hold spaces, dots or quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def register(con: duckdb.DuckDBPyConnection, name: str, table: TableInput | str | Path) -> None:
    """Make ``table`` queryable as ``name``: a view over a Parquet file, or an in-memory frame."""
    if isinstance(table, ParquetFile | str | Path):
        path = table.path if isinstance(table, ParquetFile) else str(table)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS SELECT * FROM read_parquet({quote(path)})")
    elif isinstance(table, pd.DataFrame | pa.Table):
        con.register(name, table)
    else:
        raise TypeError(f"cannot read a {type(table).__name__} as a table: give a DataFrame, an Arrow table or a ParquetFile")


def column_types(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Column name -> DuckDB type of a registered table or view."""
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {ident(name)}").fetchall()}


def has_rows(table: TableInput | None) -> bool:
    """True when ``table`` is given and holds at least one row (without reading a Parquet file's data)."""
    if table is None:
        return False
    if isinstance(table, ParquetFile):
        if table.rows is not None:
            return table.rows > 0
        import pyarrow.parquet as pq

        return pq.read_metadata(table.path).num_rows > 0
    return len(table) > 0
