"""ML regressors for future purchases, trained time-shifted so they never see the evaluation window.

Training rows: features as of ``cutoff - horizon``, target = purchase days in
``(cutoff - horizon, cutoff]``. Evaluation rows: features as of ``cutoff``, target = purchase
days in ``(cutoff, cutoff + horizon]``. Both sets come from the one feature builder, and each
gets the probabilistic model's outputs as stacked features from a fit on its own as-of data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.features.rfm import DISPLAY_ONLY_COLUMNS
from customer_intel.modeling.draws import by_block
from customer_intel.modeling.intervals import interval_from_samples

# identifiers, labels, targets, and the population-relative RFM scores (display only: a customer's
# forecast must not depend on who else is scored that day)
NON_FEATURES = {
    "customer_id", "as_of", "feature_mode", "profile_basis", "top_category",
    "holdout_purchases", "holdout_spend", "holdout_days", *DISPLAY_ONLY_COLUMNS,
}
CHANNEL_SHARE_PREFIX = "channel_share_"
STACKED = ("stack_p_alive", "stack_expected_purchases")


def candidate_regressors(seed: int = 0, n_jobs: int = 2) -> dict:
    """The ML candidates, each with a loss suited to counts where the library has one."""
    from lightgbm import LGBMRegressor
    from ngboost import NGBRegressor
    from ngboost.distns import Poisson
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor
    from sklearn.linear_model import Lasso, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBRegressor

    return {
        "hist_gradient_boosting": HistGradientBoostingRegressor(loss="poisson", max_iter=300, learning_rate=0.05, random_state=seed),
        "extra_trees": ExtraTreesRegressor(n_estimators=200, max_depth=12, min_samples_leaf=5, n_jobs=n_jobs, random_state=seed),
        "xgboost": XGBRegressor(objective="count:poisson", n_estimators=300, max_depth=5, learning_rate=0.05, subsample=0.8,
                                colsample_bytree=0.8, n_jobs=n_jobs, random_state=seed),
        "lightgbm": LGBMRegressor(objective="poisson", n_estimators=300, learning_rate=0.05, num_leaves=31, subsample=0.8,
                                  subsample_freq=1, colsample_bytree=0.8, n_jobs=n_jobs, random_state=seed, verbose=-1),
        # bounded: 100 boosting rounds on half the rows each (it was 300 on all rows: 29 s of the 81 s demo, now ~4 s per fit)
        "ngboost": NGBRegressor(Dist=Poisson, n_estimators=100, learning_rate=0.1, minibatch_frac=0.5, verbose=False, random_state=seed),
        "ridge": make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        "lasso": make_pipeline(StandardScaler(), Lasso(alpha=0.01, max_iter=10_000)),
    }


@dataclass
class FeatureMatrix:
    """Numeric model inputs with training medians for missing values (one definition for fit and predict)."""

    columns: list[str]
    medians: pd.Series

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureMatrix:
        numeric = [c for c in frame.columns if c not in NON_FEATURES and pd.api.types.is_numeric_dtype(frame[c])]
        columns = sorted(numeric)
        return cls(columns=columns, medians=frame[columns].median().fillna(0.0))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        # a channel of the training vocabulary that no transaction used by the scoring date has share 0
        absent_channels = [c for c in self.columns if c.startswith(CHANNEL_SHARE_PREFIX) and c not in frame.columns]
        if absent_channels:
            frame = frame.assign(**dict.fromkeys(absent_channels, 0.0))
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise KeyError(f"features missing at prediction time: {', '.join(missing)}")
        # one float copy, its gaps filled in place with the column's training median (no per-column frame copies)
        # C order whatever the frame's blocks: a linear model's sums then round the same way for the same values
        X = np.ascontiguousarray(frame[self.columns].to_numpy(dtype=float, na_value=np.nan))
        gaps = np.isnan(X)
        if gaps.any():
            X[gaps] = self.medians.reindex(self.columns).to_numpy(dtype=float)[np.nonzero(gaps)[1]]
        return X


def stack_features(frame: pd.DataFrame, p_alive: np.ndarray, expected_purchases: np.ndarray) -> pd.DataFrame:
    """The features plus the probabilistic model's outputs (STACKED), for training and scoring alike."""
    return frame.assign(stack_p_alive=np.asarray(p_alive), stack_expected_purchases=np.asarray(expected_purchases))


def predict_with_interval(model, X: np.ndarray, scale: float = 1.0, interval: float = 0.8, n_samples: int = 400, seed: int = 0,
                          with_interval: bool = True, customer_ids=None):
    """Point prediction (clipped at 0: linear models can go negative) and, for NGBoost, an ``Interval``
    (None without ``with_interval``: an ensemble member's point needs no posterior draws).

    ``scale`` stretches a model trained on a shorter window to the evaluation horizon. NGBoost's
    predictive distribution is computed once: its point is that distribution's mean, as its own
    ``predict`` gives it. With ``customer_ids`` (the rows' ids) the draws go by customer block.
    """
    if not hasattr(model, "pred_dist"):
        return np.maximum(np.asarray(model.predict(X), dtype=float), 0.0) * scale, None
    dist = model.pred_dist(X)
    point = np.maximum(np.asarray(dist.predict(), dtype=float), 0.0) * scale
    if not with_interval:
        return point, None
    mu = np.maximum(dist.params["mu"] * scale, 1e-9)
    if customer_ids is None or not len(mu):
        draws = np.random.default_rng(seed).poisson(mu[:, None], size=(len(mu), n_samples))
    else:  # the customer's own draws whoever is scored beside it (modeling.draws)
        (draws,) = by_block(customer_ids, seed, lambda rng, rows: (rng.poisson(mu[rows, None], size=(len(rows), n_samples)),))
    return point, interval_from_samples(draws, interval)


HORIZON_SCALINGS = ("bgnbd_ratio", "linear")


def horizon_scale(probabilistic, frame: pd.DataFrame, horizon_days: float, window_days: float, how: str = "bgnbd_ratio",
                  expected_horizon: np.ndarray | None = None) -> np.ndarray | float:
    """How a forecast for the ``window_days`` a regressor was trained on reaches ``horizon_days``.

    ``linear``: ``horizon / window``, as if every customer kept buying at the window's rate.
    ``bgnbd_ratio``: per customer, the probabilistic model's expected purchases over the horizon
    divided by those over the window: a customer likely to have dropped out gains little from a
    longer horizon (the linear stretch over-forecasts a young cohort, where dropout is still ahead).
    """
    if how not in HORIZON_SCALINGS:
        raise ValueError(f"horizon scaling must be one of {', '.join(HORIZON_SCALINGS)}; got {how!r}")
    linear = horizon_days / max(window_days, 1)
    if how == "linear" or horizon_days == window_days:
        return linear
    if expected_horizon is None:
        expected_horizon = probabilistic.point_predictions(frame, horizon_days)[1]
    expected_window = probabilistic.point_predictions(frame, window_days)[1]
    ratio = np.divide(expected_horizon, expected_window, out=np.full(len(frame), linear, dtype=float), where=expected_window > 0)
    return np.where(np.isfinite(ratio), ratio, linear)
