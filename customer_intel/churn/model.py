"""``ChurnModel``: one picklable churn model of any candidate's kind, with its probability, its
window correction and its SHAP decomposition (the fitted candidates and the registered scorer share it).

Every model answers one question: P(no purchase in the next ``horizon_days`` | features as of today).

- ``bgnbd``: BG/NBD's own answer, 1 - PA + PA * ((alpha + T) / (alpha + T + t))^(r + x), window-aware by construction;
- ``p_alive``: 1 - P(alive), the trap the issue measured (one-timers get P(alive) = 1): a baseline, never registered;
- ``recency``, ``logistic``, ``stacked`` (logistic on the features plus BG/NBD's log-odds), ``lightgbm``: classifiers
  trained time-shifted on a label window of ``train_window`` days. When that window is shorter than the horizon
  (history too short, as on CDNOW), ``calibration="window"`` moves each customer's log-odds by BG/NBD's
  logit q(horizon) - logit q(train window) for that customer; ``calibration="sigmoid"`` maps the log-odds by
  ``a * z + c``, fitted on the validation window (where a model trained on a shorter window than it answers
  for was judged, by ``churn.family.calibrate``). Both leave a model alone when the windows agree, as in
  production, where the refit learns the label of the full window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from customer_intel.churn.frames import TARGET_COLUMNS
from customer_intel.cltv.bgnbd_fast import fit_bgnbd
from customer_intel.cltv.ml import NON_FEATURES, FeatureMatrix

WEEK = 7.0  # BG/NBD's time unit (days per unit), as in the papers
KINDS = ("bgnbd", "p_alive", "recency", "logistic", "stacked", "lightgbm")
CALIBRATIONS = ("window", "sigmoid", "none")
STACK_COLUMN = "bgnbd_no_purchase_logodds"
EPS = 1e-6
# inputs BG/NBD reads (t_x = T - recency): a BG/NBD champion's reasons are in these, recency rather than t_x for a reader
BGNBD_INPUTS = ("frequency", "recency", "T")


def _xtT(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (frame["frequency"].to_numpy(float), frame["t_x"].to_numpy(float) / WEEK, frame["T"].to_numpy(float) / WEEK)


def fit_bgnbd_params(frame: pd.DataFrame) -> dict[str, float]:
    """BG/NBD on the rows' (frequency, t_x, T) as of their day (features only: no label is read)."""
    keys = frame[["frequency", "t_x", "T"]].astype(float)
    rows = keys.value_counts().reset_index(name="weight")
    x, t_x, T = rows["frequency"].to_numpy(), rows["t_x"].to_numpy() / WEEK, rows["T"].to_numpy() / WEEK
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_bgnbd(x, t_x, T, weights=rows["weight"].to_numpy(float))


def bgnbd_log_odds_alive(params: dict, x, t_x, T) -> np.ndarray:
    """log(P(alive) / (1 - P(alive))); +inf (P(alive) = 1) for customers without a repeat purchase."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.log(a) - np.log(np.maximum(b + x - 1, EPS)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, -term, np.inf)


def bgnbd_p_alive(params: dict, x, t_x, T) -> np.ndarray:
    return expit(bgnbd_log_odds_alive(params, x, t_x, T))


def bgnbd_no_purchase(params: dict, x, t_x, T, t) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T): dead already, or alive and no purchase from the Poisson-gamma."""
    r, alpha = params["r"], params["alpha"]
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    pa = bgnbd_p_alive(params, x, t_x, T)
    quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return np.clip(1 - pa + pa * quiet, EPS, 1 - EPS)


@dataclass
class LinearInputs:
    """Numeric features, log1p on the unbounded non-negative ones, standardised on the training rows."""

    matrix: FeatureMatrix
    logged: list[str]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str] | None = None) -> LinearInputs:
        chosen = frame[columns] if columns is not None else frame.drop(columns=[c for c in TARGET_COLUMNS if c in frame.columns])
        matrix = FeatureMatrix.fit(chosen)
        raw = pd.DataFrame(matrix.transform(frame), columns=matrix.columns)
        logged = [c for c in matrix.columns if raw[c].min() >= 0 and raw[c].max() > 1]
        z = cls._logged(raw, logged)
        scale = z.std(axis=0)
        return cls(matrix, logged, z.mean(axis=0), np.where(scale > 0, scale, 1.0))

    @staticmethod
    def _logged(raw: pd.DataFrame, logged: list[str]) -> np.ndarray:
        out = raw.copy()
        out[logged] = np.log1p(np.maximum(out[logged].to_numpy(dtype=float), 0.0))
        return out.to_numpy(dtype=float)

    @property
    def columns(self) -> list[str]:
        return self.matrix.columns

    def raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.matrix.transform(frame), columns=self.matrix.columns, index=frame.index)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return (self._logged(self.raw(frame), self.logged) - self.mean) / self.scale


@dataclass
class Explanation:
    """SHAP values in the model's output space (log-odds): ``base + contributions.sum(1) + shift == logit(p)``."""

    names: list[str]
    values: pd.DataFrame  # the inputs as a reader knows them (days, counts, amounts), same order as names
    contributions: np.ndarray  # rows x names
    base: float
    shift: np.ndarray  # the window correction, per row (zero when the model's window is the horizon)


@dataclass
class ChurnModel:
    """A churn model of one kind (see the module docstring); ``proba`` and ``explain`` for any feature rows."""

    kind: str
    horizon_days: int
    train_window: int
    calibration: str = "window"
    bgnbd: dict | None = None  # fitted at the prediction rows' as-of day (BG/NBD's own kind, the stacked input, the window shift)
    train_bgnbd: dict | None = None  # fitted at the training rows' as-of day (the stacked input during training)
    inputs: LinearInputs | None = None
    estimator: object | None = None
    background: np.ndarray | None = None  # a sample of training inputs (SHAP's reference)
    platt: tuple[float, float] | None = None  # (a, c) of calibration="sigmoid", fitted on the validation window
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown churn model kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}; got {self.calibration!r}")

    # -- inputs ------------------------------------------------------------------------------------
    def _stack(self, frame: pd.DataFrame, params: dict) -> np.ndarray:
        return logit(bgnbd_no_purchase(params, *_xtT(frame), self.train_window / WEEK))

    def design(self, frame: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        """The classifier's input matrix for ``frame`` (``params``: the BG/NBD of the rows' as-of day)."""
        if self.kind == "stacked":
            return np.column_stack([self.inputs.transform(frame), self._stack(frame, params or self.bgnbd)])
        if self.kind == "lightgbm":
            return self.inputs.raw(frame).to_numpy(dtype=float)
        return self.inputs.transform(frame)

    @property
    def input_names(self) -> list[str]:
        if self.kind in ("bgnbd", "p_alive"):
            return list(BGNBD_INPUTS)
        return [*self.inputs.columns, *([STACK_COLUMN] if self.kind == "stacked" else [])]

    @property
    def required_columns(self) -> list[str]:
        """The feature columns ``proba`` reads (BG/NBD's inputs always: the window correction and the stack use them)."""
        return sorted({*BGNBD_INPUTS, "t_x", *(self.inputs.columns if self.inputs is not None else ())})

    # -- probability -------------------------------------------------------------------------------
    def shift(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row window correction of the log-odds (zero without one)."""
        if self.calibration != "window" or not self.mismatched:
            return np.zeros(len(frame))
        x, t_x, T = _xtT(frame)
        return logit(bgnbd_no_purchase(self.bgnbd, x, t_x, T, self.horizon_days / WEEK)) - logit(
            bgnbd_no_purchase(self.bgnbd, x, t_x, T, self.train_window / WEEK))

    def raw_log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        """The log-odds before the window correction."""
        if self.kind == "bgnbd":
            return logit(bgnbd_no_purchase(self.bgnbd, *_xtT(frame), self.horizon_days / WEEK))
        if self.kind == "p_alive":
            return -np.clip(bgnbd_log_odds_alive(self.bgnbd, *_xtT(frame)), -30, 30)
        X = self.design(frame)
        if self.kind == "lightgbm":
            return np.asarray(self.estimator.predict(X, raw_score=True), dtype=float)
        return np.asarray(self.estimator.decision_function(X), dtype=float)

    @property
    def mismatched(self) -> bool:
        return self.kind not in ("bgnbd", "p_alive") and self.train_window != self.horizon_days

    def _sigmoid(self) -> tuple[float, float]:
        if self.calibration == "sigmoid" and self.platt is not None and self.mismatched:
            return float(self.platt[0]), float(self.platt[1])
        return 1.0, 0.0

    def log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        a, c = self._sigmoid()
        return a * self.raw_log_odds(frame) + c + self.shift(frame)

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.clip(expit(self.log_odds(frame)), EPS, 1 - EPS)

    def uncalibrated(self) -> ChurnModel:
        """The same model without the window correction (what calibration is judged against)."""
        return ChurnModel(**{**self.__dict__, "calibration": "none"})

    # -- explanation -------------------------------------------------------------------------------
    def explain(self, frame: pd.DataFrame) -> Explanation:
        """Exact SHAP values of the log-odds: linear models by ``shap.LinearExplainer`` (interventional, against
        ``background``: customers of the day the model answers for), LightGBM by ``shap.TreeExplainer``, BG/NBD by ``exact_shapley`` on its three inputs."""
        import shap

        names = self.input_names
        shift = self.shift(frame)
        if self.kind in ("bgnbd", "p_alive"):
            values = frame[list(BGNBD_INPUTS)].astype(float).reset_index(drop=True)
            background = self.background if self.background is not None else values.to_numpy()[:BACKGROUND_SHAPLEY]

            def f(X):
                rows = pd.DataFrame(X, columns=list(BGNBD_INPUTS))
                return self.raw_log_odds(rows.assign(t_x=np.maximum(rows["T"] - rows["recency"], 0.0)))

            contributions, base = exact_shapley(f, values.to_numpy(), background[:BACKGROUND_SHAPLEY])
            return Explanation(names, values, contributions, base, shift)
        X = self.design(frame)
        if self.kind == "lightgbm":
            explainer = shap.TreeExplainer(self.estimator.booster_)
            with warnings.catch_warnings():  # "LightGBM binary classifier ... output has changed": handled below
                warnings.simplefilter("ignore", UserWarning)
                contributions = np.asarray(explainer.shap_values(X))
            if contributions.ndim == 3:  # some shap versions return one matrix per class
                contributions = contributions[..., -1]
            base = float(np.ravel(explainer.expected_value)[-1])
            values = self.inputs.raw(frame).reset_index(drop=True)
        else:
            explainer = shap.LinearExplainer(self.estimator, shap.maskers.Independent(self.background, max_samples=len(self.background)))
            contributions = np.asarray(explainer.shap_values(X))
            base = float(np.ravel(explainer.expected_value)[0])
            values = self.inputs.raw(frame).reset_index(drop=True)
            if self.kind == "stacked":
                values[STACK_COLUMN] = X[:, -1]
        a, c = self._sigmoid()
        return Explanation(names, values[names] if set(names) <= set(values.columns) else values, a * contributions, a * base + c, shift)

    def params(self) -> dict:
        out = {"kind": self.kind, "horizon_days": self.horizon_days, "train_window_days": self.train_window, "calibration": self.calibration}
        if self.platt is not None:
            out["platt_a"], out["platt_c"] = float(self.platt[0]), float(self.platt[1])
        for prefix, params in (("bgnbd", self.bgnbd), ("train_bgnbd", self.train_bgnbd)):
            out.update({f"{prefix}_{k}": float(v) for k, v in (params or {}).items()})
        if self.inputs is not None:
            out["n_inputs"] = len(self.input_names)
            out["log1p_inputs"] = ",".join(self.inputs.logged)[:250]
        if self.estimator is not None and hasattr(self.estimator, "get_params"):
            out.update({f"estimator.{k}": v for k, v in self.estimator.get_params().items()
                        if isinstance(v, (int, float, str, bool)) or v is None})
        return out


BACKGROUND_SHAPLEY = 32


def exact_shapley(f, X: np.ndarray, background: np.ndarray, chunk: int = 20_000) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values of ``f`` for few inputs: every coalition S, its value the mean of
    ``f(x_S, b_rest)`` over the background rows b, weighted |S|!(n-|S|-1)!/n!. The same numbers as
    ``shap.explainers.Exact`` with an ``Independent`` masker over ``background`` (tested), vectorised over rows
    (shap's loops over rows in Python: 34 s for 7,400 customers, this well under a second)."""
    from itertools import combinations
    from math import factorial

    n_rows, n = X.shape
    m = len(background)
    values: dict[frozenset, np.ndarray] = {}
    out = np.zeros((n_rows, n))
    for start in range(0, n_rows, chunk):
        rows = X[start:start + chunk]
        r = len(rows)
        for size in range(n + 1):
            for subset in combinations(range(n), size):
                mixed = np.repeat(background[None, :, :], r, axis=0)  # r x m x n
                mixed[:, :, list(subset)] = rows[:, None, list(subset)]
                values[frozenset(subset)] = f(mixed.reshape(r * m, n)).reshape(r, m).mean(axis=1)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for size in range(n):
                weight = factorial(size) * factorial(n - size - 1) / factorial(n)
                for subset in combinations(others, size):
                    out[start:start + r, i] += weight * (values[frozenset((*subset, i))] - values[frozenset(subset)])
    base = float(f(background).mean())
    return out, base


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric feature columns a classifier may read: no ids, labels, targets or population-relative scores."""
    excluded = set(NON_FEATURES) | set(TARGET_COLUMNS)
    return sorted(c for c in frame.columns if c not in excluded and pd.api.types.is_numeric_dtype(frame[c]) and not
                  pd.api.types.is_bool_dtype(frame[c]))
