"""MLflow tracking and registry for every model family, as one Dagster resource.

One MLflow run per candidate under a parent run per comparison; scorers logged as the generic
pyfunc (``customer_intel.registry``) with a signature, an input example and the family's explicit
pip requirements (inferring requirements takes ~3x longer per model); lineage tags on every run
(git commit, training frame sha256, split); registered models ``customer_intel_<family>`` with the
alias ``champion``. dagster-mlflow's resource is old-style and leaves runs open; this one opens and
closes its own and keeps the tracking URI explicit (MLflow's default is ./mlflow.db in the CWD).

An unreachable tracking server fails a step in seconds, not minutes: MLflow's HTTP retries are
bounded (``MLFLOW_HTTP_REQUEST_*``; MLflow's own default retries a refused connection for ~4 min per
request). A run whose step fails is ended FAILED when the server answers; one left RUNNING (server
gone, worker killed) is ended FAILED by the next comparison of its asset once its Dagster run has
ended. A promotion registers the version tagged ``customer_intel.promotion=pending`` and only then
moves the alias: a version whose alias move never happened is deleted (at once if the server
answers, else by the family's next promotion), so no registered version is left that looks like a
champion but never was one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import dagster as dg
import pandas as pd
from pydantic import Field

from customer_intel.modeling.family import REGISTERED_MODEL_PREFIX, ModelFamily
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.rule import ChampionRule
from customer_intel.resources.settings import Settings, default_artifact_root, redact_uri

CHAMPION_ALIAS = "champion"
INPUT_EXAMPLE_ROWS = 5
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
PROMOTION_TAG = "customer_intel.promotion"  # pending: registered, alias not yet moved; promoted: the alias moved to it
PENDING_STALE_SECONDS = 3600.0  # a promotion takes seconds: a version pending this long belongs to no live promotion
RECONCILED_TAG = "customer_intel.reconciled"
# MLflow's HTTP client, bounded (MLflow reads these variables per request; a value the environment sets wins):
# a refused connection is retried 3 times 1, 2 and 4 s apart (MLflow's default: 7 times up to 64 s apart, ~4 min),
# a request that gets no answer gives up after 60 s (default 120 s).
HTTP_RETRIES_ENV, HTTP_BACKOFF_ENV, HTTP_TIMEOUT_ENV = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                                                        "MLFLOW_HTTP_REQUEST_TIMEOUT")
HTTP_DEFAULTS = {HTTP_RETRIES_ENV: "3", HTTP_BACKOFF_ENV: "1", HTTP_TIMEOUT_ENV: "60"}
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # no such model / alias (anything else: the server's trouble)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredChampion:
    """The scorer behind ``models:/customer_intel_<family>@champion`` and what it was fitted on."""

    scorer: object
    version: object  # mlflow ModelVersion
    registered_model: str
    candidate: str
    cutoff: str | None  # last day of data it saw (from the scorer, or its training run's tags for older versions)
    horizon_days: int | None

    @property
    def label(self) -> str:
        return f"{self.registered_model} v{self.version.version} ({self.candidate})"


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow's informational chatter while logging and loading (it would read as errors in a run log)."""
    loggers = [logging.getLogger(name) for name in ("mlflow.models.model", "mlflow.pyfunc", "mlflow.store.db.utils",
                                                        "mlflow.tracking._model_registry.fluent", "mlflow.utils.requirements_utils")]
    levels = [logger.level for logger in loggers]
    progress = os.environ.get(PROGRESS_BAR_ENV)
    os.environ[PROGRESS_BAR_ENV] = "false"  # the "Downloading artifacts" bars of loading a model to validate its example
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column.*")  # the schema hint for int features: scored as given
        warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
            if progress is None:
                os.environ.pop(PROGRESS_BAR_ENV, None)
            else:
                os.environ[PROGRESS_BAR_ENV] = progress


def registered_model_name(family: str) -> str:
    return REGISTERED_MODEL_PREFIX + family


@contextlib.contextmanager
def _one_attempt():
    """MLflow calls that clean up after a failure: one attempt each, 10 s at most (the server may be gone)."""
    saved = {var: os.environ.get(var) for var in (HTTP_RETRIES_ENV, HTTP_TIMEOUT_ENV)}
    os.environ.update({HTTP_RETRIES_ENV: "0", HTTP_TIMEOUT_ENV: "10"})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


class ModelRegistry(dg.ConfigurableResource):
    """Where every family's candidates are tracked and its champions registered (MLflow).

    Fields left unset come from the environment when the resource is used, so the definitions
    import before the environment is final.
    """

    tracking_uri: str | None = Field(default=None, description="MLflow tracking server or store; unset: $MLFLOW_TRACKING_URI, "
                                     "else sqlite:///$CUSTOMER_INTEL_DATA_DIR/mlflow/mlflow.db")
    artifact_root: str | None = Field(default=None, description="artifact location of a new experiment; unset: an "
                                      "'artifacts' folder beside a SQLite store, the server's own otherwise")
    experiment: str | None = Field(default=None, description="MLflow experiment; unset: $CUSTOMER_INTEL_MLFLOW_EXPERIMENT, else customer_intel")
    champion_tolerance: float | None = Field(default=None, description="how much worse (relative to the incumbent, on this run's "
                                             "validation rows) a new champion may be; unset: $CUSTOMER_INTEL_CHAMPION_TOLERANCE, else each family's rule")
    http_max_retries: int | None = Field(default=None, description="retries of a failed request to an MLflow server; unset: "
                                         "$MLFLOW_HTTP_REQUEST_MAX_RETRIES, else 3 (1, 2, 4 s apart)")
    http_timeout_seconds: int | None = Field(default=None, description="how long a request to an MLflow server may wait for an "
                                             "answer; unset: $MLFLOW_HTTP_REQUEST_TIMEOUT, else 60")

    # -- where ---------------------------------------------------------------------------------
    def _settings(self) -> Settings:
        return Settings.from_env()

    @property
    def uri(self) -> str:
        return self.tracking_uri or self._settings().mlflow_tracking_uri

    def _experiment_name(self) -> str:
        return self.experiment or self._settings().mlflow_experiment

    def tolerance(self, rule: ChampionRule) -> float:
        """The gate's tolerance: this resource's, the environment's, or the family rule's own."""
        if self.champion_tolerance is not None:
            return self.champion_tolerance
        override = self._settings().champion_tolerance_override
        return rule.tolerance if override is None else override

    def bound_http(self) -> None:
        """MLflow's HTTP retries and timeout: this resource's, else the environment's, else the project's bounds.

        MLflow reads them from the environment per request, so they are set there (for this process)."""
        for var, default in HTTP_DEFAULTS.items():
            os.environ.setdefault(var, default)
        if self.http_max_retries is not None:
            os.environ[HTTP_RETRIES_ENV] = str(self.http_max_retries)
        if self.http_timeout_seconds is not None:
            os.environ[HTTP_TIMEOUT_ENV] = str(self.http_timeout_seconds)

    def configure(self):
        """Point MLflow's fluent API at this registry and make sure the experiment exists.

        ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; it is restored at once, so
        the environment stays what the deployment set (``Settings`` reads it as the deployment's choice).
        """
        import mlflow

        self.bound_http()
        uri = self.uri
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        exported = os.environ.get(TRACKING_URI_ENV)
        mlflow.set_tracking_uri(uri)
        if exported is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = exported
        name = self._experiment_name()
        with _quiet_mlflow():
            if mlflow.get_experiment_by_name(name) is None:
                mlflow.create_experiment(name, artifact_location=self.artifact_root or default_artifact_root(uri))
            return mlflow.set_experiment(name)

    def client(self):
        from mlflow.tracking import MlflowClient

        self.bound_http()
        return MlflowClient(tracking_uri=self.uri)

    @property
    def display_uri(self) -> str:
        """The tracking URI as it may be shown (in metadata, logs, links): without a password it may carry."""
        return redact_uri(self.uri)

    def run_link(self, run_id: str) -> str:
        uri = self.display_uri
        if uri.startswith(("http://", "https://")):
            experiment = self.configure()
            return f"{uri.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
        return f"run {run_id} in {uri} (browse: mlflow ui --backend-store-uri {uri})"

    # -- tracking ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def start_run(self, run_name: str, tags: dict[str, str], nested: bool = False):
        """An MLflow run for the block: FINISHED after it, FAILED when it raises.

        On an error the run is ended with one attempt, and the block's own error is what propagates (MLflow's
        context manager would raise the ending's error instead, after retrying it); a run the server could
        not end stays RUNNING until ``fail_abandoned_runs`` of the next comparison."""
        import mlflow

        self.configure()
        run = mlflow.start_run(run_name=run_name, tags=tags, nested=nested)
        try:
            yield run
        except BaseException:
            with _one_attempt():
                try:
                    mlflow.end_run("FAILED")  # pops the run off the fluent stack before it calls the server
                except Exception as exc:  # the block's error matters, this one is logged
                    log.warning(f"MLflow run {run.info.run_id} could not be ended FAILED ({type(exc).__name__}); "
                                "it stays RUNNING until the next training run of this asset ends it")
            raise
        mlflow.end_run("FINISHED")

    def fail_abandoned_runs(self, asset: str, current_dagster_run: str, ended: Callable[[str], bool]) -> list[str]:
        """End FAILED the MLflow runs of ``asset`` still RUNNING whose Dagster run has ended (``ended(run_id)``):
        left by a worker that was killed or a server that went away. Runs of ``current_dagster_run`` and of
        Dagster runs still going (or unknown to ``ended``) are left alone. Returns the MLflow run ids ended."""
        experiment = self.configure()
        client = self.client()
        runs = client.search_runs([experiment.experiment_id], max_results=1000,
                                  filter_string=f"attributes.status = 'RUNNING' and tags.dagster_asset = '{asset}'")
        out = []
        for run in runs:
            dagster_run = run.data.tags.get("dagster_run_id")
            if not dagster_run or dagster_run == current_dagster_run or not ended(dagster_run):
                continue
            client.set_tag(run.info.run_id, RECONCILED_TAG, f"Dagster run {dagster_run} ended without ending this run")
            client.set_terminated(run.info.run_id, "FAILED")
            out.append(run.info.run_id)
        return out

    def log(self, metrics: dict | None = None, params: dict | None = None, tags: dict | None = None, texts: dict | None = None) -> None:
        """Log to the active run; non-finite and non-numeric metrics are skipped (MLflow rejects them)."""
        import mlflow

        if metrics:
            finite = {k: float(v) for k, v in metrics.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
            mlflow.log_metrics(finite)
        if params:
            mlflow.log_params({k: ("None" if v is None else v) for k, v in params.items()})
        if tags:
            mlflow.set_tags(tags)
        for path, text in (texts or {}).items():
            mlflow.log_text(text, path)

    def log_text_to(self, run_id: str, path: str, text: str) -> None:
        """Write ``text`` as the artifact ``path`` of a run (finished or not), e.g. the model card the gate completes."""
        self.configure()
        self.client().log_text(run_id, text, path)

    def read_text(self, run_id: str, path: str) -> str:
        """The text artifact ``path`` of a run."""
        import mlflow

        self.configure()
        with _quiet_mlflow():
            return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")

    @staticmethod
    def lineage_tags(split_description: dict, training_frame_sha256: str | None) -> dict[str, str]:
        """What every run of a comparison is tagged with: the code, the exact training frame, the split."""
        return {"git_commit": code_version(), "training_frame_sha256": training_frame_sha256 or "unknown",
                "split": json.dumps(split_description, sort_keys=True)}

    def log_scorer(self, scorer, family: ModelFamily, input_example: pd.DataFrame, name: str = "model") -> str:
        """Log ``scorer`` in the active run as the generic pyfunc, with a signature inferred from
        ``input_example`` (a few feature rows) and its scores; returns the model URI."""
        import mlflow
        from mlflow.models import infer_signature

        from customer_intel.registry.pyfunc import ENTRY_POINT, SCORER_ARTIFACT

        example = input_example.head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)
        if "customer_id" in example:  # the example is an MLflow artifact anyone with the registry reads: no real customer key
            example["customer_id"] = [f"example-{i + 1}" for i in range(len(example))]
        with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow():
            path = Path(tmp) / "scorer.pkl"
            # cloudpickle, as MLflow uses: lifetimes' fitters hold lambdas; importable classes go by reference
            path.write_bytes(cloudpickle.dumps(scorer))
            signature = infer_signature(example, scorer.score(example))
            info = mlflow.pyfunc.log_model(
                name=name, python_model=str(ENTRY_POINT), artifacts={SCORER_ARTIFACT: str(path)},
                signature=signature, input_example=example, pip_requirements=list(family.pip_requirements),
            )
        return info.model_uri

    # -- registry ------------------------------------------------------------------------------
    def champion_version(self, family: str):
        """The version the alias points at; None when there is no such model or alias. A server that does not
        answer raises: the gate must not take "unreachable" for "no champion yet"."""
        from mlflow.exceptions import MlflowException

        self.configure()
        try:
            return self.client().get_model_version_by_alias(registered_model_name(family), CHAMPION_ALIAS)
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND_CODES:
                return None
            raise

    def champion_training_frame_sha256(self, family: str) -> str | None:
        """The ``training_frame_sha256`` lineage tag of the champion's training run (None without a
        champion; versions registered before the tag existed have none either)."""
        version = self.champion_version(family)
        if version is None or not version.run_id:
            return None
        return self.client().get_run(version.run_id).data.tags.get("training_frame_sha256")

    def load_champion(self, family: str) -> RegisteredChampion | None:
        """The family's champion (scorer, version, cutoff, horizon), or None when none is registered."""
        import mlflow.pyfunc

        version = self.champion_version(family)
        if version is None:
            return None
        name = registered_model_name(family)
        with _quiet_mlflow():  # by version: the alias may move while this loads
            model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        scorer = model.unwrap_python_model().scorer
        info = getattr(scorer, "info", None)
        run_tags = self.client().get_run(version.run_id).data.tags if version.run_id else {}
        cutoff = getattr(info, "cutoff", None) or run_tags.get("cutoff")
        horizon = getattr(info, "horizon_days", None) or getattr(scorer, "horizon_days", None) or run_tags.get("horizon_days")
        candidate = getattr(info, "candidate", None) or version.tags.get("candidate") or run_tags.get("candidate", "?")
        return RegisteredChampion(scorer, version, name, candidate, cutoff, int(horizon) if horizon is not None else None)

    def load_scorer(self, family: str):
        """The scorer behind ``models:/customer_intel_<family>@champion`` (None when there is none)."""
        champion = self.load_champion(family)
        return None if champion is None else champion.scorer

    def promote(self, model_uri: str, family: str, tags: dict[str, str], description: str | None = None,
                ended: Callable[[str], bool] | None = None):
        """Register ``model_uri`` as a new version of ``customer_intel_<family>`` and point the alias ``champion`` at it.

        The version is tagged with ``tags`` plus the scorer's own ``info`` (candidate, cutoff, horizon, code version)
        and ``customer_intel.promotion=pending`` until the alias has moved to it (then ``promoted``). If the alias
        cannot be moved the new version is deleted (one attempt; else the next promotion deletes it): versions of a
        registered model are either the champion or were champions. Versions a past interrupted promotion left
        pending are deleted first (``discard_unpromoted``: only those whose Dagster run has ended, per ``ended``, or
        that have been pending for longer than any promotion takes).
        """
        import mlflow

        self.configure()
        name = registered_model_name(family)
        client = self.client()
        self.discard_unpromoted(family, ended)
        with _quiet_mlflow():
            scorer = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().scorer
            version = mlflow.register_model(model_uri, name, tags={**scorer.info.as_tags(), **tags, PROMOTION_TAG: "pending"})
        try:
            if description:
                client.update_model_version(name, version.version, description=description)
            client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
        except BaseException:
            with _one_attempt():
                try:
                    client.delete_model_version(name, version.version)
                except Exception as exc:  # the alias error is what propagates
                    log.warning(f"{name} v{version.version} was registered but the alias did not move and it could not be "
                                f"deleted ({type(exc).__name__}): it stays tagged {PROMOTION_TAG}=pending until the next promotion deletes it")
            raise
        try:
            client.set_model_version_tag(name, version.version, PROMOTION_TAG, "promoted")
        except Exception as exc:  # the alias moved: promoted; the next promotion fixes the tag
            log.warning(f"{name} v{version.version} is the champion but its {PROMOTION_TAG} tag could not be set ({type(exc).__name__})")
        return version

    def discard_unpromoted(self, family: str, ended: Callable[[str], bool] | None = None,
                           stale_after_seconds: float = PENDING_STALE_SECONDS) -> list[str]:
        """Delete the versions of ``family`` left ``pending`` by a promotion whose alias move never happened (the alias's
        own version only gets its tag fixed); returns the versions deleted.

        A pending version may also be a promotion in flight in another run (a CLI run beside a scheduled
        one): it is deleted only when the run that registered it has ended (``ended(dagster_run_id)``) or it
        has been pending for ``stale_after_seconds``, and the alias is read again right before each delete,
        so a version that has just become the champion is never deleted."""
        import time

        from mlflow.exceptions import MlflowException

        name = registered_model_name(family)
        client = self.client()
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND_CODES:
                return []
            raise
        deleted = []
        for version in versions:
            if version.tags.get(PROMOTION_TAG) != "pending":
                continue
            run_id = version.tags.get("dagster_run_id")
            age = time.time() - (version.creation_timestamp or 0) / 1000
            if not ((ended is not None and run_id and ended(run_id)) or age > stale_after_seconds):
                continue  # its promotion may still be moving the alias
            current = self.champion_version(family)
            if current is not None and version.version == current.version:
                client.set_model_version_tag(name, version.version, PROMOTION_TAG, "promoted")
                continue
            client.delete_model_version(name, version.version)
            log.warning(f"{name} v{version.version}: registered by Dagster run {version.tags.get('dagster_run_id', '?')} whose "
                        "promotion did not move the alias; deleted (its MLflow run and model stay)")
            deleted.append(version.version)
        return deleted
