"""Ingestion assets: read each raw table once, validate it against the contract, store it typed.

Every contract rule is a blocking asset check. A table that breaks a rule fails its step with a
message naming file, column, rule and offending rows; nothing is written, so downstream assets
do not run and the last good outputs stay untouched.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, preview, table_schema
from customer_intel.ingest import CAMPAIGNS, CUSTOMERS, RULES, TRANSACTIONS, RawSourceError, TableContract, rules_for, validate_raw_table
from customer_intel.ingest.validation import RuleResult, ValidationReport
from customer_intel.resources import RawDataSource
from customer_intel.table_names import raw_table

GROUP = "ingest"
IDS_ONLY = dg.AssetIn(metadata={"columns": ["customer_id"]})


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


def ingest_table(
    context: dg.AssetExecutionContext,
    raw_data: RawDataSource,
    contract: TableContract,
    known_customer_ids: pd.Index | None = None,
) -> Iterator:
    """Read, validate and yield check results, then the typed table (or a Failure)."""
    asset_name = raw_table(contract.name)
    try:
        raw = raw_data.read(contract)
    except RawSourceError as exc:
        raise dg.Failure(
            description=f"{asset_name}: {exc}. Nothing was written: the last good outputs are untouched.",
            metadata={"location": str(raw_data.location(contract.name))},
        ) from exc
    report = validate_raw_table(
        raw, contract, now=pd.Timestamp.now(tz="UTC"), known_customer_ids=known_customer_ids, asset_name=asset_name
    )
    for result in report.results:
        # rules skipped because an earlier rule failed stay "not evaluated" in the UI
        if result.evaluated or result.note.startswith("not applicable"):
            yield _check_result(result, report)
    if not report.passed:
        message = report.failure_message()
        context.log.error(message)
        raise dg.Failure(
            description=message,
            metadata={
                "source": report.source,
                "failed_rules": ", ".join(sorted({v.rule for v in report.violations})),
                "columns": ", ".join(sorted({v.column for v in report.violations})),
            },
        )
    frame = report.frame
    metadata: dict = {
        "dagster/row_count": len(frame),
        "source": report.source,
        "files": len(raw.files),
        "dagster/column_schema": table_schema(frame),
    }
    if raw.absent:
        metadata["note"] = f"{contract.name} not configured: its features are switched off"
        context.log.warning(metadata["note"])
    else:
        metadata["preview"] = md(preview(frame))
        if "customer_id" in frame:
            metadata["customers"] = int(frame["customer_id"].nunique())
    for column in ("ts", "sent_at"):
        if column in frame and len(frame):
            metadata[f"{column}_min"] = str(frame[column].min())
            metadata[f"{column}_max"] = str(frame[column].max())
    yield dg.Output(frame, metadata=metadata)


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, check_specs=_check_specs(TRANSACTIONS))
def raw_transactions(context: dg.AssetExecutionContext, raw_data: RawDataSource):
    """Card transactions (customer_id, ts UTC, amount, category, channel), validated against the data contract.

    Purchases are positive amounts, refunds negative. Required for CLTV, churn and embeddings;
    when absent the pipeline runs in profile mode.
    """
    yield from ingest_table(context, raw_data, TRANSACTIONS)


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, check_specs=_check_specs(CUSTOMERS))
def raw_customers(context: dg.AssetExecutionContext, raw_data: RawDataSource):
    """Customer profile attributes (one row per customer_id), validated against the data contract.

    The reference schema is the public credit-card file: Avg_Credit_Limit, Total_Credit_Cards,
    Total_visits_bank, Total_visits_online, Total_calls_made. Optional.
    """
    yield from ingest_table(context, raw_data, CUSTOMERS)


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    check_specs=_check_specs(CAMPAIGNS),
    ins={"raw_customers": IDS_ONLY, "raw_transactions": IDS_ONLY},
)
def raw_campaigns(
    context: dg.AssetExecutionContext, raw_data: RawDataSource, raw_customers: pd.DataFrame, raw_transactions: pd.DataFrame
):
    """Past campaign treatment and response (customer_id, campaign_id, treated, sent_at, converted, revenue).

    Every customer must exist in raw_customers or raw_transactions. Optional; feeds uplift.
    """
    present = [frame["customer_id"] for frame in (raw_customers, raw_transactions) if len(frame)]
    known = pd.Index(pd.concat(present).dropna().unique()) if present else None
    yield from ingest_table(context, raw_data, CAMPAIGNS, known_customer_ids=known)
