"""Scoring assets: the daily scored_customers table marketing and downstream systems read."""

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.partitions import daily_partitions
from customer_intel.features import SEGMENT_NAMES
from customer_intel.reporting import histograms_markdown, markdown_table
from customer_intel.cltv import REGISTERED_MODEL as CLTV_MODEL_NAME
from customer_intel.resources import MLflowTracker

LEADING_COLUMNS = ["customer_id", "as_of", "feature_mode", "recency", "frequency", "monetary",
                   "r_score", "f_score", "m_score", "rfm_score", "rfm_segment"]


@dg.asset(partitions_def=daily_partitions, group_name="scoring", kinds={"pandas", "parquet"})
def scored_customers(context: dg.AssetExecutionContext, customer_features: pd.DataFrame, mlflow: MLflowTracker) -> dg.Output[pd.DataFrame]:
    """One row per customer for the partition date: RFM, scores and named RFM segment, CLTV from the
    registered champion (``models:/customer_intel_cltv@champion``, never retrained here), then every feature.

    Written as one complete partition under ``scored_customers/date=YYYY-MM-DD/``. Churn, uplift
    and segment scores join this table as their models land.
    """
    frame = customer_features[LEADING_COLUMNS + [c for c in customer_features.columns if c not in LEADING_COLUMNS]]
    cltv_note = "profile mode: CLTV needs transactions"
    if (frame["feature_mode"] == "transactional").all():
        scorer, version = mlflow.load_champion(CLTV_MODEL_NAME)
        if scorer is None:
            cltv_note = f"no CLTV champion registered in {mlflow.tracking_uri}: run training_job first"
            context.log.warning(cltv_note)
        else:
            scores = scorer.score(frame).add_prefix("cltv_").rename(columns={"cltv_cltv": "cltv"})
            scores["cltv_horizon_days"] = scorer.horizon_days
            scores["cltv_model"] = f"{CLTV_MODEL_NAME} v{version.version} ({scorer.champion})"
            frame = pd.concat([frame[LEADING_COLUMNS], scores.set_axis(frame.index), frame.drop(columns=LEADING_COLUMNS)], axis=1)
            cltv_note = scores["cltv_model"].iloc[0]
    segments = frame["rfm_segment"].value_counts().reindex(list(SEGMENT_NAMES), fill_value=0)
    by_segment = pd.DataFrame(
        {
            "customers": segments,
            "share": (segments / max(len(frame), 1)).round(3),
            "mean_recency": frame.groupby("rfm_segment")["recency"].mean().reindex(segments.index),
            "mean_frequency": frame.groupby("rfm_segment")["frequency"].mean().reindex(segments.index),
            "mean_monetary": frame.groupby("rfm_segment")["monetary"].mean().reindex(segments.index),
        }
    )
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "as_of": context.partition_key,
            "cltv_model": cltv_note,
            "rfm_segments": md(markdown_table(by_segment)),
            "distributions": md(histograms_markdown(frame, ["recency", "frequency", "monetary"], f"scored {context.partition_key}")),
            "dagster/column_schema": table_schema(frame),
        },
    )


@dg.asset_check(asset=scored_customers, partitions_def=daily_partitions, blocking=True)
def one_row_per_customer(scored_customers: pd.DataFrame) -> dg.AssetCheckResult:
    """Every customer appears exactly once and has an id."""
    duplicated = int(scored_customers["customer_id"].duplicated().sum())
    missing = int(scored_customers["customer_id"].isna().sum())
    return dg.AssetCheckResult(passed=duplicated == 0 and missing == 0, metadata={"duplicated_ids": duplicated, "null_ids": missing})


@dg.asset_check(asset=scored_customers, partitions_def=daily_partitions, blocking=True)
def valid_rfm_scores(scored_customers: pd.DataFrame) -> dg.AssetCheckResult:
    """R, F and M scores lie in 1..5 and every customer has a named segment."""
    scores = scored_customers[["r_score", "f_score", "m_score"]]
    out_of_range = int((~scores.isin([1, 2, 3, 4, 5])).any(axis=1).sum())
    unnamed = int((~scored_customers["rfm_segment"].isin(SEGMENT_NAMES)).sum())
    return dg.AssetCheckResult(passed=out_of_range == 0 and unnamed == 0, metadata={"scores_out_of_range": out_of_range, "unnamed_segments": unnamed})
