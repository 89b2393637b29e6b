"""The nightly path at bank scale: the scoring job's partition through Dagster, per step, against a bare DuckDB query.

    .venv/bin/python bench/nightly_scale.py [--customers 1000000] [--train-sample 50000] [--data bench/.data]
                                            [--executor in_process|multiprocess] [--shards N]

1. Generates the synthetic bank once (kept under ``--data`` and reused, as ``bench/features_scale.py`` does).
2. Trains once, when the bench's own MLflow store (``--data``/nightly_<customers>/) has no champion:
   ``training_job`` with every family's training frame on a stable sample of ``--train-sample``
   customers (``sample_customers``; the champions then score every customer), in its own process;
   prints each family's training time.
3. Runs the nightly path exactly as the schedule does: ``scoring_job`` for the last data day
   (ingest -> contract checks -> features as of the day -> every family's daily scores ->
   ``scored_customers`` -> ``campaign_targets`` and ``lookalike_audience``) on a fresh warehouse,
   with the real resources, in its own process; prints every step's wall time, the run's wall
   time and the peak RSS of the whole process tree (sampled every 0.2 s; with the multiprocess
   executor the steps' processes are summed), and how many at-risk customers got reasons.
   With ``--shards N`` > 1 it runs the sharded chain instead (``CUSTOMER_INTEL_SCORING_SHARDS=N``):
   ``ingest_job``, each ``shard_scoring_job`` run alone on the machine, then ``publish_job``, and
   prints each run's time (a shard's time is what one node of N would take).
4. Runs the bare DuckDB feature query of ``bench/features_scale.py`` over the same raw files in its
   own process, and prints the feature step as a ratio to it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import features_scale
import psutil

ROOT = Path(__file__).resolve().parent.parent
AS_OF = features_scale.AS_OF


def _environment(bank: Path, home: Path, warehouse: Path) -> dict[str, str]:
    return {"CUSTOMER_INTEL_RAW_DIR": str(bank / "raw"), "CUSTOMER_INTEL_WAREHOUSE_DIR": str(warehouse),
            "CUSTOMER_INTEL_DATA_DIR": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "DAGSTER_HOME": str(home / "dagster"), "OMP_WAIT_POLICY": "PASSIVE"}


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def _child(mode: str, env: dict[str, str], **params) -> dict:
    """One measurement in a fresh process; peak RSS of its whole process tree, sampled."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--result", str(out), "--params", json.dumps(params)],
                            env={**os.environ, **env}, cwd=ROOT)
    samples, done = [], threading.Event()

    def sample():
        while not done.wait(0.2):
            samples.append((time.time(), _tree_rss(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    if status != 0:
        raise SystemExit(f"{mode} run failed (status {status})")
    result = json.loads(out.read_text())
    out.unlink()
    peak = max((rss for _, rss in samples), default=0)
    result["peak_rss_gb"] = max(peak / 1024**3, usage.ru_maxrss / 1024 / 1024)
    # the peak while each step ran (with the multiprocess executor, of every process alive then)
    result["step_peak_gb"] = {step: max((rss for t, rss in samples if start <= t <= end), default=0) / 1024**3
                              for step, (start, end) in result.get("step_times", {}).items()}
    return result


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the steps' events stay in the instance


def _step_times(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) in epoch seconds of every step of the run."""
    return {s.step_key: (s.start_time, s.end_time) for s in instance.get_run_step_stats(run_id) if s.end_time and s.start_time}


def _families():
    from customer_intel.assets import FAMILIES

    return [f.spec.name for f in FAMILIES]


def run_training(sample: int) -> dict:
    import dagster as dg

    from customer_intel.definitions import defs
    from customer_intel.table_names import training_frame

    run_config = {**QUIET, "ops": {training_frame(name): {"config": {"sample_customers": sample}} for name in _families()}}
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("training_job").execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
        steps = _step_times(instance, result.run_id)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise SystemExit(f"training_job failed at {failed}")
    return {"total_s": time.perf_counter() - started, "step_times": steps}


def run_nightly(executor: str, shards: int = 1) -> dict:
    import dagster as dg

    from customer_intel.definitions import defs
    from customer_intel.resources.warehouse import Warehouse
    from customer_intel.table_names import CAMPAIGN_TARGETS, SCORED_CUSTOMERS

    started = time.perf_counter()
    runs = {}
    if shards > 1:  # the chain the schedule and the shard sensors launch; one shard at a time, each with the whole machine
        from customer_intel.automation.chain import run_chain

        _dagster_home()
        shard_config = {"execution": {"config": {executor: {}}}} if executor == "in_process" else None
        with dg.DagsterInstance.get() as instance:
            chain = run_chain(instance, AS_OF, parallel=1, shard_config=shard_config, quiet=QUIET)
            links = [("ingest_job", chain["ingest"]), *((f"shard {i}", run) for i, run in enumerate(chain["shards"])),
                     ("publish_job", chain["publish"])]
            steps = {}
            for name, run in links:
                if run is None:
                    continue
                runs[name] = run["finished"] - run["started"]
                steps.update({f"{name}: {step}": times for step, times in _step_times(instance, run["run_id"]).items()})
        success, run_id = all(run is not None and run["success"] for _, run in links), chain["ingest"]["run_id"]
    elif executor == "in_process":
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("scoring_job").execute_in_process(partition_key=AS_OF, instance=instance, raise_on_error=False,
                                                                                   run_config=QUIET)
            steps, success, run_id = _step_times(instance, result.run_id), result.success, result.run_id
    else:
        _dagster_home()
        with dg.DagsterInstance.get() as instance:
            job = dg.reconstructable(_scoring_job)
            with dg.execute_job(job, instance=instance, tags={"dagster/partition": AS_OF},
                                run_config={**QUIET, "execution": {"config": {"multiprocess": {"max_concurrent": os.cpu_count()}}}}) as result:
                success, run_id = result.success, result.run_id
            steps = _step_times(instance, run_id)
    total = time.perf_counter() - started
    if not success:
        raise SystemExit(f"scoring_job failed (run {run_id})")
    scored = Warehouse().read(SCORED_CUSTOMERS, AS_OF, columns=["customer_id", "churn_reasons", "churn_probability"])
    at_risk = scored["churn_probability"] >= 0.5
    with_reasons = at_risk & scored["churn_reasons"].fillna("").astype(str).str.len().gt(0)
    targets = Warehouse().read(CAMPAIGN_TARGETS, AS_OF, columns=["customer_id"])
    return {"total_s": total, "step_times": steps, "runs": runs, "customers": len(scored), "at_risk": int(at_risk.sum()),
            "at_risk_with_reasons": int(with_reasons.sum()), "targets": len(targets)}


def _dagster_home() -> Path:
    """The bench's own Dagster instance (SQLite under ``--data``), telemetry off."""
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def _scoring_job():
    from customer_intel.definitions import defs

    return defs.resolve_job_def("scoring_job")


def _has_champions(home: Path) -> bool:
    if not (home / "mlflow.db").exists():
        return False
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    code = ("import mlflow; c = mlflow.MlflowClient(); import sys; "
            "sys.exit(0 if all(c.get_model_version_by_alias('customer_intel_' + f, 'champion') for f in sys.argv[1:]) else 1)")
    return subprocess.run([sys.executable, "-c", code, *_families()], env=env, cwd=ROOT, capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-sample", type=int, default=50_000, help="customers in every family's training frame")
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"), help="where banks and the bench's MLflow store are kept")
    parser.add_argument("--executor", choices=("in_process", "multiprocess"), default="multiprocess")
    parser.add_argument("--shards", type=int, default=1, help="scoring shards (CUSTOMER_INTEL_SCORING_SHARDS): > 1 runs the chain "
                        "ingest_job -> every shard_scoring_job, one at a time -> publish_job, and prints each run's time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train again even when champions exist")
    parser.add_argument("--child", choices=("training", "nightly", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        params = json.loads(args.params)
        if args.child == "training":
            result = run_training(params["sample"])
        elif args.child == "nightly":
            result = run_nightly(params["executor"], params.get("shards", 1))
        else:
            result = features_scale.run_bare(Path(params["bank"]))
        Path(args.result).write_text(json.dumps(result))
        return

    bank = features_scale._generate(args.customers, Path(args.data), args.seed)
    home = Path(args.data) / f"nightly_{args.customers}_{args.seed}"
    home.mkdir(parents=True, exist_ok=True)
    if args.retrain or not _has_champions(home):
        print(f"training every family on {args.train_sample:,} of {args.customers:,} customers ...", flush=True)
        training = _child("training", _environment(bank, home, home / "training_warehouse"), sample=args.train_sample)
        print(f"  training_job {training['total_s']:.0f} s, peak RSS {training['peak_rss_gb']:.2f} GB", flush=True)
        for name in _families():
            seconds = sum(end - start for k, (start, end) in training["step_times"].items() if k.startswith(name + "_"))
            print(f"  {name}: {seconds:.0f} s", flush=True)
    warehouse = Path(tempfile.mkdtemp(prefix="nightly_warehouse_", dir=home))
    what = "scoring_job" if args.shards == 1 else f"the {args.shards}-shard chain"
    print(f"nightly {what} for {AS_OF} ({args.executor} executor) ...", flush=True)
    nightly = _child("nightly", {**_environment(bank, home, warehouse), "CUSTOMER_INTEL_SCORING_SHARDS": str(args.shards)},
                     executor=args.executor, shards=args.shards)
    bare = _child("bare", {"OMP_WAIT_POLICY": "PASSIVE"}, bank=str(bank))
    steps = {step: end - start for step, (start, end) in nightly["step_times"].items()}
    print(f"\n{nightly['customers']:,} customers, {bare['transactions']:,} transactions; {nightly['at_risk']:,} at risk, "
          f"{nightly['at_risk_with_reasons']:,} of them with reasons; {nightly['targets']:,} campaign targets\n")
    print("| step | wall time (s) | peak RSS while it ran (GB) |")
    print("|---|---:|---:|")
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"| {step} | {seconds:.1f} | {nightly['step_peak_gb'].get(step, 0):.2f} |")
    for name, seconds in nightly.get("runs", {}).items():
        print(f"| *{name} run* | *{seconds:.1f}* | *{max((v for k, v in nightly['step_peak_gb'].items() if k.startswith(name + ':')), default=0):.2f}* |")
    print(f"| **{what}, end to end** | **{nightly['total_s']:.1f}** | **{nightly['peak_rss_gb']:.2f}** |")
    print(f"\npeak RSS of the run's process tree: {nightly['peak_rss_gb']:.2f} GB")
    features = sum(v for k, v in steps.items() if k.split(": ")[-1] == "customer_features") or float("nan")
    print(f"feature step {features:.1f} s vs the bare DuckDB query {bare['total_s']:.1f} s: {features / bare['total_s']:.2f}x")


if __name__ == "__main__":
    main()
