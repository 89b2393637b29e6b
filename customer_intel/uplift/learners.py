"""Uplift learners for one offer against its control: each ``fit(X, t, y)`` then ``effect(X)``.

The meta-learners of Kunzel et al. (2019) and friends, with scikit-learn, LightGBM and econml
underneath. Assignment is randomised, so every propensity is the constant treated share (a
``DummyClassifier`` where econml asks for a model); nothing here would be valid for logged,
confounded assignment without a real propensity model.

- ``response``: P(response | treated, x), the marketer's classic model. Not an effect: its score
  ranks customers and the scorer maps it to an uplift on the validation rows (``UpliftModel``);
- ``t_logistic`` / ``t_lightgbm``: one classifier per group, effect = p_treated - p_control;
- ``s_lightgbm``: one classifier with the treatment as a feature, effect = f(x, 1) - f(x, 0);
- ``x_lightgbm``: econml's X-learner (LightGBM outcome and effect models);
- ``class_transformation``: a logistic regression of z = 1 for treated responders and control
  non-responders (reweighted when the groups are unequal), effect = 2 P(z) - 1;
- ``dr_linear``: econml's ``LinearDRLearner`` (LightGBM nuisances, linear final stage);
- ``causal_forest``: econml's ``CausalForestDML`` (LightGBM outcome nuisance, constant
  propensity), its hyperparameters chosen by ``tune()`` on the rows it is fitted on.

Random targeting is not a candidate: one random draw's Qini is a noisy bar, so every row of the
comparison carries the 95% band of random orderings of the same rows instead (``metrics.py``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

LINEAR_C: float | None = None  # None: tuned by inner cross-validation over LINEAR_CS
LINEAR_CS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


LGBM_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50, "subsample": 0.8, "subsample_freq": 1,
               "colsample_bytree": 0.8, "reg_lambda": 1.0, "n_jobs": 2, "verbose": -1}


def _lgbm_classifier(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**LGBM_PARAMS, random_state=seed)


def _lgbm_regressor(seed: int):
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**LGBM_PARAMS, random_state=seed)


class LogSkewed:
    """``log1p`` of the non-negative columns whose skewness exceeds ``SKEW_LIMIT`` (spend, credit limit, recency): a linear model
    then sees ratios rather than a few extreme customers. A scikit-learn transformer (fit/transform/get_params)."""

    SKEW_LIMIT = 1.0

    def __init__(self):
        self.columns_ = None

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        with np.errstate(all="ignore"):
            centred = X - X.mean(axis=0)
            skew = (centred ** 3).mean(axis=0) / np.maximum(X.std(axis=0), 1e-12) ** 3
        self.columns_ = np.flatnonzero((X.min(axis=0) >= 0) & (skew > self.SKEW_LIMIT))
        return self

    def transform(self, X):
        X = np.array(X, dtype=float, copy=True)
        X[:, self.columns_] = np.log1p(np.clip(X[:, self.columns_], 0, None))
        return X

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)


def _logistic(C: float | None = None):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    C = LINEAR_C if C is None else C
    final = TunedLogistic() if C is None else LogisticRegression(C=C, max_iter=2000)
    return make_pipeline(SimpleImputer(strategy="median"), LogSkewed(), StandardScaler(), final)


class TunedLogistic:
    """A logistic regression whose C is chosen by a 3-fold cross-validation of the log loss on the rows it is fitted on
    (``LogisticRegressionCV`` over ``LINEAR_CS``); with fewer than ``MIN_PER_CLASS`` rows of a class (a fold could hold
    none of it) C = 1. A scikit-learn classifier (fit/predict_proba/get_params; ``sample_weight`` passes through)."""

    MIN_PER_CLASS = 15
    _estimator_type = "classifier"

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y, sample_weight=None):
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

        counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
        if counts.min() >= self.MIN_PER_CLASS:
            self.model_ = LogisticRegressionCV(Cs=list(LINEAR_CS), cv=3, scoring="neg_log_loss", max_iter=2000)
        else:
            self.model_ = LogisticRegression(C=1.0, max_iter=2000)
        self.model_.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


def _constant_propensity():
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior")


@contextmanager
def _quiet():
    """econml hands scikit-learn a column-vector treatment and warns that a linear final stage's inference is invalid
    when features are collinear (channel shares sum to one); neither matters for the point effects used here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*column-vector y.*")
        warnings.filterwarnings("ignore", message=".*Co-variance matrix is underdetermined.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


class Imputed:
    """Median imputation fitted on the training rows, for the econml learners (which refuse NaN inputs)."""

    def __init__(self):
        self.medians: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Imputed:
        with np.errstate(all="ignore"):
            medians = np.nanmedian(X, axis=0) if len(X) else np.zeros(X.shape[1])
        self.medians = np.where(np.isfinite(medians), medians, 0.0)
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float, copy=True)
        rows, cols = np.nonzero(~np.isfinite(X))
        X[rows, cols] = self.medians[cols]
        return X


class Learner:
    """The interface: ``fit(X, t, y, seed)`` returns self; ``effect(X)`` the estimated uplift (a score for ``response``)."""

    name = "learner"

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, seed: int = 0) -> Learner:
        raise NotImplementedError

    def effect(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict:
        return {}


class Response(Learner):
    name = "response"

    def fit(self, X, t, y, seed=0):
        self.model = _logistic().fit(X[t == 1], y[t == 1])
        return self

    def effect(self, X):
        return self.model.predict_proba(X)[:, 1]


class TLearner(Learner):
    """One classifier per group. With logistic regressions the shared strength C is chosen on the rows it is fitted on
    by a 3-fold cross-validation of the **effect** (the transformed-outcome loss of p_treated - p_control), not of
    each group's log loss: the best two response models need not make the best difference."""

    def __init__(self, base: str):
        self.base = base
        self.name = f"t_{base}"
        self.C: float | None = None

    def _model(self, seed, C=None):
        return _logistic(C) if self.base == "logistic" else _lgbm_classifier(seed)

    def _tune_c(self, X, t, y, seed) -> float:
        smallest = min(np.bincount(y[t == g].astype(int), minlength=2).min() for g in (0, 1))
        if smallest < TunedLogistic.MIN_PER_CLASS:  # a fold could miss a class: too few responders to tune on
            return 1.0
        rng = np.random.default_rng(seed)
        fold = rng.integers(0, 3, len(y))
        e = t.mean()
        z = y * (t - e) / (e * (1 - e))
        losses = []
        for C in LINEAR_CS:
            loss = 0.0
            for k in range(3):
                fit, held = fold != k, fold == k
                tau = (self._model(seed, C).fit(X[fit & (t == 1)], y[fit & (t == 1)]).predict_proba(X[held])[:, 1]
                       - self._model(seed, C).fit(X[fit & (t == 0)], y[fit & (t == 0)]).predict_proba(X[held])[:, 1])
                loss += float(((z[held] - tau) ** 2).sum())
            losses.append(loss)
        return float(LINEAR_CS[int(np.argmin(losses))])

    def fit(self, X, t, y, seed=0):
        if self.base == "logistic":
            self.C = LINEAR_C if LINEAR_C is not None else self._tune_c(X, t, y, seed)
        self.treated = self._model(seed, self.C).fit(X[t == 1], y[t == 1])
        self.control = self._model(seed, self.C).fit(X[t == 0], y[t == 0])
        return self

    def params(self):
        return {"C": self.C} if self.base == "logistic" else {}

    def effect(self, X):
        return self.treated.predict_proba(X)[:, 1] - self.control.predict_proba(X)[:, 1]


class SLearner(Learner):
    name = "s_lightgbm"

    def fit(self, X, t, y, seed=0):
        self.model = _lgbm_classifier(seed).fit(np.column_stack([X, t]), y)
        return self

    def effect(self, X):
        ones, zeros = np.ones((len(X), 1)), np.zeros((len(X), 1))
        return self.model.predict_proba(np.hstack([X, ones]))[:, 1] - self.model.predict_proba(np.hstack([X, zeros]))[:, 1]


class ClassTransformation(Learner):
    """z = t y + (1 - t)(1 - y); with unequal groups each row is weighted by 0.5 / its group's share, so that
    2 P(z = 1 | x) - 1 is the effect (Jaskowski and Jaroszewicz 2012, with Athey and Imbens' reweighting)."""

    name = "class_transformation"

    def fit(self, X, t, y, seed=0):
        z = (t * y + (1 - t) * (1 - y)).astype(int)
        share = t.mean()
        weight = np.where(t == 1, 0.5 / share, 0.5 / (1 - share))
        self.model = _logistic()
        self.model.fit(X, z, **{f"{self.model.steps[-1][0]}__sample_weight": weight})
        return self

    def effect(self, X):
        return 2 * self.model.predict_proba(X)[:, 1] - 1


class XLearnerLGBM(Learner):
    name = "x_lightgbm"

    def fit(self, X, t, y, seed=0):
        from econml.metalearners import XLearner

        self.impute = Imputed().fit(X)
        self.model = XLearner(models=_lgbm_regressor(seed), cate_models=_lgbm_regressor(seed), propensity_model=_constant_propensity())
        with _quiet():
            self.model.fit(y.astype(float), t.astype(int), X=self.impute(X))
        return self

    def effect(self, X):
        return np.asarray(self.model.effect(self.impute(X)), dtype=float).ravel()


class LinearDR(Learner):
    name = "dr_linear"

    def fit(self, X, t, y, seed=0):
        from econml.dr import LinearDRLearner

        self.impute = Imputed().fit(X)
        self.scale = (np.nanmean(self.impute(X), axis=0), np.nanstd(self.impute(X), axis=0) + 1e-9)
        self.model = LinearDRLearner(model_propensity=_constant_propensity(), model_regression=_lgbm_classifier(seed), discrete_outcome=True,
                                     cv=2, random_state=seed)
        with _quiet():
            self.model.fit(y.astype(int), t.astype(int), X=self._x(X))
        return self

    def _x(self, X):
        return (self.impute(X) - self.scale[0]) / self.scale[1]

    def effect(self, X):
        return np.asarray(self.model.effect(self._x(X)), dtype=float).ravel()


class CausalForest(Learner):
    name = "causal_forest"

    def __init__(self, tune: bool = True, n_estimators: int = 200):
        self.tune, self.n_estimators = tune, n_estimators

    def fit(self, X, t, y, seed=0):
        from econml.dml import CausalForestDML

        self.impute = Imputed().fit(X)
        Xi = self.impute(X)
        self.model = CausalForestDML(model_y=_lgbm_regressor(seed), model_t=_constant_propensity(), discrete_treatment=True, cv=2,
                                     n_estimators=self.n_estimators, random_state=seed, n_jobs=2)
        with _quiet():
            if self.tune:
                self.model.tune(y.astype(float), t.astype(int), X=Xi)
            self.model.fit(y.astype(float), t.astype(int), X=Xi)
        return self

    def effect(self, X):
        return np.asarray(self.model.effect(self.impute(X)), dtype=float).ravel()

    def params(self):
        keys = ("n_estimators", "max_depth", "min_samples_leaf", "max_features", "max_samples", "min_weight_fraction_leaf")
        return {k: getattr(self.model, k, None) for k in keys}


LEARNERS = {
    "response": Response,
    "t_logistic": lambda: TLearner("logistic"),
    "class_transformation": ClassTransformation,
    "dr_linear": LinearDR,
    "t_lightgbm": lambda: TLearner("lightgbm"),
    "s_lightgbm": SLearner,
    "x_lightgbm": XLearnerLGBM,
    "causal_forest": CausalForest,
}
# the rule's simplicity order reads these kinds (simplest first)
KINDS = {"response": "response", "t_logistic": "linear", "class_transformation": "linear", "dr_linear": "doubly_robust",
         "t_lightgbm": "gbm", "s_lightgbm": "gbm", "x_lightgbm": "gbm_x", "causal_forest": "forest"}
