"""SIGKILL in the middle of a run, under the real daemon and the one-at-a-time queue.

A temporary Dagster instance with the project's dagster.yaml (QueuedRunCoordinator, the
``customer_intel/writes=shared-tables`` limit of 1, run monitoring; the copy only polls faster),
a code server (``dagster api grpc``, as the deployment's ``code`` container) and a real
``dagster-daemon run``. Runs are submitted to the queue all at once; each of the first ones is
SIGKILLed (its run worker and every process under it) once a chosen step has started: training at
each family's ``<family>_models`` (after its MLflow runs are open), then scoring at
``campaign_targets``. Every killed run must end FAILURE without anyone touching it, the run queued
behind it under the same tag must be dequeued, and the runs that follow must succeed: a full
training run (every family's champion registered, the MLflow runs the killed workers left RUNNING
ended FAILED) and a scoring run that publishes every table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget

from customer_intel.assets import FAMILIES
from customer_intel.jobs import SHARED_TABLES_TAG
from customer_intel.resources import ModelRegistry, Warehouse
from customer_intel.resources.model_registry import CHAMPION_ALIAS, PROMOTION_TAG, registered_model_name
from customer_intel.table_names import CAMPAIGN_TARGETS, SCORED_CUSTOMERS
from customer_intel_tests.conftest import SMALL_END_DATE, free_port, write_raw

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
LIGHT_TRAINING = ROOT / "customer_intel_tests" / "fixtures" / "light_training.yaml"
LOCATION = "customer_intel"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}  # the run worker is the only process of a run: one pid to kill
FAMILY_NAMES = tuple(family.spec.name for family in FAMILIES)
WAIT_S = 240  # for any one run to reach its step or its end


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as sink:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen | None) -> None:
    """SIGKILL a process group this test started (the daemon or the code server, and every run worker under it)."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every process under it (compute-log tails included), as the OOM killer or a node loss would."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return []
    victims = [parent, *parent.children(recursive=True)]
    for process in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=30)
    return [p.pid for p in victims]


def wait_for(what: str, check, timeout: float = WAIT_S, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def serving(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("up")
        return True
    except Exception:  # not listening yet
        return False


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid from its engine event ``Started process for run (pid: N).``"""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        message = record.event_log_entry.dagster_event.message or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.removeprefix("Started process for run (pid: ").rstrip(")."))
    return None


def step_started(instance: dg.DagsterInstance, run_id: str, step: str) -> bool:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return any(r.event_log_entry.step_key == step for r in records)


def mlflow_runs_open(registry: ModelRegistry, dagster_run_id: str) -> bool:
    """Whether the run has an MLflow run RUNNING (a models step is logging its candidates)."""
    client = registry.client()
    experiment = client.get_experiment_by_name("customer_intel")
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.dagster_run_id = '{dagster_run_id}'")
    return bool(runs)


def submit(instance, workspace, job_name: str, run_config: dict, assets: tuple[str, ...] | None = None, tags: dict | None = None) -> str:
    """Create a run of ``job_name`` (optionally only ``assets`` of it) from the code server's snapshot and submit it to the queue."""
    location = workspace.get_code_location(LOCATION)
    repo = next(iter(location.get_repositories().values()))
    keys = frozenset(dg.AssetKey(a) for a in assets) if assets else None
    remote_job = location.get_job(JobSubsetSelector(location_name=LOCATION, repository_name=repo.name, job_name=job_name,
                                                    op_selection=None, asset_selection=keys))
    plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance)
    run = instance.create_run(
        job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None, step_keys_to_execute=None,
        op_selection=None, status=None, root_run_id=None, parent_run_id=None, tags={**remote_job.tags, **(tags or {})},
        job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot, remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(), asset_selection=keys, asset_check_selection=None,
        asset_graph=repo.asset_graph)
    instance.submit_run(run.run_id, workspace)
    return run.run_id


def status(instance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_killed_runs_are_marked_failed_and_never_block_the_queue(small_frames, tmp_path):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    instance_config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance_config["run_monitoring"]["enabled"] is True  # the project's own settings, then faster polls for the test
    assert yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["run_monitoring"] == instance_config["run_monitoring"]
    assert instance_config["run_coordinator"]["config"]["tag_concurrency_limits"] == [
        {"key": "customer_intel/writes", "value": "shared-tables", "limit": 1}]
    instance_config["run_monitoring"]["poll_interval_seconds"] = 2
    instance_config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config))
    write_raw(small_frames, data / "raw", fmt="parquet")
    port = free_port()
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(
        {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": LOCATION}}]}))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CUSTOMER_INTEL_", "MLFLOW_"))},
           "DAGSTER_HOME": str(home), "CUSTOMER_INTEL_DATA_DIR": str(data), "OMP_WAIT_POLICY": "PASSIVE",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    registry = ModelRegistry(tracking_uri=f"sqlite:///{data / 'mlflow' / 'mlflow.db'}")
    light = yaml.safe_load(LIGHT_TRAINING.read_text())
    # the store's tables made here, before any run: MLflow's migrations of a new SQLite file are not safe from two processes at once
    registry.client().search_experiments()

    code_server = daemon = None
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        code_server = start([str(BIN / "dagster"), "api", "grpc", "-m", "customer_intel_tests.faults.kill_location", "-h", "127.0.0.1",
                             "-p", str(port), "-d", str(ROOT), "--location-name", LOCATION], env, tmp_path / "code_server.log")
        wait_for("the code server", lambda: serving(port), timeout=180, every=0.5)  # before the daemon loads its workspace
        daemon = start([str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")], env, tmp_path / "daemon.log")
        with WorkspaceProcessContext(instance, GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name=LOCATION)) as ctx:
            workspace = ctx.create_request_context()
            assert not workspace.get_code_location_error(LOCATION)

            # training killed once in each family, the last run completes; all queued at once behind each other
            kills = {}
            for family in FAMILY_NAMES:
                ops = {k: v for k, v in light["ops"].items() if k == f"{family}_models"}
                assets = ("raw_customers", "raw_transactions", "raw_campaigns", f"{family}_training_frame", f"{family}_models")
                kills[submit(instance, workspace, "training_job", {**IN_PROCESS, "ops": ops}, assets=assets)] = f"{family}_models"
            final_training = submit(instance, workspace, "training_job", {**IN_PROCESS, **light})
            # scoring (behind them under the same tag): killed at campaign_targets, then a re-run publishes
            partition = {"dagster/partition": SMALL_END_DATE}
            killed_scoring = submit(instance, workspace, "scoring_job", IN_PROCESS, tags=partition)
            rerun = submit(instance, workspace, "scoring_job", IN_PROCESS, tags=partition)
            queued = [status(instance, run_id) for run_id in [*kills, final_training, killed_scoring, rerun]]
            assert set(queued) <= {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}

            timings = {}
            for run_id, step in kills.items():
                started = time.monotonic()
                wait_for(f"{step} to start in run {run_id}", lambda run_id=run_id, step=step: step_started(instance, run_id, step))
                # other runs of the same tag wait in the queue meanwhile
                others = [r for r in [*kills, final_training, killed_scoring, rerun] if r != run_id and status(instance, r) in
                          (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)]
                assert not others, f"two shared-tables runs at once: {run_id} and {others}"
                wait_for(f"{step}'s MLflow runs", lambda run_id=run_id: mlflow_runs_open(registry, run_id), timeout=60, every=0.1)
                pid = worker_pid(instance, run_id)
                assert pid is not None and psutil.pid_exists(pid)
                killed = kill_tree(pid)
                killed_at = time.monotonic()
                wait_for(f"run {run_id} marked failed", lambda run_id=run_id: status(instance, run_id) == dg.DagsterRunStatus.FAILURE,
                         timeout=120)
                timings[step] = (round(killed_at - started, 1), round(time.monotonic() - killed_at, 1), len(killed))
            print("kill -> FAILURE (s) per step:", timings)

            wait_for("the training run after the kills", lambda: instance.get_run_by_id(final_training).is_finished, timeout=600, every=1)
            assert status(instance, final_training) == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]

            wait_for("campaign_targets to start", lambda: step_started(instance, killed_scoring, CAMPAIGN_TARGETS))
            assert status(instance, rerun) == dg.DagsterRunStatus.QUEUED
            kill_tree(worker_pid(instance, killed_scoring))
            wait_for("the killed scoring run marked failed", lambda: status(instance, killed_scoring) == dg.DagsterRunStatus.FAILURE,
                     timeout=120)
            wait_for("the scoring re-run", lambda: instance.get_run_by_id(rerun).is_finished, timeout=600, every=1)
            assert status(instance, rerun) == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]

        # every killed run: FAILURE, said by the code server that launched it, and it holds no slot
        for run_id in [*kills, killed_scoring]:
            messages = [r.event_log_entry.dagster_event.message or "" for r in
                        instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records]
            assert any(f"Run execution process for {run_id} was terminated by signal 9" in m for m in messages), messages
        in_flight = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                                                       dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))
        assert not in_flight

        # outputs consistent: each champion loads by alias, every version promoted and READY, no MLflow run left RUNNING
        client = registry.client()
        for family in FAMILY_NAMES:
            name = registered_model_name(family)
            alias = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
            versions = client.search_model_versions(f"name = '{name}'")
            assert {(v.version, v.status, v.tags.get(PROMOTION_TAG)) for v in versions} == {(alias.version, "READY", "promoted")}
            assert registry.load_scorer(family) is not None
        experiment = client.get_experiment_by_name("customer_intel")
        statuses = [r.info.status for r in client.search_runs([experiment.experiment_id], max_results=1000)]
        assert "RUNNING" not in statuses and statuses.count("FAILED") >= len(FAMILY_NAMES)  # each killed models step's parent run

        # tables readable, campaign_targets of the re-run over the re-run's scored customers
        warehouse = Warehouse(root=str(data / "warehouse"))
        scored = warehouse.read(SCORED_CUSTOMERS, SMALL_END_DATE)
        targets = warehouse.read(CAMPAIGN_TARGETS, SMALL_END_DATE)
        assert len(scored) == len(small_frames["customers"]) and len(targets) > 0
        assert set(targets["customer_id"]) <= set(scored["customer_id"])
        assert warehouse.manifest(CAMPAIGN_TARGETS, SMALL_END_DATE)["run_id"] == rerun
        assert SHARED_TABLES_TAG.items() <= instance.get_run_by_id(rerun).tags.items()
        for run_id in [*kills, final_training, killed_scoring, rerun]:
            record = instance.get_run_record_by_id(run_id)
            print(f"{record.dagster_run.job_name} {run_id[:8]} {record.dagster_run.status.value}: queued {record.create_timestamp:%H:%M:%S}, "
                  f"ran {record.end_time - record.start_time:.1f} s")
    finally:
        stop(daemon)
        stop(code_server)
        instance.dispose()
        shutil.rmtree(home, ignore_errors=True)
