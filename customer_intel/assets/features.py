"""Feature assets: per-customer RFM and behaviour as of each partition date, from the one builder."""

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.partitions import check_same_ingest, date_and_shard, scoring_partitions
from customer_intel.assets.retries import IO_RETRY, final
from customer_intel.engine import ParquetFile
from customer_intel.features import FeatureInputError, build_customer_features
from customer_intel.features.rfm import PROFILE_BASES
from customer_intel.reporting import histograms_markdown, summary_table
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

SUMMARY_COLUMNS = ["recency", "frequency", "monetary", "T", "spend_trend", "category_entropy", "avg_ticket"]


ENGINE_INPUT = dg.AssetIn(metadata={"engine": True})


@dg.asset(partitions_def=scoring_partitions, group_name="features", kinds={"duckdb", "parquet"}, retry_policy=IO_RETRY,
          ins={"raw_transactions": ENGINE_INPUT, "raw_customers": ENGINE_INPUT})
def customer_features(
    context: dg.AssetExecutionContext, raw_transactions: ParquetFile, raw_customers: ParquetFile
) -> dg.Output[pd.DataFrame]:
    """Per-customer features as of the partition date (inclusive): RFM, the BG/NBD (x, t_x, T) triple,
    spend trend, category entropy, channel shares, profile attributes, RFM scores and segment.

    Built by the same function that builds the training frames, so training and scoring agree; the
    engine reads the typed raw tables in place. Profile attributes are the versions valid on the date
    when raw_customers has valid_from, else the snapshot. Without transactions it runs in profile
    mode (RFM proxies from the credit-card profile). With ``CUSTOMER_INTEL_SCORING_SHARDS`` > 1 a
    partition is a date x shard and holds that shard's customers (their R, F and M quintile scores
    rank within the shard; ``scored_customers`` ranks the whole date).
    """
    day, shard = date_and_shard(context)
    check_same_ingest(context, (RAW_TRANSACTIONS, RAW_CUSTOMERS))
    try:
        features = build_customer_features(raw_transactions, raw_customers, day, shard=shard)
    except FeatureInputError as exc:
        raise final(f"customer_features for {context.partition_key}: {exc}") from exc
    frame = features.frame
    for note in features.notes:
        context.log.info(note)
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "as_of": str(features.as_of.date()),
            **({"shard": f"{shard[0]} of {shard[1]}"} if shard[1] > 1 else {}),
            "feature_mode": features.mode,
            "profile_attributes": PROFILE_BASES[features.profile_basis],
            "channels": ", ".join(features.channels) or "none",
            "notes": md("\n".join(f"- {n}" for n in features.notes) or "none"),
            "feature_summary": md(summary_table(frame, SUMMARY_COLUMNS)),
            "distributions": md(histograms_markdown(frame, ["recency", "frequency", "monetary"], f"as of {features.as_of.date()}")),
            "dagster/column_schema": table_schema(frame),
        },
    )
