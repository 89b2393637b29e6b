"""Customer embeddings on the shared lifecycle, and the daily lookalike audience over their vectors."""

import time

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.factory import SCORING_GROUP, CandidatesConfig, FamilySpec, SampledFrameConfig, champion_assets
from customer_intel.assets.partitions import daily_partitions, every_shard, merge_shards
from customer_intel.assets.retries import IO_RETRY, final
from customer_intel.embeddings.candidates import DEFAULT_PROFILE_WEIGHT
from customer_intel.embeddings.family import EMBEDDINGS
from customer_intel.embeddings.lookalike import AUDIENCE_COLUMNS, LookalikeInputError, SeedQuery, lookalike_audience, seed_customers
from customer_intel.reporting import markdown_table
from customer_intel.table_names import (
    CUSTOMER_EMBEDDINGS,
    LOOKALIKE_AUDIENCE,
    RAW_CAMPAIGNS,
    RAW_CUSTOMERS,
    RAW_TRANSACTIONS,
    SCORED_CUSTOMERS,
)
from customer_intel.uplift.frames import CONTROL, UpliftInputError, campaign_assignments


class EmbeddingFrameConfig(SampledFrameConfig):
    """Where the embeddings' backtest windows lie."""

    cutoff: str | None = Field(default=None, description="YYYY-MM-DD: the as-of day of the fit and validation rows; default: the last "
                               "data day minus two horizons (one validation window, one test window), or one when history is short")
    horizon_days: int = Field(default=90, description="the window whose top category the neighbours predict")
    snapshot_profile_in_training: bool = Field(
        default=False, description="give the fit, validation and test rows raw_customers' attributes although the table is a snapshot "
        "(no valid_from): today's values at past as-of days; without it the profile candidates are skipped")


class EmbeddingModelsConfig(CandidatesConfig):
    """Which embeddings to compare and the Customer2Vec settings."""

    include: list[str] | None = Field(default=None, description="which candidates to fit (rfm_behaviour, profile, all_features, "
                                      "category_shares, customer2vec, customer2vec_profile; random is always compared); default: all")
    dim: int = Field(default=64, description="dimension of the Customer2Vec vectors")
    epochs: int = Field(default=30, description="most Customer2Vec epochs (early stopping on held-out tokens usually ends sooner)")
    profile_weight: float = Field(default=DEFAULT_PROFILE_WEIGHT, description="weight of the profile block beside the Customer2Vec "
                                  "block in customer2vec_profile (both L2-normalised first)")
    seed: int = Field(default=0, description="seed of Customer2Vec, of the random baseline and of the bootstrap")
    index_method: str = Field(default="hnsw", description="the champion's index above 200,000 customers: hnsw (the faster on "
                              "Customer2Vec vectors) or ivf (the faster on strongly clustered vectors); either is tuned to recall@10 "
                              ">= 0.95 against exact search on the bank's own vectors")
    min_lift_over_popularity: float | None = Field(
        default=None, description="the floor on a champion's neighbours: next-category accuracy minus popularity's (default 0: "
        "no worse than giving everyone the most common category; -1 judges lookalikes alone)")
    select_on: str | None = Field(
        default=None, description="the champion's metric: lookalike (the treated response lift of audiences seeded by a past "
        "campaign's responders) or next_category (the neighbours' vote on what a customer buys most next); default: lookalike "
        "when the training frame holds a campaign sent after its last as-of day, else next_category")


embeddings_assets = champion_assets(FamilySpec(EMBEDDINGS, inputs=(RAW_TRANSACTIONS, RAW_CUSTOMERS, RAW_CAMPAIGNS), frame_config=EmbeddingFrameConfig,
                                               models_config=EmbeddingModelsConfig, scores_asset=CUSTOMER_EMBEDDINGS,
                                               score_inputs=(RAW_TRANSACTIONS,), in_scored_customers=False,
                                               scores_priority=10))  # the longest daily step (Customer2Vec inference)


SCORED_COLUMNS_READ = ("customer_id", "segment_name", "rfm_segment", "cltv")  # seeds by segment, and the profile summary


class LookalikeConfig(dg.Config):
    """The seed list (one of campaign, segment or ids; default: the best responders of the latest campaign sent by the partition
    day that has any) and the audience size."""

    seed_campaign: str | None = Field(default=None, description="campaign_id whose treated converters seed the audience")
    seed_segment: str | None = Field(default=None, description="segment_name whose top-CLTV customers seed the audience")
    seed_ids: list[str] | None = Field(default=None, description="explicit seed customer ids")
    seed_size: int = Field(default=500, description="at most this many seeds (best responders by revenue, or top CLTV, first)")
    k: int = Field(default=1000, description="audience size: the k most similar non-seed customers")
    control_arm: str = Field(default=CONTROL, description="the control arm label when raw_campaigns has an arm column")


def _campaigns_until(campaigns: pd.DataFrame, day: str, control_arm: str) -> pd.DataFrame | None:
    """The campaigns sent on or before the partition day (a backfill never seeds from a later one), as assignments."""
    if campaigns is None or not len(campaigns):
        return None
    rows = campaign_assignments(campaigns, control_arm)
    return rows.loc[rows["sent_at"] < pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)].reset_index(drop=True)


def _query(config: LookalikeConfig, campaigns: pd.DataFrame | None) -> SeedQuery | None:
    """The configured seed query; by default the latest campaign (sent by the day) with treated converters, else None."""
    if config.seed_campaign or config.seed_segment or config.seed_ids:
        return SeedQuery(config.seed_campaign, config.seed_segment, tuple(config.seed_ids) if config.seed_ids else None, config.seed_size)
    if campaigns is None or not len(campaigns):
        return None
    responders = campaigns.loc[(campaigns["treated"] == 1) & (campaigns["converted"] == 1)]
    if not len(responders):
        return None
    latest = responders.sort_values(["sent_at", "campaign_id"]).iloc[-1]["campaign_id"]
    return SeedQuery(campaign=str(latest), seed_size=config.seed_size)


def _profile_summary(scored: pd.DataFrame, audience, seeds) -> pd.DataFrame | None:
    """Audience, seeds and everyone side by side: the most common segment and RFM segment, and the mean CLTV."""
    ids = scored["customer_id"].astype(str)
    groups = {"audience": ids.isin(pd.Index(audience).astype(str)), "seeds": ids.isin(pd.Index(seeds).astype(str)), "everyone": ids.notna()}
    rows = {}
    for column in ("segment_name", "rfm_segment"):
        if column in scored.columns and scored[column].notna().any():
            rows[f"most common {column}"] = {g: (scored.loc[m, column].mode().iloc[0] if scored.loc[m, column].notna().any() else None)
                                            for g, m in groups.items()}
    if "cltv" in scored.columns and scored["cltv"].notna().any():
        rows["mean cltv"] = {g: round(float(scored.loc[m, "cltv"].mean()), 2) for g, m in groups.items()}
    return pd.DataFrame(rows).T if rows else None


def _empty(note: str, partition: str, context) -> dg.Output:
    context.log.warning(f"{LOOKALIKE_AUDIENCE}: {note}; the list is empty")
    frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(AUDIENCE_COLUMNS, (object, "int64", float, object, object))})
    return dg.Output(frame, metadata={"dagster/row_count": 0, "as_of": partition, "note": note})


@dg.asset(name=LOOKALIKE_AUDIENCE, partitions_def=daily_partitions, group_name=SCORING_GROUP, kinds={"faiss", "pandas", "parquet"},
          retry_policy=IO_RETRY,
          ins={"embeddings": every_shard(CUSTOMER_EMBEDDINGS), "campaigns": dg.AssetIn(RAW_CAMPAIGNS),
               "scored": dg.AssetIn(SCORED_CUSTOMERS, metadata={"columns": list(SCORED_COLUMNS_READ)})})
def lookalike_audience_asset(context: dg.AssetExecutionContext, config: LookalikeConfig, embeddings, scored: pd.DataFrame,
                             campaigns: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """The lookalike audience for the partition date: the ``k`` customers (never a seed) whose embedding is most similar to
    their closest seed, with the similarity and that seed, from the day's `customer_embeddings` (exact cosine against the
    seeds). Seeds: a campaign's best responders, a segment's top CLTV or an explicit list (default: the latest campaign's
    best responders). Written beside `campaign_targets` as one complete partition under `lookalike_audience/date=YYYY-MM-DD/`;
    empty with a note when there is no embeddings champion or nothing to seed from."""
    partition = context.partition_key
    embeddings = merge_shards(embeddings)  # every shard of the date: the audience is the whole bank's nearest
    if "embedding_vector" not in embeddings or embeddings["embedding_vector"].isna().all():
        return _empty(f"no embedding vectors ({embeddings['embedding_model'].dropna().unique()[:1].tolist() or 'no champion'}): see "
                      f"{CUSTOMER_EMBEDDINGS}", partition, context)
    try:
        sent = _campaigns_until(campaigns, partition, config.control_arm)
        query = _query(config, sent)
        if query is None:
            return _empty(f"no seed query configured and no campaign sent by {partition} with a treated customer who converted",
                          partition, context)
        seeds = seed_customers(query, sent, scored)
        rows = embeddings.loc[embeddings["embedding_vector"].notna()]
        started = time.perf_counter()
        X = np.vstack(rows["embedding_vector"].to_numpy())
        audience = lookalike_audience(X, rows["customer_id"], seeds, config.k)
        seconds = time.perf_counter() - started
    except (LookalikeInputError, UpliftInputError) as exc:
        raise final(f"{LOOKALIKE_AUDIENCE}: {exc}") from exc
    audience["seed_query"] = query.describe()
    summary = _profile_summary(scored, audience["customer_id"], seeds)
    return dg.Output(audience, metadata={
        "dagster/row_count": len(audience),
        "as_of": partition,
        "seed_query": query.describe(),
        "seeds": len(seeds),
        "seeds_with_vector": int(pd.Index(seeds).isin(rows.loc[np.linalg.norm(X, axis=1) > 0, "customer_id"].astype(str)).sum()),
        "mean_similarity": round(float(audience["similarity"].mean()), 4) if len(audience) else 0.0,
        "min_similarity": round(float(audience["similarity"].min()), 4) if len(audience) else 0.0,
        "model": ", ".join(map(str, embeddings["embedding_model"].dropna().unique())),
        "search_seconds": round(seconds, 3),
        **({"who": md(markdown_table(summary))} if summary is not None else {}),
        "dagster/column_schema": table_schema(audience),
    })
