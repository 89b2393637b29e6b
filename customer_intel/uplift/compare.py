"""Every uplift candidate on one campaign export, from the command line; and the champion procedure as a function.

    python -m customer_intel.uplift.compare --dataset synthetic                 # the default synthetic bank (20k, seed 42)
    python -m customer_intel.uplift.compare --campaigns FILE --customers FILE [--transactions FILE]
        [--columns JSON] [--control-arm LABEL] [--test-index FILE] [--candidates t_logistic,response] [--snapshot-profile]

Files are CSV or Parquet. ``--columns`` maps contract columns to the export's (e.g.
``{"converted": "visit", "arm": "segment"}``: outcome from any response column, several arms
against the control label). ``--test-index``: a file of customer ids (one per line, or a
``customer_id`` column) held out as the test part instead of the stratified 30% draw.

The comparison is the shared lifecycle's with the uplift family spec: chosen by cross-validated
Qini on the train part, reported on the held-out customers. With the synthetic bank the script
also reads the generator's truth (only it does): CATE RMSE and correlation, the share of the
oracle's true incremental conversions when targeting 30% of the test customers, and the
planner's true incremental profit against naive policies and the oracle at the same budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from customer_intel.modeling import Comparison, NoChampionError
from customer_intel.modeling.split import FIT, VALIDATION, TimeSplit
from customer_intel.planner.allocation import allocate, top_by_score
from customer_intel.uplift.candidates import UpliftCandidate
from customer_intel.uplift.family import UPLIFT, calibrate
from customer_intel.uplift.frames import CONTROL, build_uplift_split
from customer_intel.uplift.learners import KINDS
from customer_intel.uplift.metrics import targeted_share

COLUMNS = ["kind", "qini", "qini_ci_low", "qini_ci_high", "random_band_high", "test_qini", "test_qini_ci_low", "test_qini_ci_high",
           "test_random_band_low", "test_random_band_high", "test_auuc", "test_uplift_at_10", "test_uplift_at_20", "test_uplift_at_30",
           "fit_seconds", "refit_seconds"]
TARGET_SHARE = 0.3


def _read(path: str | None, columns: dict[str, str] | None = None) -> pd.DataFrame | None:
    if path is None:
        return None
    frame = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    if columns:
        frame = frame.rename(columns={source: target for target, source in columns.items() if source in frame.columns})
    for column in ("ts", "sent_at", "valid_from"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    if "customer_id" in frame.columns:
        frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def fit_and_score(campaigns: pd.DataFrame, score_rows: pd.DataFrame, transactions=None, customers=None, *, control_arm: str = CONTROL,
                  include: list[str] | None = None, seed: int = 0, window_days: int = 30, require_above_random: bool = True,
                  snapshot_profile: bool = False) -> tuple[Comparison, pd.DataFrame]:
    """The champion procedure on ``campaigns`` (split, cross-validated choice, held-out report), the champion's recipe
    refitted on every labelled row, then its scores of ``score_rows`` (feature rows from the same feature builder, e.g.
    ``build_customer_features(...).frame`` as of the scoring day): (comparison, scores)."""
    split = build_uplift_split(campaigns, transactions, customers, control_arm=control_arm, seed=seed, window_days=window_days, refit=False,
                               snapshot_profile=snapshot_profile)
    comparison = UPLIFT.compare(split, include=include, seed=seed, require_above_random=require_above_random, log=lambda _: None)
    known = split.cutoff + pd.Timedelta(days=split.horizon_days)  # every labelled row's window has closed by then
    everyone = TimeSplit(known, split.horizon_days, {FIT: pd.concat([split.validation, split.test], ignore_index=True), VALIDATION: score_rows},
                         {FIT: split.cutoff, VALIDATION: known}, {FIT: split.horizon_days, VALIDATION: split.horizon_days})
    fitted = UpliftCandidate(comparison.champion, KINDS[comparison.champion], seed=seed).fit(everyone)
    fitted = calibrate(fitted, split.origin(VALIDATION), comparison.predictions[comparison.champion])
    return comparison, fitted.to_scorer().score(score_rows)


def truth_report(comparison: Comparison, truth: pd.DataFrame, margin: float = 0.3, cost: float = 1.0) -> list[str]:
    """Synthetic only: every candidate's CATE error and oracle share on the test customers; the planner's true profit."""
    test = comparison.split.test
    tau = truth.set_index("customer_id")["campaign_true_uplift"].reindex(test["customer_id"].astype(str)).to_numpy(dtype=float)
    rows = {}
    for name, prediction in comparison.test_predictions.items():
        score = np.asarray(prediction.values, dtype=float)[:, 0]
        effect = comparison.evaluated[name].model.effects(test)[:, 0]
        rows[name] = {"oracle_share_at_30": targeted_share(tau, score, TARGET_SHARE), "cate_corr": float(np.corrcoef(tau, effect)[0, 1]),
                      "cate_rmse": float(np.sqrt(np.mean((effect - tau) ** 2)))}
    rows["random"] = {"oracle_share_at_30": float(np.mean([targeted_share(tau, np.random.default_rng(s).random(len(tau)), TARGET_SHARE)
                                                           for s in range(20)]))}
    recency = test["recency"].to_numpy(dtype=float) if "recency" in test else np.zeros(len(test))
    rows["lapsing_first"] = {"oracle_share_at_30": targeted_share(tau, np.where(np.isfinite(recency), recency, np.inf), TARGET_SHARE)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    lines = [f"true incremental conversions targeting {TARGET_SHARE:.0%} of the {len(test):,} test customers, as a share of the oracle "
             "(top by true uplift); CATE against the generator's truth:", "", table.to_markdown(floatfmt=".3f"), ""]
    # the planner: value of a response = margin x the customer's expected spend over the window, from the truth's rates (a stand-in
    # for the CLTV champion's forecast, which this script does not train); every policy is charged with the same value and cost
    known = truth.set_index("customer_id").reindex(test["customer_id"].astype(str))
    window = comparison.split.horizon_days
    value = margin * (known["purchase_rate_per_day"] * window * known["expected_spend_per_purchase"]).to_numpy(dtype=float)
    champion = comparison.evaluated[comparison.champion].model.effects(test)[:, 0]
    budget = TARGET_SHARE * len(test) * cost
    n = int(budget / cost)
    plan = allocate((champion * value - cost)[:, None], [cost], budget)
    true_profit = tau * value - cost
    response = comparison.evaluated.get("response")
    policies = {
        "planner (champion uplift x value - cost > 0)": plan.contacted,
        "oracle (true uplift x value)": allocate(true_profit[:, None], [cost], budget).contacted,
        "random": top_by_score(np.random.default_rng(0).random(len(test)), n),
        "by churn risk (lapsing first)": top_by_score(np.where(np.isfinite(recency), recency, np.inf), n),
        "by value (CLTV)": top_by_score(value, n),
        **({"by the response model": top_by_score(response.model.scores(test)[:, 0], n)} if response is not None else {}),
    }
    oracle = float(true_profit[policies["oracle (true uplift x value)"]].sum())
    profit = pd.DataFrame({name: {"contacted": int(chosen.sum()), "true_incremental_responses": float(tau[chosen].sum()),
                                  "true_incremental_profit": float(true_profit[chosen].sum()),
                                  "share_of_oracle_profit": float(true_profit[chosen].sum() / oracle)} for name, chosen in policies.items()}).T
    lines += [f"true incremental profit at a budget of {budget:,.0f} ({TARGET_SHARE:.0%} of the test customers at {cost:g} per contact; value of a "
              f"response = {margin:g} x expected spend over {window} days):", "", profit.to_markdown(floatfmt=".3f")]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("synthetic",), default=None, help="the synthetic bank instead of files")
    parser.add_argument("--campaigns")
    parser.add_argument("--customers")
    parser.add_argument("--transactions")
    parser.add_argument("--columns", default=None, help='JSON: contract column -> export column, e.g. {"converted": "visit"}')
    parser.add_argument("--control-arm", default=CONTROL)
    parser.add_argument("--test-index", default=None)
    parser.add_argument("--window-days", type=int, default=30)
    parser.add_argument("--candidates", default=None, help="comma-separated learners (default all)")
    parser.add_argument("--snapshot-profile", action="store_true", help="join a snapshot customers table (no valid_from) to the "
                        "campaign rows although it may postdate the send (the product's default leaves it out)")
    parser.add_argument("--n-customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42, help="the synthetic bank's seed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    truth = None
    if args.dataset == "synthetic":
        from customer_intel.synthetic import generate_bank

        frames = generate_bank(n_customers=args.n_customers, seed=args.seed).frames()
        campaigns, customers, transactions, truth = frames["campaigns"], frames["customers"], frames["transactions"], frames["truth"]
    elif args.campaigns:
        columns = json.loads(args.columns) if args.columns else None
        campaigns, customers, transactions = _read(args.campaigns, columns), _read(args.customers, columns), _read(args.transactions, columns)
    else:
        parser.error("give --dataset synthetic or --campaigns FILE")
    test_index = None
    if args.test_index:
        path = Path(args.test_index)
        ids = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path) if path.suffix == ".parquet" else None
        test_index = ids["customer_id"].astype(str) if ids is not None and "customer_id" in ids else path.read_text().split()
    split = build_uplift_split(campaigns, transactions, customers, control_arm=args.control_arm, window_days=args.window_days,
                               test_index=test_index, refit=False, snapshot_profile=args.snapshot_profile)
    print(f"split: {split.describe()}")
    include = args.candidates.split(",") if args.candidates else None
    try:
        comparison = UPLIFT.compare(split, include=include, seed=0, log=lambda _: None)
    except NoChampionError as exc:
        print(exc.table.to_markdown(floatfmt=".3f") if exc.table is not None else "")
        raise SystemExit(f"no champion: {exc}") from exc
    table = comparison.table
    print(f"champion: {comparison.champion} ({comparison.rule.describe()})\n")
    print(table[[c for c in COLUMNS + [c for c in table.columns if c.startswith("test_qini_") and c not in COLUMNS] if c in table.columns]]
          .to_markdown(floatfmt=".3f"))
    if truth is not None:
        print("\n" + "\n".join(truth_report(comparison, truth)))
    print(f"\ncompared in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
