"""What a model family's candidates look like to the shared lifecycle.

A ``Candidate`` is an unfitted model with a name and a kind (``baseline``, ``probabilistic``,
``ml``, ...). ``fit(split)`` returns a ``FittedCandidate``, which predicts the validation rows
(whatever its family's metrics read: counts with an interval, labels, vectors), reports its
parameters for the tracker, and gives the ``Scorer`` that would be registered if it wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from customer_intel.modeling.intervals import Interval

if TYPE_CHECKING:
    import pandas as pd

    from customer_intel.modeling.scorer import Scorer
    from customer_intel.modeling.split import TimeSplit


class CandidateFitError(RuntimeError):
    """A candidate could not be fitted; the comparison records the message and goes on without it."""


class CandidateSkipped(CandidateFitError):
    """A candidate does not apply to this split (e.g. no history for a time-shifted training window)."""


@dataclass(frozen=True)
class Prediction:
    """A candidate's prediction for the rows of one split part, in row order.

    ``values``: one value per row (a forecast, a probability, a label) or one row per customer
    (a vector). ``interval``: an optional predictive interval for scalar forecasts.
    ``diagnostics``: numbers about the fit behind the prediction that its family's metrics report
    but cannot compute from the values (e.g. a clustering's stability over refits).
    """

    values: np.ndarray
    interval: Interval | None = None
    diagnostics: dict[str, float] | None = None


@runtime_checkable
class FittedCandidate(Protocol):
    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict the rows of ``frame`` (a part of the split the candidate was fitted on)."""

    def params(self) -> dict[str, Any]:
        """Hyperparameters and learned parameters, flat, for the tracker."""

    def to_scorer(self) -> Scorer | None:
        """The deployable scorer (None for a baseline that is never registered).

        A fitted candidate may also have ``to_logged_scorer()``: the scorer logged for the record but
        never served, without what only serving needs (the embeddings' ANN index, minutes to build
        at bank scale); ``Comparison.scorer(name, served=False)`` asks for it."""


@runtime_checkable
class Candidate(Protocol):
    name: str
    kind: str

    def fit(self, split: TimeSplit) -> FittedCandidate:
        """Fit on data up to the split's cutoff only; raise ``CandidateFitError`` when it cannot."""


def flat_params(params: dict[str, Any], prefix: str = "", max_length: int = 250) -> dict[str, str | float | int]:
    """Nested parameters (e.g. an sklearn ``get_params(deep=True)``) as flat ``key: scalar`` pairs.

    Estimator objects become their class name; long values are cut at ``max_length`` characters
    (MLflow rejects over-long parameter values).
    """
    flat: dict[str, str | float | int] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}.", max_length))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            flat[name] = value if not isinstance(value, str) else value[:max_length]
        elif isinstance(value, np.generic):
            flat[name] = value.item()
        elif isinstance(value, type):  # e.g. NGBoost's Dist=Poisson
            flat[name] = value.__name__
        else:
            text = type(value).__name__ if hasattr(value, "get_params") or callable(value) else repr(value)
            flat[name] = text[:max_length]
    return flat
