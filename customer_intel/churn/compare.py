"""Every churn candidate on one time split, from the command line.

    python -m customer_intel.churn.compare --dataset cdnow        # CDNOW (lifetimes): calibration to 1997-09-30, 39-week window
    python -m customer_intel.churn.compare --dataset synthetic    # the default synthetic bank (20k customers), 90-day window
    python -m customer_intel.churn.compare --dataset cdnow --calibration none   # the same without the window correction

The comparison is the shared lifecycle's (``customer_intel.modeling``) with the churn family
spec: chosen on the validation window, reported on the test window, the champion refitted on
all the data. With the synthetic bank the production model's ROC AUC against the generator's
truth at the last day ("alive at the end", and no purchase in the 90 days after it) is reported
too; only this script reads the truth.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from sklearn.metrics import roc_auc_score

from customer_intel.churn.family import CHURN
from customer_intel.churn.frames import LABEL, build_churn_split
from customer_intel.churn.metrics import brier_rows, expected_calibration_error
from customer_intel.modeling import Comparison, NoChampionError
from customer_intel.modeling.split import REFIT

VALIDATION_COLUMNS = ["kind", "brier", "roc_auc", "ece"]
TEST_COLUMNS = ["test_brier", "test_log_loss", "test_ece", "test_roc_auc", "test_roc_auc_ci_low", "test_roc_auc_ci_high", "test_pr_auc",
                "test_top_decile_lift", "test_top_decile_capture", "delta_vs_champion", "delta_ci_low", "delta_ci_high", "fit_seconds"]


def load(dataset: str, n_customers: int, seed: int):
    """(transactions, customers, cutoff, window, truth) for a named dataset."""
    if dataset in ("cdnow", "cdnow_sample"):
        from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, load_cdnow_transactions

        return load_cdnow_transactions("master" if dataset == "cdnow" else "sample"), None, CDNOW_CALIBRATION_END, 273, None
    from customer_intel.synthetic import generate_bank

    frames = generate_bank(n_customers=n_customers, seed=seed).frames()
    last = frames["transactions"]["ts"].max().normalize()
    return frames["transactions"], frames["customers"], last - pd.Timedelta(days=90), 90, frames["truth"]


def report(comparison: Comparison, truth: pd.DataFrame | None) -> list[str]:
    table = comparison.table
    lines = [f"champion: {comparison.champion} ({comparison.rule.describe()})", "",
             table[[c for c in VALIDATION_COLUMNS + TEST_COLUMNS if c in table.columns]].to_markdown(floatfmt=".3f")]
    fitted = comparison.evaluated.get(comparison.champion)
    y = comparison.split.test[LABEL].to_numpy(dtype=int)
    for name, model in ((n, comparison.evaluated[n].model) for n in ("logistic", "stacked", "lightgbm") if n in comparison.evaluated):
        if model.mismatched and model.calibration != "none":
            raw, cal = model.uncalibrated().proba(comparison.split.test), model.proba(comparison.split.test)
            lines.append(f"{name} on test, trained on a {model.train_window}-day label for {model.horizon_days} days: Brier "
                         f"{brier_rows(y, raw).mean():.4f} uncalibrated -> {brier_rows(y, cal).mean():.4f} with {model.calibration}; ECE "
                         f"{expected_calibration_error(y, raw):.3f} -> {expected_calibration_error(y, cal):.3f}")
    if truth is not None and comparison.production is not None and fitted is not None:
        rows = comparison.split.parts[REFIT]
        p = comparison.production.model.proba(rows)
        known = rows[["customer_id"]].assign(p=p).merge(truth, on="customer_id")
        future = [c for c in truth.columns if c.startswith("future_purchases_")][0]
        lines.append(f"production model at {comparison.split.cutoff_of(REFIT).date()} vs the generator's truth: ROC AUC "
                     f"{roc_auc_score(~known['alive_at_end'], known['p']):.3f} for 'not alive at the end', "
                     f"{roc_auc_score(known[future] == 0, known['p']):.3f} for 'no purchase in the next {future.split('_')[-1]}' "
                     f"(mean probability {known['p'].mean():.3f}, actual rate {(known[future] == 0).mean():.3f})")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cdnow", "cdnow_sample", "synthetic"), default="cdnow")
    parser.add_argument("--n-customers", type=int, default=20_000, help="synthetic bank size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibration", default="window", help="window (default), sigmoid or none")
    parser.add_argument("--candidates", default=None, help="comma-separated candidates to fit (default all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    transactions, customers, cutoff, window, truth = load(args.dataset, args.n_customers, args.seed)
    split = build_churn_split(transactions, customers, cutoff, window)
    print(f"split: {split.describe()}")
    include = args.candidates.split(",") if args.candidates else None
    try:
        comparison = CHURN.compare(split, include=include, calibration=args.calibration, seed=0, log=lambda _: None)
    except NoChampionError as exc:
        print(exc.table.to_markdown(floatfmt=".3f") if exc.table is not None else "")
        raise SystemExit(f"no champion: {exc}") from exc
    print("\n".join(report(comparison, truth)))
    print(f"compared in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
