"""The one model lifecycle every family shares: time splits, candidates, champion rules, comparisons.

Pure Python (no Dagster, no MLflow): a family is a ``ModelFamily`` spec plus its domain code;
``customer_intel.assets.factory`` turns the spec into Dagster assets and
``customer_intel.resources.model_registry`` logs, registers and loads its scorers.
"""

from customer_intel.modeling.candidate import Candidate, CandidateFitError, CandidateSkipped, FittedCandidate, Prediction
from customer_intel.modeling.comparison import Comparison, compare_candidates
from customer_intel.modeling.family import CandidateConfigError, FamilyInputError, FamilyNotApplicable, ModelFamily
from customer_intel.modeling.intervals import Interval, interval_from_samples, shortest_interval, shortest_window
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.rule import ChampionRule, Constraint, GateDecision, NoChampionError, incumbent_not_worse
from customer_intel.modeling.scorer import Scorer, ScorerInfo
from customer_intel.modeling.scoring import daily_scores, prefixed_column
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION, TimeSplit, rolling_origins

__all__ = [
    "FIT", "REFIT", "TEST", "VALIDATION", "Candidate", "CandidateConfigError", "CandidateFitError", "CandidateSkipped", "ChampionRule", "Comparison",
    "Constraint", "FamilyInputError", "FamilyNotApplicable", "FittedCandidate", "GateDecision", "Interval", "ModelFamily", "NoChampionError", "Prediction", "Scorer",
    "ScorerInfo", "TimeSplit", "code_version", "compare_candidates", "daily_scores", "incumbent_not_worse", "interval_from_samples", "prefixed_column",
    "rolling_origins", "shortest_interval", "shortest_window",
]
