"""Every segmentation candidate in one input space, from the command line.

    python -m customer_intel.segmentation.compare --dataset synthetic       # the default synthetic bank (20k customers)
    python -m customer_intel.segmentation.compare --dataset profile660      # profile mode: a 660-row file of the public
                                                                            # credit-card schema, made by the synthetic bank
    python -m customer_intel.segmentation.compare --customers-file my.csv --id-column "Customer Key" \\
        --column-map "Limit=Avg_Credit_Limit,Cards=Total_Credit_Cards"      # any customers file

The comparison is the shared lifecycle's (``customer_intel.modeling``) with the segmentation
family spec. With the synthetic bank the generator's true personas are known, so each
candidate's adjusted Rand index against them on the held-out customers is reported too (the
truth is read only here, never by a model).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from customer_intel.features import build_customer_features
from customer_intel.modeling import Comparison, NoChampionError
from customer_intel.segmentation.family import K_MAX, K_MIN, MIN_SEGMENT_SHARE, MIN_STABILITY, SEGMENTATION, build_segmentation_split
from customer_intel.segmentation.metrics import persona_ari
from customer_intel.segmentation.space import PROFILE_ATTRIBUTES

REPORT_COLUMNS = ["kind", "silhouette", "silhouette_sd", "calinski_harabasz", "davies_bouldin", "n_segments", "largest_share",
                  "smallest_share", "noise_share", "stability", "delta_vs_champion", "delta_ci_low", "delta_ci_high", "persona_ari",
                  "latent_silhouette", "fit_seconds"]
PUBLIC_COLUMNS = ["Sl_No", "Customer Key", *PROFILE_ATTRIBUTES]  # the public "Credit Card Customer Data" file's header
PROFILE_FILE = Path("data") / "segmentation" / "credit_card_customers_660.csv"


def write_profile_file(path: Path, rows: int = 660, seed: int = 42, repeated_keys: int = 5) -> Path:
    """A file of the public credit-card schema made by the synthetic bank: ``rows`` rows, ``repeated_keys``
    customer keys appearing twice (as in the public file, whose 660 rows hold 655 keys), and a truth file beside it."""
    from customer_intel.synthetic import generate_bank

    bank = generate_bank(n_customers=rows, seed=seed)
    frames = bank.frames()
    customers = frames["customers"].reset_index(drop=True)
    keys = 10_000 + np.random.default_rng(seed).permutation(90_000)[:rows]
    keys[rows - repeated_keys:] = keys[:repeated_keys]  # the last rows repeat earlier keys, with their own attributes
    table = pd.DataFrame({"Sl_No": np.arange(1, rows + 1), "Customer Key": keys, **{c: customers[c] for c in PROFILE_ATTRIBUTES}})
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    truth = frames["truth"][["customer_id", "persona"]].assign(**{"Customer Key": keys})
    truth.drop_duplicates("Customer Key", keep="last").to_csv(path.with_suffix(".truth.csv"), index=False)  # the rows a reader keeps
    return path


def read_customers_file(path: Path, id_column: str, column_map: dict[str, str]) -> tuple[pd.DataFrame, int]:
    """A customers file in the contract's names; repeated keys keep their last row. (frame, repeated rows dropped)."""
    raw = pd.read_csv(path).rename(columns={**column_map, id_column: "customer_id"})
    missing = [c for c in ("customer_id", *PROFILE_ATTRIBUTES) if c not in raw.columns]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing} (map them with --id-column / --column-map OLD=NEW)")
    raw["customer_id"] = raw["customer_id"].astype(str)
    repeated = int(raw["customer_id"].duplicated(keep="last").sum())
    return raw.drop_duplicates("customer_id", keep="last").reset_index(drop=True), repeated


def _load(args) -> tuple[pd.DataFrame, pd.Series | None, str]:
    """(features, true personas by customer id or None, caption)."""
    if args.dataset == "synthetic" and args.customers_file is None:
        from customer_intel.synthetic import generate_bank

        bank = generate_bank(n_customers=args.customers, seed=args.seed)
        frames = bank.frames()
        features = build_customer_features(frames["transactions"], frames["customers"], bank.config.end_date).frame
        truth = frames["truth"].set_index("customer_id")["persona"]
        return features, truth, f"synthetic bank, {len(features):,} customers with purchases, as of {bank.config.end_date}"
    path = Path(args.customers_file) if args.customers_file else write_profile_file(PROFILE_FILE, seed=args.seed)
    mapping = dict(item.split("=", 1) for item in args.column_map.split(",") if item) if args.column_map else {}
    customers, repeated = read_customers_file(path, args.id_column, mapping)
    features = build_customer_features(None, customers, args.as_of).frame
    truth_path = path.with_suffix(".truth.csv")
    truth = None
    if truth_path.exists():
        known = pd.read_csv(truth_path, dtype={"Customer Key": str})
        truth = known.set_index("Customer Key")["persona"]
    return features, truth, f"{path} ({len(customers):,} customers; {repeated} repeated keys kept their last row)"


def persona_column(comparison: Comparison, truth: pd.Series | None) -> pd.Series:
    """Each candidate's ARI against the true personas on the held-out customers (NaN without a truth)."""
    ids = comparison.split.validation["customer_id"].astype(str)
    if truth is None:
        return pd.Series(np.nan, index=comparison.table.index)
    known = truth.reindex(ids)
    keep = known.notna().to_numpy()
    return pd.Series({name: persona_ari(known[keep], np.asarray(p.values)[keep]) for name, p in comparison.predictions.items()})


def kmeans_at_champion_k(comparison: Comparison, seed: int) -> dict[str, float] | None:
    """K-Means refitted at the champion's number of segments, scored like every candidate (None when
    the champion is K-Means or K-Means already chose that k)."""
    from customer_intel.segmentation.candidates import SegmentationCandidate
    from customer_intel.segmentation.classic import KMeansSegments
    from customer_intel.segmentation.family import segmentation_metrics

    k = int(comparison.table.loc[comparison.champion, "n_segments"])
    if comparison.champion == "kmeans" or ("kmeans" in comparison.table.index and int(comparison.table.loc["kmeans", "n_segments"]) == k):
        return None
    candidate = SegmentationCandidate(f"kmeans_k{k}", "centroid", lambda s: KMeansSegments(k=k, seed=s), seed)
    fitted = candidate.fit(comparison.split)
    metrics = segmentation_metrics(comparison.split, fitted.predict(comparison.split.validation))
    return {m: metrics[m] for m in ("silhouette", "calinski_harabasz", "davies_bouldin", "stability")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("synthetic", "profile660"), default="synthetic")
    parser.add_argument("--customers", type=int, default=20_000, help="synthetic bank size")
    parser.add_argument("--customers-file", help="any customers file (CSV) of the credit-card profile schema: profile mode")
    parser.add_argument("--id-column", default="Customer Key", help="the file's customer id column (default %(default)r)")
    parser.add_argument("--column-map", default="", help="OLD=NEW,... renames to the contract's profile columns")
    parser.add_argument("--as-of", default="2026-06-30", help="the as-of day of a profile file's features")
    parser.add_argument("--feature-set", default="auto", help="auto, behaviour, transactional, profile or profile_rfm")
    parser.add_argument("--methods", default=None, help="comma-separated subset of kmeans,gmm,som,spectral,hdbscan,dec,clustergan")
    parser.add_argument("--min-stability", type=float, default=MIN_STABILITY, help="the rule's stability floor (default %(default)s)")
    parser.add_argument("--min-segment-share", type=float, default=MIN_SEGMENT_SHARE, help="smallest segment share (default %(default)s)")
    parser.add_argument("--k-min", type=int, default=K_MIN, help="fewest segments (default %(default)s)")
    parser.add_argument("--k-max", type=int, default=K_MAX, help="most segments (default %(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    features, truth, caption = _load(args)
    split = build_segmentation_split(features, args.feature_set, seed=args.seed)
    started = time.perf_counter()
    methods = args.methods.split(",") if args.methods else None
    try:
        comparison = SEGMENTATION.compare(split, log=lambda m: None, seed=args.seed, methods=methods, min_stability=args.min_stability,
                                          min_segment_share=args.min_segment_share, k_min=args.k_min, k_max=args.k_max)
    except NoChampionError as exc:
        shown = exc.table[[c for c in REPORT_COLUMNS if c in exc.table.columns]] if exc.table is not None else None
        raise SystemExit(f"{caption}: {exc}" + (f"\n\n{shown.to_markdown(floatfmt='.3f')}" if shown is not None else "")) from exc
    seconds = time.perf_counter() - started
    comparison.table["persona_ari"] = persona_column(comparison, truth)
    space = comparison.fitted[comparison.champion].space
    print(f"{caption}; {len(split.fit):,} training and {len(split.validation):,} held-out customers; {seconds:.0f} s for all candidates")
    print(f"input space: {space.describe()}\n")
    print(comparison.markdown(columns=REPORT_COLUMNS))
    for name, why in {**comparison.failures, **comparison.skipped}.items():
        print(f"\n{name}: not compared ({why})")
    print(f"\nchampion: {comparison.champion} ({comparison.rule.describe()})")
    profiles, _ = comparison.fitted[comparison.champion].segments()
    for p in profiles:
        print(f"- {p.segment_id} {p.name}: {p.description}")
    reference = kmeans_at_champion_k(comparison, args.seed)
    if reference is not None:
        print("\nK-Means at the champion's k (the reference): " + ", ".join(f"{k} {v:.3f}" for k, v in reference.items()))


if __name__ == "__main__":
    main()
