"""BG/NBD fit time on 1M customers: ours (analytic-gradient likelihood on weighted distinct
(x, t_x, T) rows) vs lifetimes fitted naively on every customer's row, in the same run.

    .venv/bin/python bench/clv_fit.py [--customers 1000000]

Prints both fit times, the ratio, the number of distinct rows and both parameter sets.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

warnings.filterwarnings("ignore")

from customer_intel.cltv.bgnbd_fast import fit_bgnbd  # noqa: E402
from customer_intel.cltv.probabilistic import unique_rows  # noqa: E402
from customer_intel.features.rfm import transactional_features  # noqa: E402
from customer_intel.synthetic import generate_bank  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    bank = generate_bank(n_customers=args.customers)
    started = time.perf_counter()
    features = transactional_features(bank.transactions.to_pandas(), bank.config.end_date)
    print(f"features for {len(features):,} customers in {time.perf_counter() - started:.1f} s")
    del bank

    started = time.perf_counter()
    rows, weights = unique_rows(features, ["frequency", "t_x", "T"])
    ours = fit_bgnbd(rows["frequency"], rows["t_x"] / 7, rows["T"] / 7, weights=weights)
    ours_s = time.perf_counter() - started

    from lifetimes import BetaGeoFitter

    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            naive = BetaGeoFitter().fit(features["frequency"], features["t_x"] / 7, features["T"] / 7)
        naive_params, naive_note = naive.params_.round(4).to_dict(), ""
    except Exception as exc:  # lifetimes' ConvergenceError: the time until it gave up is still its cost
        naive_params, naive_note = None, f" (raised {type(exc).__name__})"
    naive_s = time.perf_counter() - started

    print(f"ours    : {len(rows):,} distinct rows of {len(features):,} customers, fit in {ours_s:.2f} s: { {k: round(v, 4) for k, v in ours.items()} }")
    print(f"lifetimes, all rows: fit in {naive_s:.2f} s{naive_note}: {naive_params}")
    print(f"ratio   : ours is {naive_s / ours_s:.1f}x faster")


if __name__ == "__main__":
    main()
