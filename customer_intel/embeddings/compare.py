"""Every embedding candidate on the synthetic bank, from the command line, judged on what the product sees and on the truth.

    python -m customer_intel.embeddings.compare                       # the default bank: 20k customers, seed 42
    python -m customer_intel.embeddings.compare --snapshot-profile --profile-weights 0.2,0.5   # the README's table

The comparison is the shared lifecycle's (the family spec's split, candidates, metric and rule):
next-period top category from the neighbours on the validation window, reported on the test
window. Then, from the generator's truth (only this script reads it), for each candidate as
refitted at the test origin (bags as of the last day minus two horizons):

- **persona recall@10**: the share of a customer's 10 nearest neighbours (exact cosine) with its
  persona, every customer with a purchase as of the last day, vectors inferred;
- **lookalike true uplift**: the audience the family judges on its test pool (the seeds' treated
  converters, the ``AUDIENCE_SHARE`` of the test pool most similar to their closest seed, vectors
  as of the test origin, before the send), its mean true uplift over the test pool's (the
  expectation of a random audience of the same size): the truth behind the observed lifts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from customer_intel.embeddings.candidates import EmbeddingCandidate, embedding_candidates
from customer_intel.embeddings.evaluate import neighbour_label_recall
from customer_intel.embeddings.family import EMBEDDINGS, audience_of, projection_figure
from customer_intel.embeddings.frames import LOOKALIKE_ROLE, POOL
from customer_intel.modeling.comparison import compare_candidates
from customer_intel.modeling.split import REFIT, TEST
from customer_intel.table_names import RAW_CAMPAIGNS, RAW_CUSTOMERS, RAW_TRANSACTIONS

COLUMNS = ["kind", "lookalike_response_lift", "delta_ci_low", "delta_ci_high", "test_lookalike_response_lift", "lookalike_uplift_lift",
           "test_lookalike_uplift_lift", "true_uplift_lift", "next_category_accuracy", "test_next_category_accuracy",
           "test_lift_over_popularity", "persona_recall_at_10", "fit_seconds"]


def lookalike_truth(rows: pd.DataFrame, vectors: np.ndarray, truth: pd.DataFrame) -> dict[str, float]:
    """The true uplift of the audience ``family`` judges on ``rows`` (its pool and seeds) against the pool's."""
    found = audience_of(rows, vectors)
    if found is None:
        return {}
    _, audience = found
    uplift = truth.set_index(truth["customer_id"].astype(str))["campaign_true_uplift"].reindex(rows["customer_id"].astype(str)).to_numpy()
    pool = rows[LOOKALIKE_ROLE].to_numpy(dtype=object) == POOL
    chosen, everyone = float(np.nanmean(uplift[pool & audience])), float(np.nanmean(uplift[pool]))
    return {"lookalike_true_uplift": chosen, "pool_true_uplift": everyone, "true_uplift_lift": chosen / everyone}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from customer_intel.synthetic.generator import generate_bank

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42, help="the synthetic bank's seed")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--include", default=None, help="comma-separated candidates (default: all)")
    parser.add_argument("--profile-weights", default="", help="more customer2vec_profile weights to compare, e.g. 0.2,1.0")
    parser.add_argument("--snapshot-profile", action="store_true", help="give past rows the profile snapshot (the synthetic bank's "
                        "profiles are drawn once and never change, so there the snapshot is the past value too)")
    parser.add_argument("--select-on", choices=("lookalike", "next_category"), default=None,
                        help="the champion's metric (default: lookalike when the split holds a campaign)")
    parser.add_argument("--plot", default=None, help="write the champion's 2-D projection coloured by true persona to this PNG")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    frames = generate_bank(n_customers=args.customers, seed=args.seed).frames()
    transactions, customers, truth = frames["transactions"], frames["customers"], frames["truth"]
    split = EMBEDDINGS.split({RAW_TRANSACTIONS: transactions, RAW_CUSTOMERS: customers, RAW_CAMPAIGNS: frames["campaigns"]},
                             snapshot_profile_in_training=args.snapshot_profile)
    print(f"split: {split.describe()} ({time.perf_counter() - started:.0f} s)")
    candidates = embedding_candidates(include=args.include.split(",") if args.include else None, dim=args.dim, epochs=args.epochs)
    hybrid = next((c for c in candidates if c.kind == "hybrid"), None)
    for weight in (float(w) for w in args.profile_weights.split(",") if w):
        base = hybrid or EmbeddingCandidate("customer2vec_profile", "hybrid", sequence=True, feature_set="profile")
        candidates.append(EmbeddingCandidate(f"customer2vec_profile_w{weight:g}", "hybrid", sequence=True, feature_set="profile",
                                             feature_weight=weight, config=base.config))
    rule, _ = EMBEDDINGS.rule_for_split(split, select_on=args.select_on)
    comparison = compare_candidates(candidates, split, rule, EMBEDDINGS.metrics, log=lambda _: None, row_loss=EMBEDDINGS.row_loss_for(rule))
    table = comparison.table.copy()
    personas = truth.set_index(truth["customer_id"].astype(str))["persona"]
    refit_rows = split.parts[REFIT]
    for name, fitted in comparison.evaluated.items():
        vectors = fitted.predict(refit_rows).values
        table.loc[name, "persona_recall_at_10"] = neighbour_label_recall(vectors, personas.reindex(refit_rows["customer_id"].astype(str)).to_numpy())
        if name in comparison.test_predictions:
            for key, value in lookalike_truth(split.parts[TEST], comparison.test_predictions[name].values, truth).items():
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
    print(f"champion: {comparison.champion} (rule: {comparison.rule.describe()})")
    print(f"random neighbours' persona recall (expected): {float((shares ** 2).sum()):.3f}; customers with a purchase as of "
          f"{split.cutoff_of(REFIT).date()}: {len(refit_rows):,}; total {time.perf_counter() - started:.0f} s")
    return table


if __name__ == "__main__":
    main()
