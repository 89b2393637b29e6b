"""``Scorer``: what a registered champion does every night and in the API, for any family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd


@dataclass(frozen=True)
class ScorerInfo:
    """Where a scorer comes from: its family and candidate, the data it saw and the code that fitted it.

    ``cutoff``: the last day of data the model was fitted on (ISO date); ``horizon_days``: the
    window its forecasts cover (None for families without one, e.g. segmentation).
    """

    family: str
    candidate: str
    cutoff: str | None
    horizon_days: int | None
    code_version: str

    def as_tags(self) -> dict[str, str]:
        return {f"scorer_{k}": str(v) for k, v in self.__dict__.items() if v is not None}


@runtime_checkable
class Scorer(Protocol):
    @property
    def info(self) -> ScorerInfo: ...

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The columns ``score`` returns, in order (the family's daily score columns, unprefixed)."""

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """One output row per input row, same index: features come from the one feature builder."""
