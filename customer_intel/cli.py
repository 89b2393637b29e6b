"""``customer-intel``: generate the synthetic bank, run the whole pipeline once, or open the UI.

    customer-intel demo      generate data/ and materialise every asset for the last data day
    customer-intel generate  only write the synthetic bank (same flags as python -m customer_intel.synthetic)
    customer-intel ui        dagster dev on 127.0.0.1 with DAGSTER_HOME under data/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from customer_intel.synthetic.__main__ import add_arguments, generate
from customer_intel.table_names import training_frame

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_JOBS = ("training_job", "scoring_job")  # in order: scoring loads the champion training registered


def prepare_environment(data_dir: Path) -> Path:
    """Point the pipeline at ``data_dir`` and give Dagster a persistent home inside it."""
    data_dir = data_dir.resolve()
    os.environ["CUSTOMER_INTEL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see STACK notes: busy-waiting threads on 2 cores
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = PROJECT_ROOT / "dagster.yaml"
    if instance_yaml.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(instance_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def write_example_dataset(dataset: str, out: Path) -> None:
    """Write a dataset that ships inside a package as contract tables under ``out/raw``."""
    from customer_intel.cltv.datasets import load_cdnow_transactions

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stale in raw.glob("*"):  # another dataset's tables would be discovered too
        stale.unlink()
    transactions = load_cdnow_transactions(dataset.removeprefix("cdnow_") if dataset != "cdnow" else "master")
    transactions.to_parquet(raw / "transactions.parquet", index=False)
    print(f"{dataset}: {transactions['customer_id'].nunique():,} customers, {len(transactions):,} transactions -> {raw}")


def demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    training_config: dict = {}
    if args.dataset == "synthetic":
        generate(args)
        partition = args.partition or args.end_date
    else:  # CDNOW, with the split of Fader, Hardie & Lee (2005): 39 weeks of calibration, 39 of holdout
        from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END

        write_example_dataset(args.dataset, Path(args.out))
        os.environ.setdefault("CUSTOMER_INTEL_PARTITIONS_START", "1997-01-01")
        partition = args.partition or CDNOW_OBSERVATION_END
        training_config = {"ops": {training_frame("cltv"): {"config": {"cutoff": CDNOW_CALIBRATION_END, "horizon_days": 273}}}}
    home = prepare_environment(Path(args.out))
    import dagster as dg  # after the partitions start is set: the daily partitions are defined at import

    from customer_intel.definitions import defs

    with dg.DagsterInstance.get() as instance:
        for job_name in DEMO_JOBS:
            job = defs.resolve_job_def(job_name)
            partitioned = job.partitions_def is not None
            print(f"materialising {job_name}" + (f" for partition {partition}" if partitioned else "") + " ...", flush=True)
            result = job.execute_in_process(
                partition_key=partition if partitioned else None,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}, **({} if partitioned else training_config)},
            )
            if not result.success:
                for event in result.all_events:
                    if event.event_type_value == "STEP_FAILURE":
                        print(f"FAILED {event.step_key}: {event.event_specific_data.error.message}", file=sys.stderr)
                return 1
    warehouse = Path(os.environ.get("CUSTOMER_INTEL_WAREHOUSE_DIR") or Path(args.out).resolve() / "warehouse")
    print(f"\ndone in {time.perf_counter() - started:.1f} s. Outputs:")
    for manifest in sorted(warehouse.rglob("_SUCCESS")):  # each table's published data file
        print(f"  {manifest.parent / json.loads(manifest.read_text())['data_file']}")
    print(f"\nDagster home (runs, event log): {home}")
    print("Open the UI:  .venv/bin/customer-intel ui   (then http://127.0.0.1:3000)")
    return 0


def ui(args: argparse.Namespace) -> int:
    prepare_environment(Path(args.out))
    command = ["dagster", "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", str(PROJECT_ROOT / "workspace.yaml")]
    executable = Path(sys.executable).with_name("dagster")
    command[0] = str(executable) if executable.exists() else "dagster"
    print(" ".join(command), flush=True)
    # a non-interactive parent can leave SIGINT/SIGTERM ignored; dagster dev must stop on them
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(command[0], command) if executable.exists() else os.execvp(command[0], command)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="customer-intel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="generate the synthetic bank and materialise every asset")
    add_arguments(p_demo)
    p_demo.add_argument("--partition", default=None, help="partition date to score (default: the last day of data)")
    p_demo.add_argument("--dataset", choices=("synthetic", "cdnow", "cdnow_sample"), default="synthetic",
                        help="synthetic bank (default), or the CDNOW log shipped with lifetimes (FHL split); use its own --out")
    p_demo.set_defaults(func=demo)
    p_gen = sub.add_parser("generate", help="write the synthetic bank")
    add_arguments(p_gen)
    p_gen.set_defaults(func=lambda a: (generate(a), 0)[1])
    p_ui = sub.add_parser("ui", help="start dagster dev on 127.0.0.1 over the data folder")
    p_ui.add_argument("--out", default="data", help="data folder (default %(default)s)")
    p_ui.add_argument("--port", type=int, default=3000)
    p_ui.set_defaults(func=ui)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
