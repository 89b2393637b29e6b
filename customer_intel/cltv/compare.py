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

from customer_intel.cltv.evaluation import evaluate, rate_baseline
from customer_intel.cltv.family import compare_cltv_models
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS
from customer_intel.modeling import FIT, TEST, Comparison


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
    """Synthetic only: the champion as registered (its recipe refitted on all the data) and BG/NBD as
    fitted at the cutoff score every customer as of the last day of data; RMSE against the
    generator's true purchases in the next 90 days.

    The truth counts transactions; the models count purchase days (same-day purchases merge), so
    a small under-forecast is expected (E[1 - e^-lambda] vs E[lambda], README).
    """
    from customer_intel.features import build_customer_features

    frames = bank.frames()
    features = build_customer_features(frames["transactions"], frames["customers"], bank.config.end_date).frame
    truth = frames["truth"].set_index("customer_id").reindex(features["customer_id"].astype(str))
    actual = truth[f"future_purchases_{bank.config.future_days}d"].to_numpy(dtype=float)
    forecasts = {f"{comparison.champion} (registered refit)": comparison.production_scorer().score(features)["expected_purchases"].to_numpy(),
                 "bgnbd (fitted at the cutoff)": comparison.scorer("bgnbd").score(features)["expected_purchases"].to_numpy()}
    forecasts["baseline_rate"] = rate_baseline(features, bank.config.future_days)
    return {name: evaluate(actual, predicted)["rmse"] for name, predicted in forecasts.items()}


REPORT_COLUMNS = ["kind", "poisson_deviance", "rmse", "total_pct_error", "delta_vs_champion", "delta_ci_low", "delta_ci_high",
                  "test_poisson_deviance", "test_rmse", "test_total_pct_error", "test_interval_coverage", "fit_seconds", "refit_seconds"]


def describe_windows(split) -> str:
    """The caption of a comparison table: which window chose, which only reported."""
    test = f"test {split.cutoff_of(TEST).date()} + {split.horizon_of(TEST)} days" if TEST in split.parts else "no test window"
    fit = f"ML fit rows as of {split.cutoff_of(FIT).date()} + {split.horizon_of(FIT)} days" if FIT in split.parts else "no ML fit rows"
    return (f"validation {split.cutoff.date()} + {split.horizon_days} days (chooses: champion, ensemble weights, conformal bands; "
            f"{len(split.validation):,} customers); {test} (only reports; {len(split.test):,} customers); {fit}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cdnow", "synthetic"), default="cdnow")
    parser.add_argument("--customers", type=int, default=20_000, help="synthetic bank size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--horizon-scaling", choices=("bgnbd_ratio", "linear"), default="bgnbd_ratio",
                        help="how an ML forecast for its training window reaches the horizon (default %(default)s)")
    args = parser.parse_args(argv)
    transactions, customers, cutoff, horizon, bank = _load(args.dataset, args.customers, args.seed)
    started = time.perf_counter()
    result = compare_cltv_models(transactions, customers, cutoff, horizon, seed=args.seed, horizon_scaling=args.horizon_scaling,
                                 transaction_models=list(TRANSACTION_MODELS), log=lambda m: None)
    print(f"{args.dataset}: {describe_windows(result.split)}; {time.perf_counter() - started:.0f} s\n")
    print(result.markdown(columns=REPORT_COLUMNS))
    print(f"\nchampion: {result.champion} ({result.rule.describe()})")
    if result.weights:
        print("ensemble weights (fitted on the validation window): " + ", ".join(f"{k} {v:.3f}" for k, v in result.weights.items()))
    if bank is not None:
        rmse = truth_rmse(result, bank)
        print("RMSE on the true purchases of the 90 days after the data ends (champion as registered): "
              + ", ".join(f"{name} {value:.3f}" for name, value in rmse.items()))


if __name__ == "__main__":
    main()
