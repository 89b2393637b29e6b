"""Run a date's sharded chain synchronously, as the schedule and the shard sensors would launch it.

The daemon launches each link from the run requests of ``nightly_scoring_schedule``,
``shard_scoring_sensor`` and ``publish_sensor``; this does the same from the same functions,
without a daemon: the ingest run, the shard runs side by side (each on the multiprocess executor
unless told otherwise), then the publish run. ``bench/nightly_scale.py --shards N`` and the
2-shard equality test use it; so can an operator (``python -m customer_intel.automation.chain DATE``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import dagster as dg

from customer_intel.assets.partitions import DATE_TAG, SHARDS
from customer_intel.automation.shards import PARTITION_TAG, publish_run_request, shard_run_requests

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _job(name: str):
    from customer_intel.definitions import defs

    return defs.resolve_job_def(name)


def ingest_job():
    return _job("ingest_job")


def shard_scoring_job():
    return _job("shard_scoring_job")


def publish_job():
    return _job("publish_job")


JOBS = {"ingest_job": ingest_job, "shard_scoring_job": shard_scoring_job, "publish_job": publish_job}


def _execute_apart(instance_ref, job_name: str, tags: dict[str, str], run_config: dict | None) -> dict:
    """One run in a process of its own (Dagster's execute_job is not made for threads), on the caller's instance."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _execute(instance, JOBS[job_name], tags, run_config)


def _execute(instance: dg.DagsterInstance, job, tags: dict[str, str], run_config: dict | None) -> dict:
    started = time.time()
    with dg.execute_job(dg.reconstructable(job), instance=instance, tags=tags, run_config=run_config or {}, raise_on_error=False) as result:
        run_id, success = result.run_id, result.success
    return {"run_id": run_id, "success": success, "started": started, "finished": time.time(), "tags": tags}


def _tags(request: dg.RunRequest) -> dict[str, str]:
    """A run request's tags with its partition, as the daemon launches it."""
    return {**request.tags, PARTITION_TAG: str(request.partition_key)}


def run_chain(instance: dg.DagsterInstance, day: str, parallel: int | None = None, shard_config: dict | None = None,
              quiet: dict | None = None) -> dict:
    """ingest -> every shard (``parallel`` at a time) -> publish for ``day``; each run's id, outcome and times.

    ``parallel`` defaults to as many shard runs as cores (each run's steps use the multiprocess executor), the run
    queue's rule on this machine kind. Stops at the first link that fails (a failed shard leaves the date unpublished,
    as under the daemon). The instance must be persistent when shards run in parallel (each in its own process)."""
    if SHARDS == 1:
        raise RuntimeError("one scoring shard: scoring_job scores a date in one run (set CUSTOMER_INTEL_SCORING_SHARDS > 1)")
    parallel = min(SHARDS, os.cpu_count() or 1) if parallel is None else parallel
    base = quiet or {}
    out = {"ingest": _execute(instance, ingest_job, {DATE_TAG: day}, {**base, **IN_PROCESS}), "shards": [], "publish": None}
    if not out["ingest"]["success"]:
        return out
    requests = shard_run_requests(instance.get_run_by_id(out["ingest"]["run_id"]))
    if isinstance(requests, dg.SkipReason):
        raise RuntimeError(requests.skip_message)

    shard_tags = [_tags(request) for request in requests]
    config = {**base, **(shard_config or {})}
    if parallel <= 1:
        out["shards"] = [_execute(instance, shard_scoring_job, tags, config) for tags in shard_tags]
    else:  # side by side, each run in its own process as the run launcher gives it (the instance must be persistent)
        with ProcessPoolExecutor(max_workers=parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            n = len(shard_tags)
            out["shards"] = list(pool.map(_execute_apart, [instance.get_ref()] * n, ["shard_scoring_job"] * n, shard_tags, [config] * n))
    if not all(run["success"] for run in out["shards"]):
        return out
    request = publish_run_request(instance, instance.get_run_by_id(out["shards"][-1]["run_id"]))
    if isinstance(request, dg.SkipReason):
        raise RuntimeError(request.skip_message)
    out["publish"] = _execute(instance, publish_job, _tags(request), {**base, **IN_PROCESS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("date", help="the daily partition to score, YYYY-MM-DD")
    parser.add_argument("--parallel", type=int, default=None, help="shard runs at a time (default: as many as cores)")
    args = parser.parse_args()
    with dg.DagsterInstance.get() as instance:
        out = run_chain(instance, args.date, args.parallel)
    print(json.dumps(out, indent=2))
    ok = out["publish"] is not None and out["publish"]["success"]
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
