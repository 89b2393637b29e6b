"""Churn scoring at bank scale: probability, SHAP reasons and counterfactuals for every at-risk customer of 1M.

    .venv/bin/python bench/churn_scale.py [--customers 1000000] [--kinds logistic,stacked,bgnbd,lightgbm] [--data bench/.data]

Each churn model is trained the product's way (the churn split of a 50,000-customer bank from the
same generator, refitted on all its data as production is), then scores the 1M customers'
features as of the last data day. Each model runs in its own process, so its peak RSS is its own
(Linux keeps a process's peak across fork). Per model, in the same run:

- **product**: ``ChurnScorer.score`` end to end: the probability of every customer, the risk band,
  SHAP reasons (top 3, in words) and a verified counterfactual search for every customer at or
  above the threshold;
- **bare**: the estimator's own ``predict_proba`` on the same inputs, plus the explainer alone on
  the at-risk rows (``shap.LinearExplainer`` / ``shap.TreeExplainer``; BG/NBD: its closed form),
  so the ratio shows what the reasons in words and the counterfactuals cost on top.

Prints seconds per step, peak RSS and the product / bare ratio. Numbers live here, not in the tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
TRAIN_CUSTOMERS = 50_000


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def child(kind: str, bank: Path, seed: int) -> dict:
    import numpy as np
    import pandas as pd
    from features_scale import AS_OF

    from customer_intel.churn.candidates import churn_candidates
    from customer_intel.churn.frames import build_churn_split
    from customer_intel.features import build_customer_features
    from customer_intel.synthetic import generate_bank

    frames = generate_bank(n_customers=TRAIN_CUSTOMERS, seed=seed + 1, end_date=AS_OF).frames()
    last = frames["transactions"]["ts"].max().normalize()
    split, train_s = _timed(lambda: build_churn_split(frames["transactions"], frames["customers"], last - pd.Timedelta(days=90), 90))
    candidate = next(c for c in churn_candidates(seed=seed) if c.name == kind)
    scorer = candidate.fit(split.origin("refit")).to_scorer()
    features, features_s = _timed(lambda: build_customer_features(str(bank / "raw" / "transactions.parquet"),
                                                                  str(bank / "raw" / "customers.parquet"), AS_OF).frame)
    out, product_s = _timed(lambda: scorer.score(features))
    at_risk = (out["probability"] >= scorer.threshold).to_numpy()
    model = scorer.model

    def bare():
        if kind == "bgnbd":
            return model.proba(features)
        X = model.design(features)
        return model.estimator.predict_proba(X)[:, 1]
    _, bare_predict_s = _timed(bare)

    def bare_explain():
        import shap

        rows = features.loc[at_risk]
        if kind == "lightgbm":
            return shap.TreeExplainer(model.estimator.booster_).shap_values(model.design(rows))
        if kind == "bgnbd":
            return None  # no bare explainer beyond the product's own (shap's exact explainer on three inputs)
        return shap.LinearExplainer(model.estimator, shap.maskers.Independent(model.background)).shap_values(model.design(rows))
    _, bare_explain_s = _timed(bare_explain)
    found = out.loc[at_risk, "counterfactual_probability"].notna().mean() if at_risk.any() else np.nan
    return {"kind": kind, "customers": len(features), "at_risk": int(at_risk.sum()), "counterfactual_found": float(found),
            "train_split_s": train_s, "features_s": features_s, "product_s": product_s, "bare_predict_s": bare_predict_s,
            "bare_explain_s": bare_explain_s, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="logistic,stacked,bgnbd,lightgbm")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bank", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, Path(args.bank), args.seed)))
        return

    from features_scale import _generate

    bank = _generate(args.customers, Path(args.data), args.seed)
    print("| model | customers | at risk | counterfactual found | product: score + reasons + counterfactuals (s) | bare predict (s) "
          "| bare SHAP on the at-risk (s) | product / bare | peak RSS (GB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for kind in args.kinds.split(","):
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--bank", str(bank), "--seed", str(args.seed)],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            print(f"| {kind} | failed: {done.stderr.strip().splitlines()[-1]} |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        bare = r["bare_predict_s"] + r["bare_explain_s"]
        explain = "n/a (no bare explainer)" if kind == "bgnbd" else f"{r['bare_explain_s']:.1f}"
        print(f"| {kind} | {r['customers']:,} | {r['at_risk']:,} | {r['counterfactual_found']:.0%} | {r['product_s']:.1f} | "
              f"{r['bare_predict_s']:.1f} | {explain} | {r['product_s'] / bare:.1f}x | {r['peak_rss_gb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
