"""``python -m customer_intel.synthetic --customers N --out DIR --seed S``: write the synthetic bank."""

from __future__ import annotations

import argparse
import time

from customer_intel.synthetic.generator import SyntheticBankConfig, generate_bank

DEFAULTS = SyntheticBankConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=DEFAULTS.n_customers, help="number of customers (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed (default %(default)s)")
    parser.add_argument("--out", default="data", help="output folder: raw tables go to OUT/raw, truth to OUT/truth (default %(default)s)")
    parser.add_argument("--end-date", default=DEFAULTS.end_date, help="last day of history, inclusive (default %(default)s)")
    parser.add_argument("--history-days", type=int, default=DEFAULTS.history_days, help="days of history (default %(default)s)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="raw table format (default %(default)s)")


def generate(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    bank = generate_bank(n_customers=args.customers, seed=args.seed, end_date=args.end_date, history_days=args.history_days)
    generated = time.perf_counter()
    paths = bank.write(args.out, fmt=args.format)
    written = time.perf_counter()
    print(
        f"synthetic bank: {bank.customers.num_rows:,} customers, {bank.transactions.num_rows:,} transactions, "
        f"{bank.campaigns.num_rows:,} campaign rows; generated in {generated - started:.1f} s, written in {written - generated:.1f} s"
    )
    for name, path in paths.items():
        print(f"  {name:<13} {path}")
    return {"bank": bank, "paths": paths}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m customer_intel.synthetic", description=__doc__)
    add_arguments(parser)
    generate(parser.parse_args(argv))


if __name__ == "__main__":
    main()
