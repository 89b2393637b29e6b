"""The MLflow server (a real ``mlflow server`` process on 127.0.0.1) goes away during training.

One family (uplift, the cheapest) is trained against a real tracking server with a SQLite store and
proxied artifacts, so it has a champion; then it is trained twice more while the server is SIGKILLed,
at two points made exact by a relay in front of the server that kills it when a request of a chosen
kind arrives: (a) the first model upload of ``uplift_models``, (b) the alias move of ``uplift_champion``
(after the new version is registered). Each run fails within seconds (bounded HTTP retries), the alias
never moves, what a dead server left behind (RUNNING runs, a version registered but never promoted)
is marked and is cleaned up by the next run, which moves the alias.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from customer_intel.resources import ModelRegistry
from customer_intel.resources.model_registry import CHAMPION_ALIAS, PROMOTION_TAG, RECONCILED_TAG, registered_model_name
from customer_intel_tests.conftest import free_port, pipeline_resources, step_failures, write_raw

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = ROOT / ".venv" / "bin" / "mlflow"
LIGHT_TRAINING = ROOT / "customer_intel_tests" / "fixtures" / "light_training.yaml"
FAMILY = "uplift"
EXPERIMENT = "outage"
MODEL_UPLOAD = b"PUT /api/2.0/mlflow-artifacts/artifacts/"
ALIAS_MOVE = b"POST /api/2.0/mlflow/registered-models/alias"
# the server's job runner (GenAI scorers, eight huey processes) is not needed; MLflow's telemetry would call out
OFFLINE = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
FAIL_WITHIN_S = 30  # from the kill to the end of the run: MLflow's own retries would take minutes per request


class MlflowServer:
    """``mlflow server`` on a free port of 127.0.0.1 over ``store`` (SQLite + artifact folder), in a process group of its own."""

    def __init__(self, store: Path):
        self.store, self.port, self.process = store, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        return self.launch().ready()

    def launch(self) -> MlflowServer:
        self.store.mkdir(parents=True, exist_ok=True)
        log = open(self.store / f"server-{self.port}.log", "wb")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.store / 'mlflow.db'}", "--artifacts-destination", str(self.store / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **OFFLINE})
        log.close()
        return self

    def ready(self) -> MlflowServer:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.store / f"server-{self.port}.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"mlflow server on port {self.port} did not answer /health in 120 s")

    def kill(self) -> None:
        """SIGKILL the server and every process it started (uvicorn's workers)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)


class KillingRelay:
    """A TCP relay on a free port of 127.0.0.1 in front of ``server``: when a request starting with ``trigger`` arrives, it
    SIGKILLs the server before passing the request on, closes every connection and stops listening (so the client meets
    a dead server: the request fails and every retry is refused)."""

    def __init__(self, server: MlflowServer, trigger: bytes):
        self.server, self.trigger = server, trigger
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.killed_at: float | None = None
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.server.port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += [client, upstream]
            threading.Thread(target=self._serve, args=(client, upstream), daemon=True).start()

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        """Both directions of one connection; the sockets are closed only when both have stopped (a socket closed
        under a thread still reading it would hand its descriptor number to the next connection)."""
        back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        back.start()
        self._pump(client, upstream, True)
        back.join()
        client.close()
        upstream.close()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and data[:8].split(b" ")[0] in (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE"):
                    self.requests.append(data.split(b"\r\n", 1)[0])
                    if self.killed_at is None and data.startswith(self.trigger):
                        self._kill()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:  # one side ended: end the other too (wakes its reader)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _kill(self) -> None:
        self.server.kill()
        self.killed_at = time.monotonic()
        self.listener.close()
        with self._lock:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def registry(url: str, **http) -> ModelRegistry:
    return ModelRegistry(tracking_uri=url, experiment=EXPERIMENT, **http)


def train(raw_dir: Path, root: Path, url: str, instance, **http) -> dg.ExecuteInProcessResult:
    from customer_intel.definitions import all_asset_checks, all_assets

    ops = {k: v for k, v in yaml.safe_load(LIGHT_TRAINING.read_text())["ops"].items() if k.startswith(FAMILY)}
    resources = {**pipeline_resources(raw_dir, root / "warehouse"), "model_registry": registry(url, **http)}
    return dg.materialize([*all_assets, *all_asset_checks], selection=dg.AssetSelection.groups("ingest", FAMILY), resources=resources,
                          run_config={"ops": ops}, instance=instance, raise_on_error=False)


def registry_state(url: str) -> dict:
    """What the store holds: the alias's version, every version with its status and promotion tag, the runs by status."""
    reg = registry(url)
    client = reg.client()
    name = registered_model_name(FAMILY)
    versions = {v.version: (v.status, v.tags.get(PROMOTION_TAG)) for v in client.search_model_versions(f"name = '{name}'")}
    alias = client.get_model_version_by_alias(name, CHAMPION_ALIAS).version
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return {"alias": alias, "versions": versions, "runs": {r.info.run_id: (r.info.status, r.data.tags) for r in runs}}


def test_mlflow_server_killed_during_training_moves_no_alias_and_the_next_run_recovers(small_frames, tmp_path, monkeypatch):
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)  # the project's bounds, not a value left by another test; restored afterwards
    raw_dir = write_raw(small_frames, tmp_path / "raw", fmt="parquet")
    store = tmp_path / "mlflow"
    instance = dg.DagsterInstance.ephemeral()  # one instance: the next run knows the earlier runs ended
    servers: list[MlflowServer] = []

    def launch() -> MlflowServer:
        """The next server on the same store (started after the one before was killed)."""
        servers.append(MlflowServer(store).launch())
        return servers[-1]

    try:
        # a champion to protect
        started = time.monotonic()
        server = launch().ready()
        phases = {"server up": time.monotonic() - started}
        first = train(raw_dir, tmp_path, server.url, instance)
        phases["first training"] = time.monotonic() - started - sum(phases.values())
        assert first.success, step_failures(first)
        before = registry_state(server.url)
        assert before["alias"] == "1" and before["versions"] == {"1": ("READY", "promoted")}
        assert {status for status, _ in before["runs"].values()} == {"FINISHED"}

        # (a) killed at the first model upload of uplift_models
        relay = KillingRelay(server, MODEL_UPLOAD)
        cut = train(raw_dir, tmp_path, relay.url, instance)
        ended = time.monotonic()
        assert relay.killed_at is not None, relay.requests
        assert not cut.success
        failures = step_failures(cut)
        assert set(failures) == {f"{FAMILY}_models"}, failures
        assert "Max retries exceeded" in failures[f"{FAMILY}_models"] or "Connection refused" in failures[f"{FAMILY}_models"]
        assert ended - relay.killed_at < FAIL_WITHIN_S, ended - relay.killed_at
        kill_to_end = [ended - relay.killed_at]
        assert not [e for e in cut.all_events if e.step_key == f"{FAMILY}_champion"]

        phases["run cut at the model upload"] = time.monotonic() - started - sum(phases.values())
        server = launch().ready()  # the same store again, started once the killed server is gone (two servers
        # initialising and writing one SQLite store at once made the surviving one fail requests before the cut)
        phases["restart"] = time.monotonic() - started - sum(phases.values())
        after_cut = registry_state(server.url)
        assert after_cut["alias"] == "1" and after_cut["versions"] == before["versions"]
        left_running = {run_id for run_id, (status, tags) in after_cut["runs"].items() if status == "RUNNING"}
        assert left_running and all(after_cut["runs"][r][1]["dagster_run_id"] == cut.run_id for r in left_running)

        # (b) killed when uplift_champion moves the alias (the new version is registered by then)
        relay = KillingRelay(server, ALIAS_MOVE)
        # the bounds set on the resource this time (the project's defaults were timed above): one retry
        cut_at_alias = train(raw_dir, tmp_path, relay.url, instance, http_max_retries=1)
        ended = time.monotonic()
        assert relay.killed_at is not None, relay.requests
        failures = step_failures(cut_at_alias)
        assert set(failures) == {f"{FAMILY}_champion"}, failures
        assert ended - relay.killed_at < FAIL_WITHIN_S, ended - relay.killed_at
        kill_to_end.append(ended - relay.killed_at)

        phases["run cut at the alias move"] = time.monotonic() - started - sum(phases.values())
        server = launch().ready()
        phases["restart "] = time.monotonic() - started - sum(phases.values())
        after_alias = registry_state(server.url)
        assert after_alias["alias"] == "1"  # the alias did not move
        # the version registered before the kill is marked pending, never promoted; nothing else is new
        assert after_alias["versions"] == {"1": ("READY", "promoted"), "2": ("READY", "pending")}
        # the comparison of (b) ended the runs (a) left RUNNING, and says so; its own runs finished
        for run_id in left_running:
            status, tags = after_alias["runs"][run_id]
            assert status == "FAILED" and cut.run_id in tags[RECONCILED_TAG]
        assert not [r for r, (status, _) in after_alias["runs"].items() if status == "RUNNING"]

        # the next run proceeds: the pending version is deleted, the alias moves to the new one
        recovered = train(raw_dir, tmp_path, server.url, instance)
        phases["recovering run"] = time.monotonic() - started - sum(phases.values())
        print("phases (s):", {k: round(v, 1) for k, v in phases.items()}, "kill -> run end (s):", [round(t, 1) for t in kill_to_end])
        assert recovered.success, step_failures(recovered)
        final = registry_state(server.url)
        assert final["alias"] == "3"
        assert final["versions"] == {"1": ("READY", "promoted"), "3": ("READY", "promoted")}
        assert not [r for r, (status, _) in final["runs"].items() if status == "RUNNING"]
        assert registry(server.url).load_scorer(FAMILY) is not None
    finally:
        for server in servers:
            server.kill()
        instance.dispose()


def test_an_unreachable_server_is_not_taken_for_no_champion(monkeypatch):
    """The gate asks for the champion: a server that does not answer raises (within the bounds), it is not "no champion yet"."""
    from mlflow.exceptions import MlflowException

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)  # the resource sets them for its process; restored after the test

    unreachable = ModelRegistry(tracking_uri=f"http://127.0.0.1:{free_port()}", http_max_retries=1, http_timeout_seconds=5)
    started = time.monotonic()
    with pytest.raises(MlflowException, match="Connection refused"):
        unreachable.champion_version(FAMILY)
    assert time.monotonic() - started < 10
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1" and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
