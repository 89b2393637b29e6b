"""Probabilistic CLTV: BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma over lifetimes, fitted robustly.

References
----------
* Fader, Hardie & Lee (2005a), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2) -- BG/NBD.
* Schmittlein, Morrison & Colombo (1987) -- Pareto/NBD; Fader, Hardie & Lee (2005b),
  "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis" -- Pareto/NBD and
  Gamma-Gamma estimates on CDNOW.
* Batislam, Denizel & Filiztekin (2007) -- MBG/NBD.

lifetimes provides the likelihoods and closed-form predictions. This module adds what a
production pipeline needs on top: fitting on the unique (x, t_x, T) rows with weights (same
estimates, far fewer rows), an optimiser that survives lifetimes' known convergence failures,
the paper's full log-likelihood, and predictive intervals by posterior simulation, which
lifetimes does not give.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from autograd import hessian, value_and_grad
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from customer_intel.cltv.bgnbd_fast import fit_bgnbd
from customer_intel.modeling.draws import by_block
from customer_intel.modeling.intervals import Interval, interval_from_samples, shortest_interval

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports pkg_resources
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    from lifetimes.utils import ConvergenceError

GRADIENT_TOLERANCE = 1e-4  # on lifetimes' mean negative log-likelihood in log-parameters
TRANSACTION_MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")


class CLTVFitError(RuntimeError):
    """A model did not converge; the message says what was tried and what to change."""


class _RobustFitMixin:
    """lifetimes' likelihoods with a sturdier optimiser.

    lifetimes runs one BFGS from one start and raises when scipy reports "precision loss",
    which happens at the optimum on well-posed data. Here several starts and two optimisers are
    tried; a result is accepted when scipy reports success or the gradient is ~0.
    """

    def _fit(self, minimizing_function_args, initial_params, params_size, disp, tol=1e-7, bounds=None, **kwargs):
        objective = value_and_grad(self._negative_log_likelihood)
        starts = [np.full(params_size, 0.1) if initial_params is None else np.asarray(initial_params, dtype=float),
                  np.zeros(params_size), np.full(params_size, -1.0), np.full(params_size, 1.0)]
        tried = []
        for x0 in starts:
            for method in ("BFGS", "L-BFGS-B"):
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        out = minimize(objective, x0=x0, jac=True, method=method, tol=tol, args=minimizing_function_args, bounds=bounds if method == "L-BFGS-B" else None)
                    except (ValueError, FloatingPointError, OverflowError) as exc:
                        tried.append(f"{method} from {np.round(x0, 2).tolist()}: {exc}")
                        continue
                gradient = float(np.linalg.norm(out.jac)) if np.all(np.isfinite(out.jac)) else np.inf
                tried.append(f"{method} from {np.round(x0, 2).tolist()}: {out.message} (|grad|={gradient:.2g})")
                if np.isfinite(out.fun) and (out.success or gradient < GRADIENT_TOLERANCE):
                    return out.x, out.fun, hessian(self._negative_log_likelihood)(out.x, *minimizing_function_args)
        raise ConvergenceError(
            f"{type(self).__name__} did not converge (penalizer_coef={self.penalizer_coef}). Tried:\n  "
            + "\n  ".join(tried)
            + "\nIncrease the penalizer, use a coarser time unit (weeks), or check for customers with extreme frequency."
        )


class RobustBetaGeoFitter(_RobustFitMixin, BetaGeoFitter):
    pass


class RobustParetoNBDFitter(ParetoNBDFitter):
    """Pareto/NBD with deterministic starts and a log-space A_0.

    lifetimes starts Nelder-Mead from a random point (global numpy state), so two fits of the
    same data can differ; and its A_0 (Fader & Hardie 2005, "A note on deriving the Pareto/NBD
    model", eq. 19) evaluates 2F1(r+s+x, b; r+s+x+1; z) directly, which overflows to NaN for
    heavy buyers. Euler's transformation 2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)
    gives a fast-converging series whose logarithm is taken instead.
    """

    @staticmethod
    def _log_A_0(params, freq, recency, age):
        r, alpha, s, beta = params
        freq, recency, age = (np.asarray(v, dtype=float) for v in (freq, recency, age))
        if alpha < beta:
            low, high, b = alpha, beta, r + freq
        else:
            low, high, b = beta, alpha, s + 1.0
        a = r + s + freq

        def log_term(t):
            z = (high - low) / (high + t)
            log_hyp = (1.0 - b) * np.log1p(-z) + np.log(hyp2f1(1.0, a + 1.0 - b, a + 1.0, z))
            return log_hyp - a * np.log(high + t)

        at_recency, at_age = log_term(recency), log_term(age)
        with np.errstate(divide="ignore"):  # t_x == T: A_0 = 0, log = -inf, P(alive) = 1
            return at_recency + np.log1p(-np.exp(np.minimum(at_age - at_recency, 0.0)))

    @staticmethod
    def _conditional_log_likelihood(params, freq, rec, T):
        r, alpha, s, beta = params
        x = np.asarray(freq, dtype=float)
        base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        log_A_0 = RobustParetoNBDFitter._log_A_0(params, x, rec, T)
        return base + np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T), np.log(s) + log_A_0 - np.log(r + s + x))

    def _fit(self, minimizing_function_args, iterative_fitting, initial_params, params_size, disp, tol=1e-6,
             fit_method="Nelder-Mead", maxiter=2000, **kwargs):
        starts = [np.ones(params_size), np.array([0.5, 5.0, 0.5, 5.0]), np.array([2.0, 1.0, 2.0, 1.0])]
        if initial_params is not None:
            starts.insert(0, np.asarray(initial_params, dtype=float))
        best, tried = None, []
        for x0 in starts:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = minimize(self._negative_log_likelihood, x0=x0, method="Nelder-Mead", tol=tol,
                               args=minimizing_function_args, options={"maxiter": max(maxiter, 4000), "maxfev": 8000})
            tried.append(f"Nelder-Mead from {x0.tolist()}: {out.message} (nll={out.fun:.6g})")
            if out.success and np.isfinite(out.fun) and (best is None or out.fun < best.fun):
                best = out
        if best is None:
            raise ConvergenceError("ParetoNBDFitter did not converge. Tried:\n  " + "\n  ".join(tried))
        return best.x, best.fun


class RobustModifiedBetaGeoFitter(_RobustFitMixin, ModifiedBetaGeoFitter):
    pass


class RobustGammaGammaFitter(_RobustFitMixin, GammaGammaFitter):
    pass


_FITTERS = {"bgnbd": RobustBetaGeoFitter, "pareto_nbd": RobustParetoNBDFitter, "mbgnbd": RobustModifiedBetaGeoFitter}


def unique_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct rows of ``columns`` and how many customers share each (the likelihood weights)."""
    grouped = frame.groupby(columns, sort=False).size()
    return grouped.index.to_frame(index=False), grouped.to_numpy(dtype=float)


def bgnbd_log_likelihood(params: dict, x, t_x, T) -> float:
    """Full BG/NBD log-likelihood of FHL (2005a), eq. 6, summed over customers."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    term_alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        term_dropped = np.where(x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(base + np.logaddexp(term_alive, term_dropped)))


def contain_point(bounds: Interval, point: np.ndarray) -> Interval:
    """The shortest window, widened to the whole purchase days around the point where it excludes it.

    A customer who has almost surely dropped out has [0, 0] as the shortest 80% window and an
    expected 0.3 purchases: the published interval must contain the published point, so it
    becomes [0, 1]. A widened end is always included (weight 1): coverage can only rise.
    """
    point = np.asarray(point, dtype=float)
    known = np.isfinite(point)  # a model that could not forecast a customer (NaN) keeps its window
    low = np.where(known, np.minimum(bounds.low, np.floor(np.where(known, point, 0))), bounds.low).astype(np.asarray(bounds.low).dtype)
    high = np.where(known, np.maximum(bounds.high, np.ceil(np.where(known, point, 0))), bounds.high).astype(np.asarray(bounds.high).dtype)
    low_weight = np.where(low < bounds.low, 1.0, bounds.low_weight)
    high_weight = np.where(high > bounds.high, 1.0, bounds.high_weight)
    return Interval(low, high, low_weight, high_weight)


POINT_CACHE_SIZE = 4


@dataclass
class ProbabilisticCLTV:
    """A transaction model (BG/NBD, Pareto/NBD or MBG/NBD) plus Gamma-Gamma spend, sklearn-style.

    ``fit`` takes the feature frame (``frequency``, ``t_x``, ``T`` in days, ``monetary_value``);
    time is modelled in units of ``time_unit_days`` (7 = weeks, as in the papers).
    """

    transaction_model: str = "bgnbd"
    time_unit_days: float = 7.0
    penalizer_coef: float = 0.0
    spend_penalizer_coef: float = 0.0
    annual_discount_rate: float = 0.10

    def __post_init__(self):
        if self.transaction_model not in _FITTERS:
            raise ValueError(f"transaction_model must be one of {', '.join(_FITTERS)}; got {self.transaction_model!r}")

    @property
    def name(self) -> str:
        return f"{self.transaction_model}+gamma_gamma"

    def _xtT(self, frame: pd.DataFrame):
        u = self.time_unit_days
        return frame["frequency"].to_numpy(float), frame["t_x"].to_numpy(float) / u, frame["T"].to_numpy(float) / u

    def fit(self, frame: pd.DataFrame) -> ProbabilisticCLTV:
        self.__dict__.pop("_point_cache", None)  # answers of the model being replaced
        rows, weights = unique_rows(frame, ["frequency", "t_x", "T"])
        x, t_x, T = self._xtT(rows)
        self.transactions_ = _FITTERS[self.transaction_model](penalizer_coef=self.penalizer_coef)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.transaction_model == "bgnbd":
                    # our analytic-gradient MLE; lifetimes' fitter only carries the parameters for its predictions
                    params = fit_bgnbd(x, t_x, T, weights=weights, penalizer_coef=self.penalizer_coef)
                    self.transactions_.params_ = pd.Series(params)[["r", "alpha", "a", "b"]]
                else:
                    self.transactions_.fit(x, t_x, T, weights=weights)
        except (ConvergenceError, RuntimeError) as exc:
            raise CLTVFitError(f"{self.transaction_model} on {len(frame):,} customers ({len(rows):,} distinct rows): {exc}") from exc
        self.params_ = self.transactions_.params_.to_dict()
        self.n_customers_ = len(frame)
        self.n_unique_rows_ = len(rows)

        repeaters = frame.loc[(frame["frequency"] > 0) & (frame["monetary_value"] > 0), ["frequency", "monetary_value"]]
        if len(repeaters) < 10:
            raise CLTVFitError(f"Gamma-Gamma needs repeat buyers with positive spend; found {len(repeaters)}")
        spend_rows, spend_weights = unique_rows(repeaters, ["frequency", "monetary_value"])
        self.spend_ = RobustGammaGammaFitter(penalizer_coef=self.spend_penalizer_coef)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.spend_.fit(spend_rows["frequency"], spend_rows["monetary_value"], weights=spend_weights)
        except ConvergenceError as exc:
            raise CLTVFitError(f"gamma_gamma on {len(repeaters):,} repeat buyers: {exc}") from exc
        self.spend_params_ = self.spend_.params_.to_dict()
        self.n_repeat_buyers_ = len(repeaters)
        return self

    def log_likelihood(self, frame: pd.DataFrame) -> float:
        """Full log-likelihood (BG/NBD only, as published in FHL 2005a)."""
        if self.transaction_model != "bgnbd":
            raise NotImplementedError("the paper's log-likelihood is implemented for BG/NBD")
        return bgnbd_log_likelihood(self.params_, *self._xtT(frame))

    def expected_spend_per_purchase(self, frame: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma conditional mean spend; customers without positive repeat spend get the population mean."""
        p, q, v = (self.spend_params_[k] for k in ("p", "q", "v"))
        x, m = self._spend_evidence(frame)
        return p * (v + m * x) / (p * x + q - 1)

    def _spend_evidence(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = frame["frequency"].to_numpy(float)
        m = frame["monetary_value"].to_numpy(float)
        usable = (x > 0) & (m > 0)  # net refunds can leave m <= 0: no evidence about spend then
        return np.where(usable, x, 0.0), np.where(usable, m, 0.0)

    def point_predictions(self, frame: pd.DataFrame, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form P(alive) and expected purchases over the horizon (no simulation).

        The last few answers are kept by the content of (x, t_x, T) and the horizon: an ensemble's
        members, its own score and the regressors' horizon scaling ask the same question of the
        same million rows several times in one scoring pass."""
        x, t_x, T = self._xtT(frame)
        key = (hashlib.blake2b(b"".join(a.tobytes() for a in (x, t_x, T)), digest_size=16).digest(), float(horizon_days))
        cache = self.__dict__.setdefault("_point_cache", {})
        if key not in cache:
            model = self.transactions_
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p_alive = np.asarray(model.conditional_probability_alive(x, t_x, T), dtype=float)
                expected = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(horizon_days / self.time_unit_days, x, t_x, T),
                                      dtype=float)
            while len(cache) >= POINT_CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = (p_alive, expected)
        p_alive, expected = cache[key]
        return p_alive.copy(), expected.copy()

    def __getstate__(self):  # the answers are a cache of this process: the fitted parameters travel, not them
        state = dict(self.__dict__)
        state.pop("_point_cache", None)
        return state

    def predict(self, frame: pd.DataFrame, horizon_days: float, interval: float = 0.8, n_samples: int = 400, seed: int = 0) -> pd.DataFrame:
        """Per customer: P(alive), expected purchases and value over the horizon with a central
        ``interval`` (by posterior simulation), expected spend per purchase, discounted CLTV."""
        p_alive, expected = self.point_predictions(frame, horizon_days)
        spend = self.expected_spend_per_purchase(frame)
        purchases, value = self.simulate(frame, horizon_days, n_samples=n_samples, seed=seed, p_alive=p_alive)
        out = pd.DataFrame(index=frame.index)
        out["p_alive"] = p_alive
        out["expected_purchases"] = expected
        bounds = contain_point(interval_from_samples(purchases, interval), expected)
        out["purchases_low"], out["purchases_high"] = bounds.low, bounds.high
        # the interval's own predictive probability: near `interval`, higher where an atom at 0 dominates
        out["purchases_interval_probability"] = (
            (purchases >= bounds.low[:, None]) & (purchases <= bounds.high[:, None])
        ).mean(axis=1)
        out["purchases_low_weight"], out["purchases_high_weight"] = bounds.low_weight, bounds.high_weight
        out["expected_spend_per_purchase"] = spend
        out["expected_value"] = expected * spend
        value_low, value_high = shortest_interval(value, interval)
        out["value_low"], out["value_high"] = np.minimum(value_low, out["expected_value"]), np.maximum(value_high, out["expected_value"])
        out["cltv"] = self.discounted_value(frame, horizon_days)
        return out

    def discounted_value(self, frame: pd.DataFrame, horizon_days: float, step_days: float = 30.0) -> np.ndarray:
        """Expected spend over the horizon in monthly steps, discounted at ``annual_discount_rate``."""
        x, t_x, T = self._xtT(frame)
        spend = self.expected_spend_per_purchase(frame)
        monthly = (1 + self.annual_discount_rate) ** (step_days / 365.0) - 1
        total = np.zeros(len(frame))
        previous = np.zeros(len(frame))
        steps = int(np.ceil(horizon_days / step_days))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(1, steps + 1):
                t = min(i * step_days, horizon_days) / self.time_unit_days
                cumulative = np.asarray(self.transactions_.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T), dtype=float)
                total += (cumulative - previous) * spend / (1 + monthly) ** i
                previous = cumulative
        return total

    def simulate(self, frame: pd.DataFrame, horizon_days: float, n_samples: int = 400, seed: int = 0, p_alive: np.ndarray | None = None):
        """Draws of future purchases and value per customer: arrays of shape (customers, n_samples).

        Given alive, the posteriors are conjugate: lambda ~ Gamma(r + x, alpha + T); BG/NBD
        p ~ Beta(a, b + x) (MBG/NBD: b + x + 1, since it may also drop at the first purchase);
        Pareto/NBD mu ~ Gamma(s, beta + T). Future purchases follow the model's own process;
        spend per purchase follows the Gamma-Gamma posterior nu ~ Gamma(q + p x, v + m x).

        With a ``customer_id`` column the draws go block by block of customers (``modeling.draws.by_block``):
        a scoring shard (whole blocks) draws for a customer what the whole bank's run draws for it.
        """
        x, t_x, T = self._xtT(frame)
        if p_alive is None:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p_alive = np.asarray(self.transactions_.conditional_probability_alive(x, t_x, T), dtype=float)
        xs, ms = self._spend_evidence(frame)
        evidence = (x, T, np.asarray(p_alive, dtype=float), xs, ms)
        if "customer_id" not in frame.columns or not len(frame):
            return self._draws(np.random.default_rng(seed), *evidence, horizon_days, n_samples)
        return by_block(frame["customer_id"], seed, lambda rng, rows: self._draws(rng, *(a[rows] for a in evidence), horizon_days, n_samples))

    def _draws(self, rng: np.random.Generator, x, T, p_alive, xs, ms, horizon_days: float, n_samples: int):
        """(purchases, value) draws of the given customers' evidence from ``rng`` (see ``simulate``)."""
        horizon = horizon_days / self.time_unit_days
        shape = (len(x), n_samples)
        alive = rng.random(shape) < p_alive[:, None]
        params = self.params_
        lam = rng.gamma((params["r"] + x)[:, None], 1.0 / (params["alpha"] + T)[:, None], size=shape)
        if self.transaction_model == "pareto_nbd":
            mu = rng.gamma(params["s"], 1.0 / (params["beta"] + T)[:, None], size=shape)
            active_time = np.minimum(horizon, rng.exponential(1.0, size=shape) / mu)
            purchases = rng.poisson(lam * active_time)
        else:
            extra = 1.0 if self.transaction_model == "mbgnbd" else 0.0
            p = rng.beta(params["a"], (params["b"] + x + extra)[:, None], size=shape)
            purchases = np.minimum(rng.poisson(lam * horizon), rng.geometric(np.clip(p, 1e-12, 1.0)))
        purchases = np.where(alive, purchases, 0)
        sp, sq, sv = (self.spend_params_[k] for k in ("p", "q", "v"))
        nu = rng.gamma((sq + sp * xs)[:, None], 1.0 / (sv + ms * xs)[:, None], size=shape)
        value = np.where(purchases > 0, rng.gamma(np.maximum(purchases, 1) * sp, 1.0) / nu, 0.0)
        return purchases, value
