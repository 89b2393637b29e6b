"""Ingest + checks + features at bank scale: the scoring job's own steps vs a bare DuckDB query, same run.

    .venv/bin/python bench/features_scale.py [--sizes 250000,500000,1000000] [--data bench/.data]

For each size it generates the synthetic bank once (kept under ``--data`` and reused), then runs,
each in its own process so peak RSS is that step's alone:

- **product**: the scoring job's ingest and feature assets (``raw_transactions``, ``raw_customers``,
  ``raw_campaigns``, ``customer_features``) materialised by Dagster for the last data day, with
  the real resources over a fresh local warehouse: every contract check, the typed copies, the
  one feature builder, the Parquet writes and their manifests;
- **bare**: one hand-written DuckDB query over the same raw Parquet files computing the same
  feature columns (RFM, the (x, t_x, T) triple, spend trend, ticket, refunds, category entropy
  and top category, channel shares, the profile join), fetched into pandas; no checks, no writes.

Prints, per size: seconds for ingest + checks, the feature step, the product total, the bare
query, the ratio feature step / bare query, and the peak RSS of each process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-06-30"


def _generate(size: int, folder: Path, seed: int) -> Path:
    """The synthetic bank of ``size`` customers, generated once in its own process and reused.

    Not in this process: Linux keeps a process's peak RSS across fork and exec, so a parent that
    had held the generated bank would lend its peak to every measured child.
    """
    raw = folder / f"bank_{size}_{seed}"
    if not (raw / "raw" / "transactions.parquet").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "customer_intel.synthetic", "--customers", str(size), "--seed", str(seed),
                        "--end-date", AS_OF, "--out", str(raw)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"  generated {size:,} customers in {time.perf_counter() - started:.0f} s -> {raw}", flush=True)
    return raw


def _child(mode: str, bank: Path) -> dict:
    """Run one measurement in a fresh process; its rusage gives the peak RSS of that process alone."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--bank", str(bank), "--result", str(out)], env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode} run failed (status {status})")
    result = json.loads(out.read_text())
    out.unlink()
    result["peak_rss_gb"] = usage.ru_maxrss / 1024 / 1024  # ru_maxrss is in KiB on Linux
    return result


def run_product(bank: Path) -> dict:
    """The scoring job's ingest and feature steps, as Dagster runs them."""
    import dagster as dg

    from customer_intel.assets import features, ingest
    from customer_intel.resources import build_resources

    warehouse = tempfile.mkdtemp(prefix="bench_warehouse_")
    os.environ.update({"CUSTOMER_INTEL_RAW_DIR": str(bank / "raw"), "CUSTOMER_INTEL_WAREHOUSE_DIR": warehouse,
                       "CUSTOMER_INTEL_DATA_DIR": warehouse})
    assets = dg.load_assets_from_modules([ingest, features])
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, partition_key=AS_OF, resources=build_resources(), instance=instance)
        total = time.perf_counter() - started
        steps = {stat.step_key: stat.end_time - stat.start_time for stat in instance.get_run_step_stats(result.run_id)}
    rows = result.asset_materializations_for_node("customer_features")[0].metadata["dagster/row_count"].value
    return {"total_s": total, "ingest_s": sum(v for k, v in steps.items() if k.startswith("raw_")),
            "features_s": steps["customer_features"], "customers": rows}


BARE_SQL = """
WITH tx AS (SELECT customer_id, CAST(ts AS DATE) AS d, amount, category, channel FROM read_parquet('{tx}')
            WHERE ts < TIMESTAMPTZ '{end}'),
daily AS (SELECT customer_id, d, sum(amount) AS net, count(*) AS n, count(*) FILTER (amount >= 0) AS np,
                 coalesce(sum(amount) FILTER (amount >= 0), 0) AS ps, count(*) FILTER (amount < 0) AS nr{chan_day}
          FROM tx GROUP BY ALL),
c AS (SELECT customer_id, min(d) FILTER (np > 0) AS f, max(d) FILTER (np > 0) AS l, count(*) FILTER (np > 0) AS k,
             arg_min(net, d) FILTER (np > 0) AS fn, sum(net) AS tot,
             coalesce(sum(net) FILTER (d > DATE '{r0}'), 0) AS sr, coalesce(sum(net) FILTER (d <= DATE '{r0}' AND d > DATE '{p0}'), 0) AS sp,
             count(*) FILTER (np > 0 AND d > DATE '{r0}') AS rd, sum(np) AS np, sum(ps) AS ps, sum(n) AS n, sum(nr) AS nr{chan_sum}
      FROM daily GROUP BY customer_id HAVING count(*) FILTER (np > 0) > 0),
cc AS (SELECT customer_id, category, count(*) AS n FROM tx WHERE amount >= 0 AND category IS NOT NULL GROUP BY ALL),
ce AS (SELECT customer_id, -sum(n / t * log2(n / t)) AS entropy, first(category ORDER BY n DESC, category) AS top
       FROM (SELECT *, sum(n) OVER (PARTITION BY customer_id) AS t FROM cc) GROUP BY customer_id)
SELECT c.customer_id, DATE '{day}' - l AS recency, k - 1 AS frequency, tot / k AS monetary, l - f AS t_x, DATE '{day}' - f AS "T",
       CASE WHEN k > 1 THEN (tot - fn) / (k - 1) ELSE 0 END AS monetary_value, tot AS total_spend, sr, sp,
       CASE WHEN abs(sr) + abs(sp) > 0 THEN (sr - sp) / (abs(sr) + abs(sp)) ELSE 0 END AS spend_trend, rd,
       ps / greatest(np, 1) AS avg_ticket, nr / n AS refund_share, coalesce(entropy, 0) AS category_entropy, top{chan_share}, p.*
FROM c LEFT JOIN ce USING (customer_id) LEFT JOIN read_parquet('{customers}') p ON p.customer_id = c.customer_id
ORDER BY c.customer_id
"""


def run_bare(bank: Path) -> dict:
    """The peer: one DuckDB query with its defaults over the raw files."""
    import duckdb
    import pandas as pd

    tx, customers = bank / "raw" / "transactions.parquet", bank / "raw" / "customers.parquet"
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    channels = [r[0] for r in con.execute(f"SELECT DISTINCT channel FROM read_parquet('{tx}') WHERE channel IS NOT NULL "
                                          f"AND ts < TIMESTAMPTZ '{AS_OF} 00:00:00+00' + INTERVAL 1 DAY ORDER BY 1").fetchall()]
    day = pd.Timestamp(AS_OF)
    sql = BARE_SQL.format(
        tx=tx, customers=customers, day=AS_OF, end=(day + pd.Timedelta(days=1)).isoformat() + "+00:00",
        r0=(day - pd.Timedelta(days=90)).date(), p0=(day - pd.Timedelta(days=180)).date(),
        chan_day="".join(f", count(*) FILTER (channel = '{c}') AS ch{i}" for i, c in enumerate(channels)),
        chan_sum="".join(f", sum(ch{i}) AS ch{i}" for i in range(len(channels))),
        chan_share="".join(f", ch{i} / n AS share_{i}" for i in range(len(channels))),
    )
    frame = con.execute(sql).df()
    elapsed = time.perf_counter() - started
    return {"total_s": elapsed, "customers": len(frame), "transactions": con.execute(f"SELECT count(*) FROM read_parquet('{tx}')").fetchone()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,500000,1000000", help="customers per run, comma-separated")
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"), help="where generated banks are kept and reused")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("product", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--bank", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (run_product if args.child == "product" else run_bare)(Path(args.bank))
        Path(args.result).write_text(json.dumps(result))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} customers", flush=True)
        bank = _generate(size, Path(args.data), args.seed)
        product = _child("product", bank)
        bare = _child("bare", bank)
        n_tx = bare["transactions"]
        if product["customers"] != bare["customers"]:
            raise SystemExit(f"the product featured {product['customers']:,} customers, the bare query {bare['customers']:,}")
        rows.append((size, n_tx, product, bare))
        print(f"  product: ingest + checks {product['ingest_s']:.1f} s, features {product['features_s']:.1f} s, "
              f"total {product['total_s']:.1f} s, peak {product['peak_rss_gb']:.2f} GB; bare query {bare['total_s']:.1f} s, "
              f"peak {bare['peak_rss_gb']:.2f} GB", flush=True)
    print("\n| customers | transactions | ingest + checks (s) | feature step (s) | product total (s) | bare query (s) "
          "| feature step / bare | peak RSS product (GB) | peak RSS bare (GB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, n_tx, product, bare in rows:
        print(f"| {size:,} | {n_tx:,} | {product['ingest_s']:.1f} | {product['features_s']:.1f} | {product['total_s']:.1f} | "
              f"{bare['total_s']:.1f} | {product['features_s'] / bare['total_s']:.2f}× | {product['peak_rss_gb']:.2f} | "
              f"{bare['peak_rss_gb']:.2f} |")


if __name__ == "__main__":
    main()
