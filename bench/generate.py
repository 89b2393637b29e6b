"""Synthetic-bank generation speed: the vectorised generator vs a per-customer Python loop.

    .venv/bin/python bench/generate.py [--customers 1000000] [--loop-customers 5000]

Both draw the same BG/NBD + Gamma-Gamma process; the peer is the obvious per-customer loop,
measured on a smaller sample in the same run (its cost is linear in customers). Prints
customers/second for both and their ratio; writes nothing unless --out is given.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from customer_intel.synthetic import SyntheticBankConfig, generate_bank


def loop_generator(n_customers: int, cfg: SyntheticBankConfig, seed: int = 0) -> int:
    """Per-customer reference: draw each customer's purchases one after another."""
    rng = np.random.default_rng(seed)
    horizon = float(cfg.history_days)
    rows = []
    for i in range(n_customers):
        acquired = rng.uniform(0, horizon * cfg.acquisition_share_of_history)
        lam = rng.gamma(cfg.bgnbd_r, 1 / cfg.bgnbd_alpha)
        p = rng.beta(cfg.bgnbd_a, cfg.bgnbd_b)
        nu = rng.gamma(cfg.gg_q, 1 / cfg.gg_gamma)
        t = acquired
        rows.append((i, t, rng.gamma(cfg.gg_p) / nu, int(rng.integers(10)), int(rng.integers(3))))
        while True:
            t += rng.exponential(1 / lam)
            if t >= horizon:
                break
            rows.append((i, t, rng.gamma(cfg.gg_p) / nu, int(rng.integers(10)), int(rng.integers(3))))
            if rng.random() < p:
                break
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--loop-customers", type=int, default=5_000)
    parser.add_argument("--out", default=None, help="also write the bank here and time the Parquet write")
    args = parser.parse_args()
    cfg = SyntheticBankConfig()

    started = time.perf_counter()
    bank = generate_bank(cfg, n_customers=args.customers)
    vectorised_s = time.perf_counter() - started
    vectorised_rate = args.customers / vectorised_s

    started = time.perf_counter()
    loop_rows = loop_generator(args.loop_customers, cfg)
    loop_s = time.perf_counter() - started
    loop_rate = args.loop_customers / loop_s

    print(f"vectorised: {args.customers:,} customers, {bank.transactions.num_rows:,} transactions in {vectorised_s:.1f} s "
          f"= {vectorised_rate:,.0f} customers/s")
    print(f"loop peer : {args.loop_customers:,} customers, {loop_rows:,} purchases in {loop_s:.1f} s = {loop_rate:,.0f} customers/s")
    print(f"ratio     : vectorised is {vectorised_rate / loop_rate:.0f}x the per-customer loop")
    if args.out:
        started = time.perf_counter()
        bank.write(args.out)
        print(f"write     : Parquet to {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
