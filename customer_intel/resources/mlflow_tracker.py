"""MLflow tracking and registry as a Dagster resource: one MLflow run per candidate, gated champions.

dagster-mlflow's resource is old-style and leaves runs open; this one opens and closes its own
runs and keeps the tracking URI explicit (MLflow's default is ./mlflow.db in whatever the CWD is).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd

CHAMPION_ALIAS = "champion"
# explicit requirements: inferring them takes ~3x longer per model (measured, see ARCHITECTURE notes)
PIP_REQUIREMENTS = ["customer_intel", "lifetimes==0.11.3", "pandas<3", "setuptools<81", "scikit-learn", "xgboost", "lightgbm", "ngboost"]


def _pyfunc_class():
    import mlflow.pyfunc

    class CLTVPyfunc(mlflow.pyfunc.PythonModel):
        """Wraps a CLTVScorer: predict(features) -> CLTV columns."""

        def __init__(self, scorer):
            self.scorer = scorer

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            return self.scorer.score(model_input)

    return CLTVPyfunc


class MLflowTracker(dg.ConfigurableResource):
    """Tracking URI, experiment and registry policy.

    ``champion_tolerance``: a new champion may be at most this much worse (relative Poisson
    deviance on the same holdout) than the current one and still replace it.
    """

    tracking_uri: str
    artifact_root: str | None = None
    experiment: str = "customer_intel"
    champion_tolerance: float = 0.02

    def configure(self):
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        if mlflow.get_experiment_by_name(self.experiment) is None:
            mlflow.create_experiment(self.experiment, artifact_location=self.artifact_root)
        return mlflow.set_experiment(self.experiment)

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    @contextlib.contextmanager
    def start_run(self, run_name: str, tags: dict[str, str], nested: bool = False):
        import mlflow

        self.configure()
        with mlflow.start_run(run_name=run_name, tags=tags, nested=nested) as run:
            yield run

    def log(self, metrics: dict | None = None, params: dict | None = None, tags: dict | None = None, texts: dict | None = None) -> None:
        """Log to the active run; non-finite and non-numeric metrics are skipped (MLflow rejects them)."""
        import math

        import mlflow

        if metrics:
            finite = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
            mlflow.log_metrics(finite)
        if params:
            mlflow.log_params(params)
        if tags:
            mlflow.set_tags(tags)
        for path, text in (texts or {}).items():
            mlflow.log_text(text, path)

    def run_link(self, run_id: str) -> str:
        if self.tracking_uri.startswith(("http://", "https://")):
            experiment = self.configure()
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
        return f"run {run_id} in {self.tracking_uri} (browse: mlflow ui --backend-store-uri {self.tracking_uri})"

    def log_scorer(self, scorer, name: str = "model") -> str:
        """Log a CLTVScorer as a pyfunc model in the active run; returns its model URI."""
        import mlflow

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.pyfunc.log_model(name=name, python_model=_pyfunc_class()(scorer), pip_requirements=PIP_REQUIREMENTS)
        return info.model_uri

    def champion_version(self, model_name: str):
        from mlflow.exceptions import MlflowException

        self.configure()
        try:
            return self.client().get_model_version_by_alias(model_name, CHAMPION_ALIAS)
        except MlflowException:
            return None

    def load_champion(self, model_name: str):
        """(CLTVScorer, model version) for the current champion, or (None, None) when there is none."""
        import mlflow.pyfunc

        version = self.champion_version(model_name)
        if version is None:
            return None, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlflow.pyfunc.load_model(f"models:/{model_name}@{CHAMPION_ALIAS}")
        return model.unwrap_python_model().scorer, version

    def promote(self, model_uri: str, model_name: str, tags: dict[str, str]):
        """Register ``model_uri`` as a new version of ``model_name`` and point the champion alias at it."""
        import mlflow

        self.configure()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = mlflow.register_model(model_uri, model_name, tags=tags)
        self.client().set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
        return version
