"""Every CLTV candidate on the same validation window, from the command line.

    python -m customer_intel.cltv.compare --dataset cdnow       # FHL split, 23,570 customers
    python -m customer_intel.cltv.compare --dataset synthetic   # the default synthetic bank

Targets are repeat purchase days in ``(cutoff, cutoff + horizon]``; no candidate sees them.
The comparison itself is the shared lifecycle's (``customer_intel.modeling``) with the CLTV
family spec (``customer_intel.cltv.family``).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from customer_intel.cltv.evaluation import CLTV_RULE, evaluate, rate_baseline
from customer_intel.cltv.family import compare_cltv_models
from customer_intel.modeling import FIT, Comparison


def _load(dataset: str, customers_n: int, seed: int):
    if dataset == "cdnow":
        from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, load_cdnow_transactions

        return load_cdnow_transactions("master"), None, CDNOW_CALIBRATION_END, 273, None
    from customer_intel.synthetic import generate_bank

    bank = generate_bank(n_customers=customers_n, seed=seed)
    frames = bank.frames()
    cutoff = pd.Timestamp(bank.config.end_date) - pd.Timedelta(days=90)
    return frames["transactions"], frames["customers"], cutoff, 90, bank


def truth_rmse(comparison: Comparison, bank) -> dict[str, float]:
    """Synthetic only: the champion, as registered (fitted up to the cutoff), scores every customer
    as of the last day of data; RMSE against the generator's true purchases in the next 90 days.

    The truth counts transactions; the models count purchase days (same-day purchases merge), so
    a small under-forecast is expected (E[1 - e^-lambda] vs E[lambda], README).
    """
    from customer_intel.features import build_customer_features

    frames = bank.frames()
    features = build_customer_features(frames["transactions"], frames["customers"], bank.config.end_date).frame
    truth = frames["truth"].set_index("customer_id").reindex(features["customer_id"].astype(str))
    actual = truth[f"future_purchases_{bank.config.future_days}d"].to_numpy(dtype=float)
    forecasts = {name: comparison.scorer(name).score(features)["expected_purchases"].to_numpy()
                 for name in dict.fromkeys((comparison.champion, "bgnbd"))}
    forecasts["baseline_rate"] = rate_baseline(features, bank.config.future_days)
    return {name: evaluate(actual, predicted)["rmse"] for name, predicted in forecasts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cdnow", "synthetic"), default="cdnow")
    parser.add_argument("--customers", type=int, default=20_000, help="synthetic bank size")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    transactions, customers, cutoff, horizon, bank = _load(args.dataset, args.customers, args.seed)
    started = time.perf_counter()
    result = compare_cltv_models(transactions, customers, cutoff, horizon, seed=args.seed, log=lambda m: None)
    split = result.split
    print(f"{args.dataset}: cutoff {split.cutoff.date()}, horizon {horizon} days, {len(split.validation):,} customers evaluated, "
          f"{len(split.fit):,} time-shifted training rows (target window {split.horizon_of(FIT) if len(split.fit) else 0} days); "
          f"{time.perf_counter() - started:.0f} s\n")
    print(result.markdown())
    print(f"\nchampion: {result.champion} ({CLTV_RULE.describe()})")
    if bank is not None:
        rmse = truth_rmse(result, bank)
        print("RMSE on the true purchases of the 90 days after the data ends (champion as registered): "
              + ", ".join(f"{name} {value:.3f}" for name, value in rmse.items()))


if __name__ == "__main__":
    main()
