"""BG/NBD fit time on 1M customers: ours vs lifetimes fitted naively on every customer's row, in the same run.

Both get the same per-customer columns (frequency, t_x and T in weeks) and are timed from
them: ours reduces them to weighted distinct (x, t_x, T) rows inside ``fit_bgnbd`` (that
dedupe is in its time), then fits with an analytic gradient and Hessian; lifetimes runs as
it ships (autograd + BFGS on all rows).

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
    ours = fit_bgnbd(features["frequency"], features["t_x"] / 7, features["T"] / 7)
    ours_s = time.perf_counter() - started
    n_distinct = len(unique_rows(features, ["frequency", "t_x", "T"])[1])  # for the report only, not timed

    from lifetimes import BetaGeoFitter

    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            naive = BetaGeoFitter().fit(features["frequency"], features["t_x"] / 7, features["T"] / 7)
        naive_params, naive_note = naive.params_.to_dict(), ""
    except Exception as exc:  # lifetimes' ConvergenceError: the time until it gave up is still its cost
        naive_params, naive_note = None, f" (raised {type(exc).__name__})"
    naive_s = time.perf_counter() - started

    print(f"ours    : {n_distinct:,} distinct rows of {len(features):,} customers, fit in {ours_s:.2f} s: { {k: round(v, 4) for k, v in ours.items()} }")
    print(f"lifetimes, all rows: fit in {naive_s:.2f} s{naive_note}: {naive_params and {k: round(v, 4) for k, v in naive_params.items()} }")
    if naive_params:
        print(f"estimates: largest relative difference {max(abs(ours[k] / v - 1) for k, v in naive_params.items()):.1e}")
    print(f"ratio   : ours is {naive_s / ours_s:.1f}x faster")


if __name__ == "__main__":
    main()
