"""The daily scored_customers table marketing and downstream systems read: features joined with every family's scores."""

from collections.abc import Sequence

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.factory import SCORING_GROUP, ScoreContribution
from customer_intel.assets.partitions import SHARDS, daily_partitions, every_shard, merge_shards
from customer_intel.assets.retries import IO_RETRY, final
from customer_intel.features import SEGMENT_NAMES, add_rfm_scores, net_spend_to_date
from customer_intel.features.rfm import profile_attributes
from customer_intel.reporting import histograms_markdown, markdown_table
from customer_intel.resources.settings import export_profile_columns
from customer_intel.table_names import CUSTOMER_FEATURES, SCORED_CUSTOMERS

LEADING_COLUMNS = ["customer_id", "as_of", "feature_mode", "recency", "frequency", "monetary",
                   "r_score", "f_score", "m_score", "rfm_score", "rfm_segment"]


def join_scores(features: pd.DataFrame, family_scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The leading RFM columns, each family's score columns (in the order given), then every other feature.

    Left join on ``customer_id``: every customer of the day's features appears once, whatever a
    family scored; a family's frame must not repeat a customer.
    """
    frame = features[LEADING_COLUMNS].reset_index(drop=True)
    for family, scores in family_scores.items():
        if scores["customer_id"].duplicated().any():
            raise ValueError(f"{family} scores repeat customers: {scores.loc[scores['customer_id'].duplicated(), 'customer_id'].head(5).tolist()}")
        scores = scores.astype({"customer_id": frame["customer_id"].dtype})  # a join never changes the id's type
        frame = frame.merge(scores, on="customer_id", how="left", validate="one_to_one")
    rest = features.drop(columns=LEADING_COLUMNS).reset_index(drop=True)
    return pd.concat([frame, rest], axis=1)


def whole_date(features, family_scores: dict) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The day's features and every family's scores over all its shards (as loaded by ``every_shard``).

    With one shard they are as built. With several, the rows are put in customer order and the
    R, F and M quintile scores (and the RFM segment) are ranked again over the whole date: a
    shard's own quintiles rank within the shard. Every other column is the customer's own, so the
    table equals the unsharded one.
    """
    if SHARDS == 1:
        return features, family_scores
    merged = merge_shards(features).sort_values("customer_id", kind="stable").reset_index(drop=True)
    return add_rfm_scores(merged, recency_lower_is_better=True), {family: merge_shards(scores) for family, scores in family_scores.items()}


def _segment_summary(frame: pd.DataFrame) -> pd.DataFrame:
    segments = frame["rfm_segment"].value_counts().reindex(list(SEGMENT_NAMES), fill_value=0)
    grouped = frame.groupby("rfm_segment")
    return pd.DataFrame({
        "customers": segments,
        "share": (segments / max(len(frame), 1)).round(3),
        **{f"mean_{c}": grouped[c].mean().reindex(segments.index) for c in ("recency", "frequency", "monetary")},
    })


def _model_segment_summary(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Per named segment of the segmentation champion: size, share, outliers and every family's mean score
    (CLTV, and churn risk once it exists) — the marketer's profile table on the day's customers."""
    if "segment_name" not in frame.columns or frame["segment_name"].isna().all():
        return None
    grouped = frame.groupby("segment_name", dropna=True)
    table = pd.DataFrame({"customers": grouped.size(), "share": (grouped.size() / len(frame)).round(3)})
    if "segment_outlier" in frame.columns:
        table["outliers"] = grouped["segment_outlier"].apply(lambda v: int(pd.Series(v).fillna(False).astype(bool).sum()))
    for column in ("cltv", "cltv_expected_purchases", "churn_probability", "monetary"):
        if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
            table[f"mean_{column}"] = grouped[column].mean()
    spend = net_spend_to_date(frame)
    if spend is not None and spend.sum() > 0:
        table["revenue_share"] = (spend.groupby(frame["segment_name"]).sum() / spend.sum()).round(3)
    return table.sort_values("customers", ascending=False)


def build_scored_customers(contributions: Sequence[ScoreContribution]) -> dg.AssetsDefinition:
    """``scored_customers`` over the given families' daily scores (one input per family)."""
    ins = {"features": every_shard(CUSTOMER_FEATURES), **{c.family: every_shard(c.asset) for c in contributions}}
    families = ", ".join(f"`{c.asset}`" for c in contributions) or "no model family"

    checks = [dg.AssetCheckSpec(check.__name__, asset=SCORED_CUSTOMERS, blocking=True, description=check.__doc__,
                                partitions_def=daily_partitions)
              for check in SCORED_CUSTOMERS_CHECKS]

    @dg.asset(name=SCORED_CUSTOMERS, partitions_def=daily_partitions, group_name=SCORING_GROUP, kinds={"pandas", "parquet"}, ins=ins,
              retry_policy=IO_RETRY,
              check_specs=checks,
              description="One row per customer for the partition date: RFM, scores and named RFM segment, then every model "
              f"family's scores from its registered champion ({families}; null where a family has no champion), then every "
              "feature (of the bank's profile attributes only those CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS names). Written as one complete partition under `scored_customers/date=YYYY-MM-DD/`; with scoring shards, "
              "built from every shard of the date (R, F and M quintiles ranked over the whole date).")
    def scored_customers(context: dg.AssetExecutionContext, features, **family_scores):
        features, family_scores = whole_date(features, family_scores)
        ordered = {c.family: family_scores[c.family] for c in contributions}
        frame = join_scores(features, ordered)
        # an export: the bank's profile attributes leave it only when named (CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS)
        allowed = export_profile_columns()
        profile = profile_attributes(features.columns)
        withheld = [c for c in profile if c not in allowed]
        frame = frame.drop(columns=withheld)
        models = {}
        for contribution in contributions:
            labels = frame[contribution.columns[-1]].dropna().unique()
            models[contribution.family] = ", ".join(map(str, labels)) or f"none: see {contribution.asset}"
        checks = [check(frame) for check in SCORED_CUSTOMERS_CHECKS]
        failed = [c for c in checks if not c.passed]
        if failed:  # judged before the write: a table that fails them is never published, the last good one stays
            raise final(f"{SCORED_CUSTOMERS} {context.partition_key} not published: " + "; ".join(
                f"{c.check_name} failed ({', '.join(f'{k}={v.value}' for k, v in c.metadata.items())})" for c in failed))
        segments = _model_segment_summary(frame)
        yield dg.Output(frame, metadata={
            "dagster/row_count": len(frame),
            "as_of": context.partition_key,
            **({"shards": SHARDS} if SHARDS > 1 else {}),
            **{f"{family}_model": label for family, label in models.items()},
            "profile_attributes": (f"exported: {', '.join(c for c in profile if c in allowed) or 'none'}; withheld: "
                                   f"{len(withheld)} (CUSTOMER_INTEL_EXPORT_PROFILE_COLUMNS names the ones to export)"),
            "rfm_segments": md(markdown_table(_segment_summary(frame))),
            **({"model_segments": md(markdown_table(segments))} if segments is not None else {}),
            "distributions": md(histograms_markdown(frame, ["recency", "frequency", "monetary"], f"scored {context.partition_key}")),
            "dagster/column_schema": table_schema(frame),
        })
        yield from checks

    return scored_customers


def one_row_per_customer(scored_customers: pd.DataFrame) -> dg.AssetCheckResult:
    """Every customer appears exactly once and has an id."""
    duplicated = int(scored_customers["customer_id"].duplicated().sum())
    missing = int(scored_customers["customer_id"].isna().sum())
    return dg.AssetCheckResult(check_name="one_row_per_customer", passed=duplicated == 0 and missing == 0,
                               metadata={"duplicated_ids": duplicated, "null_ids": missing})


def valid_rfm_scores(scored_customers: pd.DataFrame) -> dg.AssetCheckResult:
    """R, F and M scores lie in 1..5 and every customer has a named segment."""
    scores = scored_customers[["r_score", "f_score", "m_score"]]
    out_of_range = int((~scores.isin([1, 2, 3, 4, 5])).any(axis=1).sum())
    unnamed = int((~scored_customers["rfm_segment"].isin(SEGMENT_NAMES)).sum())
    return dg.AssetCheckResult(check_name="valid_rfm_scores", passed=out_of_range == 0 and unnamed == 0,
                               metadata={"scores_out_of_range": out_of_range, "unnamed_segments": unnamed})


SCORED_CUSTOMERS_CHECKS = (one_row_per_customer, valid_rfm_scores)
"""The blocking checks of scored_customers, run in its own step on the frame before it is written (no second read of a
million rows, no step process of their own): a frame that fails one is not published, and campaign_targets and
lookalike_audience run only when both pass."""
