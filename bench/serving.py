"""The scoring API under a bounded local load: latency and throughput of /predict_churn and /similar_customers over HTTP.

    .venv/bin/python bench/serving.py [--customers 5000] [--rate 100] [--requests 3000] [--warmup 200] [--threads 32]
                                      [--seed 7] [--data DIR] [--keep DIR]

1. Builds a synthetic bank of ``--customers`` (``python -m customer_intel.synthetic``), trains every family with the
   light training config (the one the CLI tests use: fewer candidates, every family still trained, gated and
   registered) and scores the last day with the scoring job's assets (published ``customer_features``,
   ``scored_customers``, ``customer_embeddings``), in a child process. ``--data DIR`` reuses what an earlier run built
   there (or builds into it and keeps it).
2. Starts the API (``python -m customer_intel.serving``, one uvicorn worker: the production default) on a free port of
   127.0.0.1 with the rate limit set out of the way, and waits for ``GET /health``.
3. Per endpoint: ``--warmup`` requests (not counted), then ``--requests`` requests sent open-loop at ``--rate``/s:
   request i is due at t0 + i/rate whatever happened to the earlier ones, and its latency is measured both from that
   due time (no coordinated omission: a stalled server is charged for the queue it causes) and from the moment a client
   thread sent it. ``--threads`` client threads, each with its own keep-alive ``requests.Session``. The run is
   bounded: it is aborted when it takes 3x its planned duration. Customer ids are drawn with ``--seed`` from the
   published day; for churn half of them from the high-risk band (they pay for SHAP reasons and the counterfactual
   search) and half from the others. Any status but 200 is an error.
4. The peer, same run, same ids: the same scoring in a fresh process without HTTP, one request after another, with
   the app's own objects (``load_serving_models``, then ``request_features`` + ``family_scores`` for churn,
   ``request_features`` + ``neighbours`` for similar customers). It runs after the server has stopped.
5. The server is stopped with SIGTERM (SIGKILL after 30 s); its audit log's ``latency_ms`` (the handler's own time,
   from the parsed body to the audit line written) splits the HTTP latency into the handler and the rest, and the
   requests over 50 ms are grouped in bursts: a burst behind one long handler call is the server stalling (every
   request queues behind it), not many slow customers.

Percentiles are over the answered requests (an aborted run's unanswered ones count as errors). The CPU the server,
the client and every other process used during each run is printed: another job on the machine skews the latencies.

The client (this process) and the server share the machine's cores: with 2 cores the client's own CPU is part of the
measured latency. Numbers live here, not in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AS_OF = "2026-06-30"  # the bank's last day: the day the scoring job publishes
TARGET_MS = 50.0
TARGET_RATE = 100.0
PASSWORD = "bench-serving-password"  # a throwaway credential of a server on loopback that lives for this run only
USER = "customer_intel"
RATE_LIMIT = "1000000/minute"  # per caller: out of the way, so the bench measures scoring and not 429s
ENDPOINTS = ("/predict_churn", "/similar_customers")
K = 10
BUILT = "bench_serving.json"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# the light training run config the CLI tests and `--training-config` use (a file read, not a test module imported)
LIGHT_TRAINING = ROOT / "customer_intel_tests" / "fixtures" / "light_training.yaml"


# -- the data: bank, champions, published day (in a child process) ------------------------------------------------------
def _resources(raw: Path, warehouse: Path, mlflow: Path) -> dict:
    """The production resources pointed at the bench's folders (as the tests' ``pipeline_resources`` does)."""
    from customer_intel.resources import DriftPolicy, ModelRegistry, ParquetIOManager, RawDataSource, Warehouse

    store = Warehouse(root=str(warehouse))
    return {"warehouse": store, "io_manager": ParquetIOManager(warehouse=store), "raw_data": RawDataSource(raw_dir=str(raw)),
            "model_registry": ModelRegistry(tracking_uri=_tracking_uri(mlflow), artifact_root=(mlflow / "artifacts").as_uri()),
            "drift_policy": DriftPolicy()}


def _tracking_uri(mlflow: Path) -> str:
    return f"sqlite:///{mlflow / 'mlflow.db'}"


def _materialize(resources: dict, groups: tuple[str, ...], partition: str | None, run_config: dict):
    import dagster as dg

    from customer_intel.definitions import all_asset_checks, all_assets

    result = dg.materialize([*all_assets, *all_asset_checks], selection=dg.AssetSelection.groups(*groups), resources=resources,
                            partition_key=partition, run_config=run_config, raise_on_error=False, instance=dg.DagsterInstance.ephemeral())
    if not result.success:
        failed = sorted({e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"})
        raise SystemExit(f"materialising {', '.join(groups)} failed at {failed}")


def build(data: Path, raw: Path) -> dict:
    """Train every family (light config) on the bank, score its last day, and list the ids the load draws from."""
    from customer_intel.jobs import FAMILY_GROUPS
    from customer_intel.resources import Warehouse
    from customer_intel.table_names import CUSTOMER_EMBEDDINGS, SCORED_CUSTOMERS

    started = time.perf_counter()
    _materialize(_resources(raw, data / "training", data / "mlflow"), ("ingest", *FAMILY_GROUPS), None,
                 {**QUIET, "ops": yaml.safe_load(LIGHT_TRAINING.read_text())["ops"]})
    trained = time.perf_counter()
    _materialize(_resources(raw, data / "scoring", data / "mlflow"), ("ingest", "features", "scoring"), AS_OF, QUIET)
    scored = time.perf_counter()
    warehouse = Warehouse(root=str(data / "scoring"))
    day = warehouse.published_partitions(SCORED_CUSTOMERS)[-1]
    customers = warehouse.read_date(SCORED_CUSTOMERS, day, columns=["customer_id", "churn_risk_band"])
    embeddings = warehouse.read_date(CUSTOMER_EMBEDDINGS, day, columns=["customer_id", "embedding_vector"])
    high = customers["churn_risk_band"].astype("string") == "high"
    return {"day": day, "train_s": trained - started, "score_s": scored - trained,
            "high": customers.loc[high, "customer_id"].astype(str).tolist(),
            "others": customers.loc[~high, "customer_id"].astype(str).tolist(),
            "embedded": embeddings.loc[embeddings["embedding_vector"].notna(), "customer_id"].astype(str).tolist()}


def ensure_data(data: Path, customers: int, seed: int) -> dict:
    """The built data under ``data``: reused when an earlier run built it there, built (bank, training, scoring) otherwise."""
    marker = data / BUILT
    if marker.exists():
        built = json.loads(marker.read_text())
        print(f"reusing {data}: {built['customers']:,} customers (seed {built['seed']}), published day {built['day']}", flush=True)
        if built["customers"] != customers or built["seed"] != seed:
            print(f"  note: --customers {customers:,} / --seed {seed} ignored, the data was built with the values above", flush=True)
        return built
    import features_scale

    started = time.perf_counter()
    bank = features_scale._generate(customers, data, seed)  # data/bank_<n>_<seed>/raw, by python -m customer_intel.synthetic
    generated = time.perf_counter()
    result, log = Path(tempfile.mkstemp(suffix=".json")[1]), data / "build.log"
    with open(log, "wb") as out:  # training's own chatter (epochs, MLflow registrations) goes to the log
        done = subprocess.run([sys.executable, __file__, "--child", "build", "--data", str(data), "--raw", str(bank / "raw"),
                               "--result", str(result)], cwd=ROOT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"building the data failed (exit code {done.returncode}); the end of {log}:\n{log.read_text()[-3000:]}")
    built = {**json.loads(result.read_text()), "customers": customers, "seed": seed, "generate_s": generated - started,
             "build_s": time.perf_counter() - started}
    result.unlink()
    marker.write_text(json.dumps(built))
    print(f"built in {built['build_s']:.0f} s: bank {built['generate_s']:.0f} s, training every family (light config) "
          f"{built['train_s']:.0f} s, scoring {built['day']} {built['score_s']:.0f} s", flush=True)
    return built


# -- the server --------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _restore_signals() -> None:
    """A non-interactive parent may leave SIGINT/SIGTERM ignored in its children: the server must stop on them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def server_environment(data: Path, work: Path) -> dict[str, str]:
    return {"CUSTOMER_INTEL_DATA_DIR": str(work / "home"), "CUSTOMER_INTEL_WAREHOUSE_DIR": str(data / "scoring"),
            "MLFLOW_TRACKING_URI": _tracking_uri(data / "mlflow"), "CUSTOMER_INTEL_API_PASSWORD": PASSWORD,
            "CUSTOMER_INTEL_API_USER": USER, "CUSTOMER_INTEL_API_RATE_LIMIT": RATE_LIMIT,
            "CUSTOMER_INTEL_API_AUDIT_URI": str(work / "audit_shipped"), "CUSTOMER_INTEL_API_AUDIT_DIR": str(work / "audit_local"),
            "OMP_WAIT_POLICY": "PASSIVE"}


@contextlib.contextmanager
def running_server(data: Path, work: Path, port: int, ready_timeout: float = 300.0):
    """The API as a subprocess until the block ends; then SIGTERM, and SIGKILL when it has not stopped 30 s later."""
    import requests

    log_path = work / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "customer_intel.serving", "--host", "127.0.0.1", "--port", str(port),
                                 "--log-level", "warning"], env={**os.environ, **server_environment(data, work)}, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_restore_signals)
    try:
        started, health = time.perf_counter(), None
        while time.perf_counter() - started < ready_timeout:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode}) before answering /health:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if answer.status_code == 200:
                    health = answer.json()
                    break
            time.sleep(0.25)
        if health is None:
            raise SystemExit(f"the server did not answer /health in {ready_timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
        print(f"server pid {proc.pid} on 127.0.0.1:{port}, one uvicorn worker, ready in {time.perf_counter() - started:.1f} s: "
              f"{health['status']}, published day {health['published_day']}, champions {health['champions']}"
              + (f", problems {health['problems']}" if health["problems"] else ""), flush=True)
        yield proc
    finally:
        stopping = time.perf_counter()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                print("server still running 30 s after SIGTERM: SIGKILL", flush=True)
                proc.kill()
                proc.wait()
        how = "by SIGTERM: uvicorn re-raises it after its graceful shutdown" if proc.returncode == -signal.SIGTERM else ""
        print(f"server stopped in {time.perf_counter() - stopping:.1f} s (exit code {proc.returncode}{', ' + how if how else ''})", flush=True)


# -- the load ----------------------------------------------------------------------------------------------------------
class Client:
    """``threads`` client threads, each with its own keep-alive ``requests.Session``, kept across the warm-up and the run."""

    def __init__(self, threads: int):
        import requests

        self.requests = requests
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="client")
        self.local, self.sessions, self.lock = threading.local(), [], threading.Lock()

    def session(self):
        s = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = self.requests.Session()
            s.auth = (USER, PASSWORD)
            with self.lock:
                self.sessions.append(s)
        return s

    def close(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=True)  # not waiting: requests in flight end by their own 30 s timeout
        if wait:
            for s in self.sessions:
                s.close()


def open_loop(client: Client, url: str, bodies: list[dict], rate: float) -> dict:
    """Send ``bodies`` open-loop at ``rate``/s: request i is due at t0 + i/rate. Per request: due, sent and done times
    (perf_counter seconds), the status (-1: no answer) and the server's request id. Aborted at 3x the planned time."""
    n = len(bodies)
    due, sent, done = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    status = np.zeros(n, dtype=int)
    request_ids: list[str | None] = [None] * n
    failures: list[str] = []

    def one(i: int) -> None:
        sent[i] = time.perf_counter()
        try:
            answer = client.session().post(url, json=bodies[i], timeout=30)
            done[i] = time.perf_counter()
            status[i] = answer.status_code
            request_ids[i] = answer.headers.get("X-Request-ID")
            if answer.status_code != 200 and len(failures) < 5:
                failures.append(f"{answer.status_code}: {answer.text[:300]}")
        except client.requests.RequestException as exc:
            done[i], status[i] = time.perf_counter(), -1
            if len(failures) < 5:
                failures.append(f"{type(exc).__name__}: {exc}")

    planned = n / rate
    futures, aborted = [], False
    t0 = time.perf_counter() + 0.05
    deadline = t0 + 3 * planned
    for i in range(n):
        due[i] = t0 + i / rate
        now = time.perf_counter()
        if now > deadline:
            aborted = True
            break
        if due[i] > now:
            time.sleep(due[i] - now)
        futures.append(client.pool.submit(one, i))
    _, pending = wait_futures(futures, timeout=max(0.0, deadline - time.perf_counter()))
    return {"due": due, "sent": sent, "done": done, "status": status, "request_ids": request_ids, "failures": failures,
            "aborted": aborted or bool(pending), "t0": t0, "planned_s": planned}


class CpuShare:
    """Core-seconds used while a block ran: by the server, by this process (the client), and by everything else on the
    machine (another job running there would skew the latencies, so the bench says when one did)."""

    def __init__(self, server_pid: int):
        import psutil

        self.psutil, self.server, self.client = psutil, psutil.Process(server_pid), psutil.Process()

    def _now(self) -> tuple[float, float, float, float]:
        machine = self.psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        server, client = self.server.cpu_times(), self.client.cpu_times()
        return time.perf_counter(), busy, server.user + server.system, client.user + client.system

    def __enter__(self) -> CpuShare:
        self.start = self._now()
        return self

    def __exit__(self, *exc_info) -> None:
        end = self._now()
        wall, busy, server, client = (b - a for a, b in zip(self.start, end))
        self.cores = {"server": server / wall, "client": client / wall, "others": max(0.0, busy - server - client) / wall}

    def describe(self) -> str:
        return (f"CPU meanwhile (cores): server {self.cores['server']:.2f}, client {self.cores['client']:.2f}, "
                f"other processes {self.cores['others']:.2f}")


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summarise(run: dict, rate: float) -> dict:
    finished = ~np.isnan(run["done"])
    ok = finished & (run["status"] == 200)
    from_due = 1000 * (run["done"] - run["due"])[finished]
    from_send = 1000 * (run["done"] - run["sent"])[finished]
    elapsed = np.nanmax(run["done"]) - run["t0"] if finished.any() else float("nan")
    return {"requests": len(run["due"]), "finished": int(finished.sum()), "errors": int(len(run["due"]) - ok.sum()),
            "p50": _percentile(from_due, 50), "p90": _percentile(from_due, 90), "p99": _percentile(from_due, 99),
            "max": _percentile(from_due, 100), "send_p50": _percentile(from_send, 50), "send_p90": _percentile(from_send, 90),
            "send_p99": _percentile(from_send, 99), "send_max": _percentile(from_send, 100),
            "achieved": finished.sum() / elapsed if elapsed > 0 else float("nan"), "elapsed_s": elapsed, "rate": rate,
            "aborted": run["aborted"], "failures": run["failures"]}


def draw_ids(built: dict, endpoint: str, count: int, rng: np.random.Generator) -> list[str]:
    """Churn: half from the high-risk band, half from the rest, shuffled; similar customers: any customer with an embedding."""
    if endpoint == "/predict_churn":
        high = rng.choice(built["high"], count // 2) if built["high"] else rng.choice(built["others"], count // 2)
        rest = rng.choice(built["others"], count - count // 2)
        ids = np.concatenate([high, rest])
        rng.shuffle(ids)
        return [str(c) for c in ids]
    return [str(c) for c in rng.choice(built["embedded"], count)]


def body(endpoint: str, customer_id: str) -> dict:
    return {"customer_id": customer_id, "k": K} if endpoint == "/similar_customers" else {"customer_id": customer_id}


def handler_latencies(audit_folders: list[Path]) -> dict[str, float]:
    """request id -> the server's own ``latency_ms`` (answered 200), from its audit lines: the handler's time, from the
    parsed body to the audit line written, without HTTP, auth, validation, serialisation or the wait for a thread."""
    out: dict[str, float] = {}
    for folder in audit_folders:
        for path in folder.rglob("*.jsonl") if folder.exists() else ():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    if entry.get("status") == 200:
                        out[entry["request_id"]] = float(entry["latency_ms"])
    return out


def slow_bursts(run: dict, handler: np.ndarray, rate: float, shown: int = 3) -> list[str]:
    """The requests over the target, grouped in bursts (late requests less than 0.1 s of schedule apart): a burst behind
    one long handler call is a stall of the server (every request queues behind it), not slow scoring of many customers."""
    latency = 1000 * (run["done"] - run["due"])
    late = np.flatnonzero(np.nan_to_num(latency, nan=np.inf) > TARGET_MS)
    if not len(late):
        return [f"no request over {TARGET_MS:g} ms"]
    bursts = np.split(late, np.flatnonzero(np.diff(late) > max(1, rate * 0.1)) + 1)
    lines = [f"{len(late):,} requests over {TARGET_MS:g} ms ({len(late) / len(latency):.1%}) in {len(bursts)} burst(s); the biggest:"]
    for burst in sorted(bursts, key=len, reverse=True)[:shown]:
        span = slice(burst[0], burst[-1] + 1)
        worst = int(np.nanargmax(handler[span])) + burst[0] if np.isfinite(handler[span]).any() else None
        slowest = f"; its longest handler time {handler[worst]:.0f} ms (request {worst})" if worst is not None else ""
        lines.append(f"  from {run['due'][burst[0]] - run['t0']:.2f} s to {run['due'][burst[-1]] - run['t0']:.2f} s of the run: "
                     f"{len(burst):,} requests over {TARGET_MS:g} ms, the worst {np.nanmax(latency[span]):.0f} ms{slowest}")
    return lines


# -- the in-process peer (in a child process) ------------------------------------------------------------------------
def in_process(data: Path, work: Path, ids: dict[str, list[str]]) -> dict:
    """The same scoring without HTTP, one request after another, with the app's own objects: seconds per request."""
    os.environ.update(server_environment(data, work))
    from customer_intel.resources import ModelRegistry, Warehouse
    from customer_intel.serving.champions import load_serving_models
    from customer_intel.serving.predict import family_scores, neighbours, request_features
    from customer_intel.serving.schemas import CustomerRequest, SimilarRequest

    models = load_serving_models(ModelRegistry(tracking_uri=_tracking_uri(data / "mlflow")), Warehouse(root=str(data / "scoring")))

    def churn(request):
        return family_scores(models, "churn", request_features(models, request))

    def similar(request):
        return neighbours(models, request_features(models, request), request.customer_id, request.k)

    out = {}
    for endpoint, score, kind in (("/predict_churn", churn, CustomerRequest), ("/similar_customers", similar, SimilarRequest)):
        if endpoint not in ids:
            continue
        requests = [kind(**body(endpoint, c)) for c in ids[endpoint]]
        for request in requests[:50]:  # warm-up, not counted
            score(request)
        seconds = []
        for request in requests:
            started = time.perf_counter()
            score(request)
            seconds.append(time.perf_counter() - started)
        out[endpoint] = seconds
    return out


def run_in_process(data: Path, work: Path, ids: dict[str, list[str]]) -> dict[str, np.ndarray]:
    params, result = work / "in_process_ids.json", work / "in_process.json"
    params.write_text(json.dumps(ids))
    subprocess.run([sys.executable, __file__, "--child", "in_process", "--data", str(data), "--work", str(work), "--ids", str(params),
                    "--result", str(result)], check=True, cwd=ROOT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    return {e: 1000 * np.asarray(v) for e, v in json.loads(result.read_text()).items()}


# -- main --------------------------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000, help="customers of the synthetic bank (default %(default)s)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="requests per second sent, open-loop (default %(default)s)")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per endpoint (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="requests per endpoint sent first and not counted (default %(default)s)")
    parser.add_argument("--threads", type=int, default=32, help="client threads, one keep-alive session each (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the bank and of the customer ids drawn (default %(default)s)")
    parser.add_argument("--data", default=None, help="reuse the data an earlier run built in DIR (or build into DIR and keep it)")
    parser.add_argument("--keep", default=None, help="work in DIR and keep it (data unless --data, server log, audit log)")
    parser.add_argument("--child", choices=("build", "in_process"), help=argparse.SUPPRESS)
    parser.add_argument("--raw", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "build":
        Path(args.result).write_text(json.dumps(build(Path(args.data), Path(args.raw))))
        return
    if args.child == "in_process":
        ids = json.loads(Path(args.ids).read_text())
        Path(args.result).write_text(json.dumps(in_process(Path(args.data), Path(args.work), ids)))
        return
    if args.rate <= 0 or args.requests <= 0 or args.threads <= 0 or args.warmup < 0:
        parser.error("--rate, --requests and --threads must be positive, --warmup not negative")

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPUs: {os.cpu_count()} (usable by this process: {cpus}). The machine has 2 cores: the client (this process, "
          f"{args.threads} threads) and the server (its own process) share them, so the client's CPU is in the latencies.", flush=True)
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench_serving_"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve() if args.data else work / "data"
    data.mkdir(parents=True, exist_ok=True)
    try:
        built = ensure_data(data, args.customers, args.seed)
        rng = np.random.default_rng(args.seed)
        measured = {e: draw_ids(built, e, args.requests, rng) for e in ENDPOINTS}
        warmup = {e: draw_ids(built, e, args.warmup, rng) for e in ENDPOINTS}
        print(f"published day {built['day']}: {len(built['high']) + len(built['others']):,} customers, {len(built['high']):,} in the "
              f"high churn-risk band, {len(built['embedded']):,} with an embedding", flush=True)
        print(f"load: open-loop at {args.rate:g} requests/s, {args.requests:,} measured requests per endpoint after {args.warmup:,} "
              f"warm-up ones, {args.threads} client threads with keep-alive sessions, loopback only; rate limit {RATE_LIMIT} per caller "
              "(set out of the way for the bench; the default is 10/minute)", flush=True)
        print(f"ids (seed {args.seed}): /predict_churn half from the high-risk band (SHAP reasons + counterfactual search), half from "
              f"the low and medium bands; /similar_customers any customer with an embedding, k={K}", flush=True)
        port = free_port()
        results, runs = {}, {}
        with running_server(data, work, port) as server:
            client = Client(args.threads)
            try:
                for endpoint in ENDPOINTS:
                    url = f"http://127.0.0.1:{port}{endpoint}"
                    if warmup[endpoint]:
                        open_loop(client, url, [body(endpoint, c) for c in warmup[endpoint]], args.rate)
                    with CpuShare(server.pid) as cpu:
                        run = open_loop(client, url, [body(endpoint, c) for c in measured[endpoint]], args.rate)
                    results[endpoint] = r = summarise(run, args.rate)
                    r["cpu"], runs[endpoint] = cpu.cores, run
                    print(f"{endpoint}: {r['finished']:,}/{r['requests']:,} answered in {r['elapsed_s']:.1f} s (planned "
                          f"{run['planned_s']:.1f} s){' ABORTED at 3x the planned time' if r['aborted'] else ''}, {r['errors']} errors; "
                          f"from the due time p50 {r['p50']:.1f} / p90 {r['p90']:.1f} / p99 {r['p99']:.1f} / max {r['max']:.1f} ms; "
                          f"from the send p50 {r['send_p50']:.1f} / p90 {r['send_p90']:.1f} / p99 {r['send_p99']:.1f} / max "
                          f"{r['send_max']:.1f} ms", flush=True)
                    print(f"  {cpu.describe()}", flush=True)
                    for failure in r["failures"]:
                        print(f"  error: {failure}", flush=True)
                    if r["aborted"]:
                        break
            finally:
                client.close(wait=not any(r["aborted"] for r in results.values()))
        audited = handler_latencies([work / "audit_shipped", work / "audit_local"])
        handler = {e: np.array([audited.get(rid, np.nan) if rid else np.nan for rid in run["request_ids"]]) for e, run in runs.items()}
        print("in-process peer (same ids, sequential, no HTTP, after the server stopped) ...", flush=True)
        peer = run_in_process(data, work, {e: measured[e] for e in results})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    for endpoint in (e for e in ENDPOINTS if e not in results):
        print(f"{endpoint}: not measured (the run before it was aborted)")
    for endpoint in results:
        r, p, h = results[endpoint], peer[endpoint], handler[endpoint]
        p50, p99 = np.percentile(p, 50), np.percentile(p, 99)
        r.update(peer_p50=p50, peer_p99=p99)
        h = h[np.isfinite(h)]
        if len(h):
            print(f"{endpoint}: server handler (audit latency_ms, {len(h):,} lines) p50 {np.percentile(h, 50):.1f} / p99 "
                  f"{np.percentile(h, 99):.1f} ms; in-process p50 {p50:.1f} / p99 {p99:.1f} ms")
        print(f"{endpoint}: API p50 / in-process p50 = {r['p50'] / p50:.1f}x; API p99 / {TARGET_MS:g} ms target = "
              f"{r['p99'] / TARGET_MS:.2f}")
        for line in slow_bursts(runs[endpoint], handler[endpoint], args.rate):
            print(f"  {line}")
    print()
    print(f"| endpoint | rate (req/s) | requests | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | achieved (req/s) | errors | "
          f"in-process p50 / p99 (ms) | p99 < {TARGET_MS:g} ms at {args.rate:g} req/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    failed = []
    for endpoint in results:
        r = results[endpoint]
        verdict = "PASS" if r["p99"] < TARGET_MS and r["errors"] == 0 and not r["aborted"] else "FAIL"
        if verdict == "FAIL":
            failed.append(endpoint)
        print(f"| {endpoint} | {args.rate:g} | {r['requests']:,} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | "
              f"{r['achieved']:.1f} | {r['errors']} | {r['peer_p50']:.1f} / {r['peer_p99']:.1f} | {verdict} |")
    busy = [f"{e} {r['cpu']['others']:.2f}" for e, r in results.items()]
    print(f"\nCores used by other processes on the machine during each run: {', '.join(busy)} (0 on a quiet machine).")
    print(f"Latencies from each request's due time (t0 + i/rate); from the actual send they are printed above. Verdicts are for "
          f"{args.rate:g} req/s{'' if args.rate == TARGET_RATE else f' (the target is stated at {TARGET_RATE:g} req/s)'}.")
    if failed:  # a regression fails the command, not only the table
        sys.exit(f"FAIL: p99 < {TARGET_MS:g} ms at {args.rate:g} req/s not met by {', '.join(failed)}")


if __name__ == "__main__":
    main()
