"""The generic MLflow pyfunc: ``predict(features) -> scores`` for a scorer of any family."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import mlflow.pyfunc
import pandas as pd

SCORER_ARTIFACT = "scorer"  # the pickled scorer, an artifact of the logged model
ENTRY_POINT = Path(__file__).with_name("scorer_model.py")  # models-from-code: MLflow stores this file with the model


class ScorerModel(mlflow.pyfunc.PythonModel):
    """Wraps a ``modeling.Scorer``: the model's input is the feature frame, its output the scorer's columns.

    Built empty by the models-from-code entry point; ``load_context`` unpickles the scorer from
    the model's artifacts. ``scorer`` is the attribute ``ModelRegistry.load_scorer`` reads (the
    same name the pre-lifecycle CLTV wrapper used, so versions it registered load alike).
    """

    def __init__(self, scorer=None):
        self.scorer = scorer

    def load_context(self, context) -> None:
        if self.scorer is None:
            with open(context.artifacts[SCORER_ARTIFACT], "rb") as handle:
                self.scorer = cloudpickle.load(handle)  # our own artifact, written by ModelRegistry.log_scorer

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.scorer.score(model_input)
