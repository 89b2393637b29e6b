"""Every embedding candidate on the synthetic bank, from the command line, judged on what the product sees and on the truth.

    python -m customer_intel.embeddings.compare                       # the default bank: 20k customers, seed 42
    python -m customer_intel.embeddings.compare --snapshot-profile --profile-weights 0.2,0.5   # the README's table

The comparison is the shared lifecycle's (the family spec's split, candidates, metric and rule):
next-period top category from the neighbours on the validation window, reported on the test
window. Then, from the generator's truth (only this script reads it), for each candidate as
refitted at the test origin (bags as of the last day minus two horizons):

- **persona recall@10**: the share of a customer's 10 nearest neighbours (exact cosine) with its
  persona, every customer with a purchase as of the last day, vectors inferred;
- **lookalike lift**: the campaign's eligible customers split at random into a seed half and a
  pool half; the seeds are the seed half's best responders (treated and converted); vectors as of
  the day before the send; the audience is the pool's ``--audience-share`` most similar to their
  closest seed. Reported: the audience's mean true uplift and observed treated response rate
  against the pool's (the expectation of a random audience of the same size), and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from customer_intel.embeddings.candidates import EmbeddingCandidate, embedding_candidates
from customer_intel.embeddings.evaluate import neighbour_label_recall
from customer_intel.embeddings.family import EMBEDDINGS, projection_figure
from customer_intel.embeddings.frames import embedding_rows
from customer_intel.embeddings.lookalike import lookalike_audience
from customer_intel.features.rfm import as_of_day
from customer_intel.modeling.comparison import compare_candidates
from customer_intel.modeling.split import REFIT
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

COLUMNS = ["kind", "next_category_accuracy", "popularity_accuracy", "delta_ci_low", "delta_ci_high", "test_next_category_accuracy",
           "test_lift_over_popularity", "persona_recall_at_10", "lookalike_true_uplift", "pool_true_uplift", "lookalike_uplift_lift",
           "lookalike_response", "pool_response", "fit_seconds"]


def lookalike_lift(scorer, campaigns: pd.DataFrame, truth: pd.DataFrame, transactions, customers, audience_share: float = 0.2,
                   seed: int = 0, snapshot_profile: bool = False) -> dict[str, float]:
    """The lookalike evaluation of the module docstring for one scorer."""
    sent = as_of_day(campaigns["sent_at"].min())
    rows = embedding_rows(transactions, customers, sent - pd.Timedelta(days=1), snapshot_profile=snapshot_profile)
    vectors, _ = scorer.embed(rows)
    ids = rows["customer_id"].astype(str).to_numpy()
    eligible = campaigns.assign(customer_id=campaigns["customer_id"].astype(str)).drop_duplicates("customer_id")
    eligible = eligible.loc[eligible["customer_id"].isin(ids)].reset_index(drop=True)
    half = np.random.default_rng(seed).random(len(eligible)) < 0.5
    seed_half, pool = eligible.loc[half], eligible.loc[~half]
    seeds = seed_half.loc[(seed_half["treated"] == 1) & (seed_half["converted"] == 1), "customer_id"]
    k = max(1, int(round(audience_share * len(pool))))
    outside = np.setdiff1d(ids, pool["customer_id"].to_numpy())
    audience = lookalike_audience(vectors, ids, seeds, k, exclude=outside)["customer_id"]
    uplift = truth.set_index(truth["customer_id"].astype(str))["campaign_true_uplift"]
    chosen = pool.loc[pool["customer_id"].isin(audience)]
    audience_uplift, pool_uplift = float(uplift.reindex(chosen["customer_id"]).mean()), float(uplift.reindex(pool["customer_id"]).mean())
    treated_chosen, treated_pool = chosen.loc[chosen["treated"] == 1], pool.loc[pool["treated"] == 1]
    return {"lookalike_true_uplift": audience_uplift, "pool_true_uplift": pool_uplift, "lookalike_uplift_lift": audience_uplift / pool_uplift,
            "lookalike_response": float(treated_chosen["converted"].mean()), "pool_response": float(treated_pool["converted"].mean()),
            "seeds": len(seeds), "audience": len(audience)}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from customer_intel.synthetic.generator import generate_bank

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42, help="the synthetic bank's seed")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--include", default=None, help="comma-separated candidates (default: all)")
    parser.add_argument("--profile-weights", default="", help="more customer2vec_profile weights to compare, e.g. 0.2,1.0")
    parser.add_argument("--audience-share", type=float, default=0.2)
    parser.add_argument("--snapshot-profile", action="store_true", help="give past rows the profile snapshot (the synthetic bank's "
                        "profiles are drawn once and never change, so there the snapshot is the past value too)")
    parser.add_argument("--plot", default=None, help="write the champion's 2-D projection coloured by true persona to this PNG")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    frames = generate_bank(n_customers=args.customers, seed=args.seed).frames()
    transactions, customers, truth = frames["transactions"], frames["customers"], frames["truth"]
    split = EMBEDDINGS.split({RAW_TRANSACTIONS: transactions, RAW_CUSTOMERS: customers}, snapshot_profile_in_training=args.snapshot_profile)
    print(f"split: {split.describe()} ({time.perf_counter() - started:.0f} s)")
    candidates = embedding_candidates(include=args.include.split(",") if args.include else None, dim=args.dim, epochs=args.epochs)
    hybrid = next((c for c in candidates if c.kind == "hybrid"), None)
    for weight in (float(w) for w in args.profile_weights.split(",") if w):
        base = hybrid or EmbeddingCandidate("customer2vec_profile", "hybrid", sequence=True, feature_set="profile")
        candidates.append(EmbeddingCandidate(f"customer2vec_profile_w{weight:g}", "hybrid", sequence=True, feature_set="profile",
                                             feature_weight=weight, config=base.config))
    comparison = compare_candidates(candidates, split, EMBEDDINGS.rule, EMBEDDINGS.metrics, log=lambda _: None, row_loss=EMBEDDINGS.row_loss)
    table = comparison.table.copy()
    personas = truth.set_index(truth["customer_id"].astype(str))["persona"]
    refit_rows = split.parts[REFIT]
    for name, fitted in comparison.evaluated.items():
        scorer = fitted.scorer
        vectors = fitted.predict(refit_rows).values
        table.loc[name, "persona_recall_at_10"] = neighbour_label_recall(vectors, personas.reindex(refit_rows["customer_id"].astype(str)).to_numpy())
        if scorer is not None:
            for key, value in lookalike_lift(scorer, frames["campaigns"], truth, transactions, customers, args.audience_share,
                                              snapshot_profile=args.snapshot_profile).items():
                table.loc[name, key] = value
    labels = personas.reindex(refit_rows["customer_id"].astype(str)).to_numpy()
    if args.plot and comparison.evaluated[comparison.champion].scorer is not None:
        champion_vectors, _ = comparison.evaluated[comparison.champion].scorer.embed(refit_rows)
        figure = projection_figure(champion_vectors, labels, f"{comparison.champion}: 2-D PCA by true persona ({len(refit_rows):,} customers)")
        figure.savefig(args.plot, dpi=110, bbox_inches="tight")
    shares = pd.Series(labels).value_counts(normalize=True)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    print(table[[c for c in COLUMNS if c in table.columns]].round(3).to_string())
    print(f"champion: {comparison.champion} (rule: {EMBEDDINGS.rule.describe()})")
    print(f"random neighbours' persona recall (expected): {float((shares ** 2).sum()):.3f}; customers with a purchase as of "
          f"{split.cutoff_of(REFIT).date()}: {len(refit_rows):,}; total {time.perf_counter() - started:.0f} s")
    return table


if __name__ == "__main__":
    main()
