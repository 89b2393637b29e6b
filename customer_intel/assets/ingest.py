"""Ingestion assets: validate each raw table against the contract in the columnar engine, store it typed.

Every contract rule is a blocking asset check. A table that breaks a rule fails its step with a
message naming file, column, rule and offending rows; nothing is written, so downstream assets
do not run and the last good outputs stay untouched. A table that passes is written by the engine
as a typed Parquet copy (no pandas round trip) and published beside the previous one: the copy
pins exactly what the features were built from, even when the bank overwrites its export, and
downstream steps read it in place.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, preview, table_schema
from customer_intel.assets.retries import IO_RETRY, transient
from customer_intel.engine import ParquetFile, column_types, ident, register, session
from customer_intel.ingest import CAMPAIGNS, CUSTOMERS, RULES, TRANSACTIONS, RawSourceError, TableContract, rules_for, validate_raw_table
from customer_intel.ingest.reader import RawTable
from customer_intel.ingest.validation import RuleResult, ValidationReport
from customer_intel.monitoring.landing import READ_FILES_METADATA
from customer_intel.resources import RawDataSource, Warehouse
from customer_intel.resources.parquet_io import staging_dir
from customer_intel.resources.settings import ConfigurationError
from customer_intel.table_names import raw_table

GROUP = "ingest"
KINDS = {"duckdb", "parquet"}
ENGINE_INPUT = dg.AssetIn(metadata={"engine": True})  # the published file, read by the engine in place


def _check_specs(contract: TableContract) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(rule, asset=raw_table(contract.name), blocking=True, description=RULES[rule])
        for rule in rules_for(contract)
    ]


def _check_result(result: RuleResult, report: ValidationReport) -> dg.AssetCheckResult:
    metadata: dict = {"rule": RULES[result.rule], "source": report.source}
    if result.violations:
        metadata["violations"] = md("\n\n".join(f"```\n{v.message(report.asset_name)}\n```" for v in result.violations))
        metadata["offending_rows"] = sum(v.n_rows for v in result.violations)
        metadata["columns"] = ", ".join(v.column for v in result.violations)
    return dg.AssetCheckResult(
        check_name=result.rule,
        passed=result.passed or (not result.evaluated and not result.violations),
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.note or None,
        metadata=metadata,
    )


def _stats(path: str, contract: TableContract) -> dict:
    """Row count, customers and time range of the typed file, computed by the engine."""
    timestamps = [c.name for c in contract.columns if c.kind == "timestamp" and c.required]
    with session() as con:
        register(con, "typed", ParquetFile(path))
        columns = column_types(con, "typed")
        parts = ["count(*)", "count(DISTINCT customer_id)" if "customer_id" in columns else "NULL"]
        parts += [f"CAST(min({ident(t)}) AS VARCHAR), CAST(max({ident(t)}) AS VARCHAR)" for t in timestamps if t in columns]
        values = con.execute(f"SELECT {', '.join(parts)} FROM typed").fetchone()
        head = con.execute("SELECT * FROM typed LIMIT 5").df()
    stats = {"dagster/row_count": int(values[0]), "preview": md(preview(head)), "dagster/column_schema": table_schema(head)}
    if values[1] is not None:
        stats["customers"] = int(values[1])
    for i, column in enumerate(t for t in timestamps if t in columns):
        stats[f"{column}_min"], stats[f"{column}_max"] = values[2 + 2 * i], values[3 + 2 * i]
    return stats


def _failure(asset_name: str, message: str, retry: bool = False, **metadata) -> dg.Failure:
    """A failure of the step; not retried by the step's RetryPolicy unless ``retry`` (the endpoint's fault, not the data's)."""
    return dg.Failure(description=f"{asset_name}: {message}. Nothing was written: the last good outputs are untouched.",
                      metadata={k: str(v) for k, v in metadata.items()}, allow_retries=retry)


@dataclass
class ReadTable:
    """A raw table read and judged against its contract: the table, the report (its typed copy at ``report.output``
    when every rule passed) and the content tags of the files read (the landing sensor's baseline)."""

    raw: RawTable
    report: ValidationReport
    read_files: dict[str, str]


def read_and_validate(raw_data: RawDataSource, warehouse: Warehouse, contract: TableContract, output_name: str,
                      known_customer_ids: list | None = None, now: pd.Timestamp | None = None) -> ReadTable:
    """Read a raw table and judge it against the contract, writing the typed copy to the staging file ``output_name``.

    Raises the step's Failure (naming the location, not retried unless the network is to blame) when the
    source cannot be read, or when a table a previous run ingested is no longer found — before anything
    downstream can overwrite a scored partition without it; ``<table>_path=none`` switches it off.
    """
    asset_name = raw_table(contract.name)
    try:
        # the files' content tags before reading them: the landing sensor's baseline (a file rewritten
        # while it is read gets a tag not recorded here, so it still counts as new)
        read_files = {f.uri: f.etag for f in raw_data.table_files(contract.name)}
        raw = raw_data.read(contract)
        limits = raw_data.limits()
    except (RawSourceError, ConfigurationError) as exc:
        raise _failure(asset_name, str(exc).rstrip("."), retry=transient(exc), raw_location=raw_data.raw_location) from exc
    if raw.absent and not raw_data.switched_off(contract.name):
        before = warehouse.manifest(asset_name)
        if before and before.get("rows"):
            raise _failure(asset_name, (
                f"{contract.name} was ingested before ({before['rows']:,} rows, written {before.get('written_at', '?')}) but is not "
                f"found now under {raw_data.raw_location} (looked for {contract.name}.parquet, .csv, .csv.gz or a {contract.name}/ "
                f"folder). To run without it on purpose, set CUSTOMER_INTEL_{contract.name.upper()}_PATH=none"),
                raw_location=raw_data.raw_location)
    output = str(staging_dir() / output_name) if not raw.absent else None
    report = validate_raw_table(raw, contract, now=now if now is not None else pd.Timestamp.now(tz="UTC"),
                                known_customer_ids=known_customer_ids, asset_name=asset_name, limits=limits, output=output)
    return ReadTable(raw, report, read_files)


def ingest_table(
    context: dg.AssetExecutionContext,
    raw_data: RawDataSource,
    warehouse: Warehouse,
    contract: TableContract,
    known_customer_ids: list[ParquetFile] | None = None,
) -> Iterator:
    """Read, validate and yield check results, then the typed table written by the engine (or a Failure)."""
    asset_name = raw_table(contract.name)
    read = read_and_validate(raw_data, warehouse, contract, f"{asset_name}-{context.run.run_id}.parquet", known_customer_ids)
    raw, report, read_files = read.raw, read.report, read.read_files
    for result in report.results:
        # rules skipped because an earlier rule failed stay "not evaluated" in the UI
        if result.evaluated or result.note.startswith("not applicable"):
            yield _check_result(result, report)
    if not report.passed:
        message = report.failure_message()
        context.log.error(message)
        raise dg.Failure(  # a contract violation: the same data breaks it again, so it is never retried
            description=message,
            allow_retries=False,
            metadata={
                "source": report.source,
                "failed_rules": ", ".join(sorted({v.rule for v in report.violations})),
                "columns": ", ".join(sorted({v.column for v in report.violations})),
            },
        )
    metadata: dict = {"source": report.source, "files": len(raw.files)}
    for note in report.notes:
        context.log.warning(f"{asset_name}: {note}")
    if report.notes:
        metadata["notes"] = md("\n".join(f"- {n}" for n in report.notes))
    if raw.absent:
        metadata.update({"dagster/row_count": 0, "dagster/column_schema": table_schema(report.frame),
                         "note": f"{contract.name} not configured: its features are switched off"})
        context.log.warning(metadata["note"])
        yield dg.Output(report.frame, metadata=metadata)
        return
    metadata.update(_stats(report.output.path, contract))
    metadata[READ_FILES_METADATA] = dg.MetadataValue.json(read_files)
    yield dg.Output(report.output, metadata=metadata)


@dg.asset(group_name=GROUP, kinds=KINDS, check_specs=_check_specs(TRANSACTIONS), retry_policy=IO_RETRY)
def raw_transactions(context: dg.AssetExecutionContext, raw_data: RawDataSource, warehouse: Warehouse):
    """Card transactions (customer_id, ts UTC, amount, category, channel), validated against the data contract.

    Purchases are positive amounts, refunds negative. Required for CLTV, churn and embeddings;
    when absent the pipeline runs in profile mode.
    """
    yield from ingest_table(context, raw_data, warehouse, TRANSACTIONS)


@dg.asset(group_name=GROUP, kinds=KINDS, check_specs=_check_specs(CUSTOMERS), retry_policy=IO_RETRY)
def raw_customers(context: dg.AssetExecutionContext, raw_data: RawDataSource, warehouse: Warehouse):
    """Customer profile attributes (one row per customer_id), validated against the data contract.

    The reference schema is the public credit-card file: Avg_Credit_Limit, Total_Credit_Cards,
    Total_visits_bank, Total_visits_online, Total_calls_made. Optional. With a ``valid_from`` column each
    row is a version of a profile and features as of a date take the version valid then; without it
    the table is a snapshot (training leaves it out for past cutoffs unless configured otherwise).
    """
    yield from ingest_table(context, raw_data, warehouse, CUSTOMERS)


@dg.asset(
    group_name=GROUP,
    kinds=KINDS,
    check_specs=_check_specs(CAMPAIGNS),
    ins={"raw_customers": ENGINE_INPUT, "raw_transactions": ENGINE_INPUT},
    retry_policy=IO_RETRY,
)
def raw_campaigns(context: dg.AssetExecutionContext, raw_data: RawDataSource, warehouse: Warehouse,
                  raw_customers: ParquetFile, raw_transactions: ParquetFile):
    """Past campaign treatment and response (customer_id, campaign_id, treated, sent_at, converted, revenue).

    Every customer must exist in raw_customers or raw_transactions. Optional; feeds uplift.
    """
    known = [table for table in (raw_customers, raw_transactions) if table.rows]
    yield from ingest_table(context, raw_data, warehouse, CAMPAIGNS, known_customer_ids=known or None)
