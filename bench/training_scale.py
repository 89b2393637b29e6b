"""What a retrain costs on the bank-scale data: ``training_job`` per family, at each training sample size.

    .venv/bin/python bench/training_scale.py [--customers 1000000] [--samples 10000,40000] [--data bench/.data]

Every family's training frame is built on a stable sample of the bank's customers
(``sample_customers``: the n smallest md5 keys, the same customers in every raw table; the
champions then score every customer nightly). For each sample size this runs ``training_job``
once, in its own process, on a fresh MLflow store and warehouse, and prints each family's wall
time (frame + candidates + gate + promotion) and the peak RSS while its steps ran, then the growth
per family between the two sizes (the exponent of time in sample size), which is what a weekly
retrain at a larger sample would cost.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import features_scale
import nightly_scale

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--samples", default="10000,40000", help="training sample sizes, comma-separated")
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples = [int(s) for s in args.samples.split(",")]
    bank = features_scale._generate(args.customers, Path(args.data), args.seed)
    families = nightly_scale._families()
    results = {}
    for sample in samples:
        home = Path(tempfile.mkdtemp(prefix=f"training_{sample}_", dir=args.data))
        print(f"training_job on {sample:,} of {args.customers:,} customers ...", flush=True)
        results[sample] = nightly_scale._child("training", nightly_scale._environment(bank, home, home / "warehouse"), sample=sample)
        print(f"  {results[sample]['total_s']:.0f} s, peak RSS {results[sample]['peak_rss_gb']:.2f} GB", flush=True)

    def family(result: dict, name: str) -> tuple[float, float]:
        steps = {k: v for k, v in result["step_times"].items() if k.startswith(name + "_")}
        return (sum(end - start for start, end in steps.values()),
                max((result["step_peak_gb"].get(k, 0.0) for k in steps), default=0.0))

    print(f"\n{args.customers:,} customers in the bank; each family's training frame on a stable sample\n")
    header = " | ".join(f"{s:,}: s | {s:,}: GB" for s in samples)
    print(f"| family | {header} | growth exponent |")
    print("|---|" + "---:|" * (2 * len(samples) + 1))
    for name in families:
        cells, times = [], []
        for sample in samples:
            seconds, peak = family(results[sample], name)
            cells += [f"{seconds:.0f}", f"{peak:.2f}"]
            times.append(seconds)
        exponent = (math.log(times[-1] / times[0]) / math.log(samples[-1] / samples[0])) if len(samples) > 1 and min(times) > 0 else float("nan")
        print(f"| {name} | " + " | ".join(cells) + f" | {exponent:.2f} |")
    ingest = [sum(e - s for k, (s, e) in results[n]["step_times"].items() if k.startswith("raw_")) for n in samples]
    print("| ingest (raw tables, whole bank) | " + " | ".join(f"{t:.0f} | -" for t in ingest) + " | - |")
    print("| **training_job** | " + " | ".join(f"**{results[n]['total_s']:.0f}** | **{results[n]['peak_rss_gb']:.2f}**" for n in samples)
          + " | |")


if __name__ == "__main__":
    main()
